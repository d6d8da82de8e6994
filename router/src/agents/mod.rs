//! Agents: who may use the API, and (later) the WebSocket hub they listen on.

pub mod auth;
