//! The simulated user's real WebRTC peer, its tone, and the meter that says whether
//! audio arrived.

pub mod meter;
pub mod peer;
pub mod tone;

pub use peer::{Audio, MediaError, MediaPeer, PeerOptions, Role};
