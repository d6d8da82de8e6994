//! Agents: who may use the API, their sessions, and the WebSocket hub they listen on.

pub mod auth;
pub mod dialer;
pub mod hub;
pub mod session;
pub mod socket;
pub mod turn;
