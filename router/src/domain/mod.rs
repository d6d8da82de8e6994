//! The floor every layer stands on: plain values and pure rules, with no IO and no
//! imports from the rest of the crate.
//!
//! - [`clock`]: wall time in the units the store and state machines count.
//! - [`event`]: event kinds (`kind:detail`) and stable event ids.
//! - [`route`]: route names, event selectors, forward modes.
//! - [`delivery`]: deliveries, events and jobs as stored and shown.
//! - [`call`]: a call's state and the pure state machine that changes it.
//! - [`permission`]: a user's call permission and Meta's request limits.
//! - [`push`]: events for agents, their audience, and the port they leave through.
//! - [`agent`]: an agent's name and role.

pub mod agent;
pub mod call;
pub mod clock;
pub mod delivery;
pub mod event;
pub mod permission;
pub mod push;
pub mod route;
