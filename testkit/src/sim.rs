//! wa-sim in this process, and a business-side WebRTC peer (wa-sim's own peer in the
//! business's role: the agent's browser in the end-to-end tests).

use std::net::{IpAddr, Ipv4Addr};

use wa_sim::media::{Audio, MediaPeer, PeerOptions, Role};
use wa_sim::{Config, Simulator};

use crate::server::Running;

/// wa-sim built from `config`, serving in this process.
pub fn start_sim(config: Config) -> anyhow::Result<Running<Simulator>> {
    Ok(Running::spawn(Simulator::build(config)?))
}

/// The business's WebRTC peer, on loopback like everything here, playing `audio`.
pub async fn business_peer(audio: Audio) -> MediaPeer {
    MediaPeer::start(PeerOptions {
        role: Role::Business,
        bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        audio,
    })
    .await
    .expect("the peer starts")
}
