//! Everything that speaks Meta's language: signatures and webhook events.

mod envelope;
pub mod events;
pub mod graph;
pub mod signature;
