//! Agents: who may use the API, their sessions, and the WebSocket hub they listen on.
//!
//! - [`auth`]: agents by token, sessions by cookie, and the origins a cookie may be used from.
//! - [`session`]: the signed session cookie; [`revocation`]: sessions ended early.
//! - [`throttle`]: failed sign-ins limited per client address; [`address`]: which address.
//! - [`hub`] and [`socket`]: the WebSocket of call events and its limits.
//! - [`dialer`] and [`turn`]: what the dialer starts with.

pub mod address;
pub mod auth;
pub mod dialer;
pub mod hub;
pub mod revocation;
pub mod session;
pub mod socket;
pub mod throttle;
pub mod turn;
