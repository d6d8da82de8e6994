//! wa-sim: a local stand-in for Meta's WhatsApp Cloud API and for a WhatsApp user with a
//! real WebRTC peer, so Switchboard runs and is tested end to end on one machine.
//!
//! Layout:
//! - [`config`]: the typed configuration and Meta's default timings.
//! - [`cli`]: the command line (`wa-sim serve ...`).
//! - [`startup`]: builds the simulator on any port and runs it.
//! - [`graph`]: Meta's Graph endpoints (`/calls`, `/messages`, `/settings`,
//!   `/call_permissions`), their validation and Meta's error envelope.
//! - [`platform`]: what Meta and the user do: users, permissions and limits, calls and
//!   their timed scripts, and the errors by which Meta's rules refuse a request.
//! - [`sdp`]: Meta's SDP checks.
//! - [`media`]: the WebRTC peer, its tone and the received-audio meter.
//! - [`webhooks`]: Meta's envelopes, escaping, signing, delivery and retries.
//! - [`control`]: the `/sim/...` control and inspection API.
//! - [`ids`], [`clock`]: Meta-style identifiers and timestamps.
//!
//! Imports run one way: the HTTP-facing modules (`startup`, `graph`, `control`, `cli`) use
//! `platform`, `webhooks` and `media`, which use the plain values (`ids`, `clock`, `sdp`,
//! `config`). The platform says why it refused in its own error types; `graph` and
//! `control` turn those into HTTP answers.

pub mod cli;
pub mod clock;
pub mod config;
pub mod control;
pub mod graph;
pub mod ids;
pub mod media;
pub mod platform;
pub mod sdp;
pub mod startup;
pub mod webhooks;

pub use config::Config;
pub use startup::Simulator;
