//! Switchboard: Meta's WhatsApp webhooks in, verified, split, stored and fanned out.
//!
//! Layout:
//! - [`domain`]: plain values and pure rules that every layer uses and that use none.
//! - [`config`]: the typed, validated TOML configuration.
//! - [`startup`]: builds the application (store, workers, HTTP server) on any port.
//! - [`state`]: the services request handlers share.
//! - [`telemetry`]: logs and Prometheus metrics.
//! - [`meta`]: Meta's signature check and the split of a delivery into events.
//! - [`ingest`]: what happens to a verified delivery before Meta hears `200`.
//! - [`store`]: durable storage behind a trait; SQLite by default.
//! - [`fanout`]: routes, outbound requests, retries and delivery workers.
//! - [`calls`]: the calling control plane: call and permission state, Meta's answers.
//! - [`agents`]: agent identities, sessions, TURN credentials and the WebSocket hub.
//! - [`http`]: thin handlers and the one place errors become responses.
//! - [`cli`]: the command line's subcommands other than `serve`.

pub mod agents;
pub mod calls;
pub mod cli;
pub mod config;
pub mod domain;
pub mod fanout;
pub mod http;
pub mod ingest;
pub mod meta;
pub mod startup;
pub mod state;
pub mod store;
pub mod telemetry;
