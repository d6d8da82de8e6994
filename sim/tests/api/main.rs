//! wa-sim's behaviour over HTTP and WebRTC, as the router and a developer see it: a real
//! simulator on port 0, a real webhook receiver, and a real business-side WebRTC peer.
#![allow(clippy::unwrap_used)]

mod business_calls;
mod graph_validation;
mod helpers;
mod permissions;
mod user_calls;
mod webhooks;
