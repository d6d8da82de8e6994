//! Test support shared by the router's API tests, wa-sim's API tests and the end-to-end
//! tests. Each harness keeps what is its own (the router's routes and fixtures, wa-sim's
//! verifying receiver and timings, the end-to-end stack and processes) and takes from here
//! what they all need.
//!
//! Layout:
//! - [`meta`]: what Meta and the router agree on in every test (app secret, tokens, the
//!   business number) and signing with that secret.
//! - [`router`]: the router's configuration as tests write it, and the router started from it.
//! - [`server`]: a server of this workspace on port 0, running in the background until
//!   stopped; a free port.
//! - [`receiver`]: a real HTTP server on loopback that records what it gets and answers as
//!   told.
//! - [`wait`]: how long a test waits for what should happen promptly, and a bounded poll.
//! - [`http`]: JSON requests as tests read them: a status and a body.
//! - [`agent`]: an agent's WebSocket to the router.
//! - `sim` (feature `sim`): wa-sim in this process and a business-side WebRTC peer.

pub mod agent;
pub mod http;
pub mod meta;
pub mod receiver;
pub mod router;
pub mod server;
#[cfg(feature = "sim")]
pub mod sim;
pub mod wait;
