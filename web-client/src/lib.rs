//! The agents' dialer for WhatsApp calls, compiled to WebAssembly.
//!
//! Layout: the call logic is plain Rust, built and tested on any host; only `browser`
//! touches the DOM, WebRTC and the network, and it exists only in the wasm build.
//!
//! - [`call`]: the call state machine. Agent actions, server events and the results of
//!   browser work go in; the work to do ([`call::Effect`]) and what to show come out.
//! - [`failure`]: every failure as a sentence an agent can act on, Meta's codes included.
//! - [`display`]: clocks, durations, dates and names as the page shows them.
//! - [`permission`]: a customer's call permission as the page shows it.
//! - [`backoff`]: when to try the WebSocket again after it drops.
//! - [`wire`]: the router's WebSocket events, decoded without serde's costly buffering.
//! - `browser` (wasm32 only): the thin web-sys layer that carries out effects, owns the
//!   closures it hands to the browser, and renders the state machine into the page.

pub mod backoff;
pub mod call;
pub mod display;
pub mod failure;
pub mod permission;
pub mod wire;

#[cfg(target_arch = "wasm32")]
mod browser;
