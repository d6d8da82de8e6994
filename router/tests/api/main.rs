//! The router's behaviour through its real HTTP surface: real servers on port 0, real
//! consumers on loopback, a real SQLite file.
#![allow(clippy::unwrap_used)]

mod admin;
mod binary;
mod calling;
mod fanout;
mod graph;
mod headers;
mod health;
mod helpers;
mod limits;
mod replays;
mod sessions;
mod sockets;
mod start_up;
mod store;
mod webhook;
