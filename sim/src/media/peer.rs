//! A real WebRTC peer (webrtc-rs) that sends a tone and measures what it receives.
//!
//! Playing the WhatsApp user ([`Role::MetaUser`]) it looks like Meta's media relay:
//! ICE-lite, one host candidate on the configured address, Opus on payload type 111 and
//! telephone-event/8000 on 126, `setup:actpass` in its offers and `setup:active` in its
//! answers. Playing the business ([`Role::Business`]) it is a full ICE agent like a
//! browser, so integration tests need no browser. mDNS is off and sockets bind to one
//! address, so tests never leave loopback.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rtc::ice::mdns::MulticastDnsMode;
use rtc::ice::network_type::NetworkType;
use rtc::media::Sample;
use rtc::peer_connection::transport::RTCDtlsRole;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters,
    RTCRtpHeaderExtensionCapability, RtpCodecKind,
};
use switchboard_protocol::sim::MediaReport;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::media_stream::{MediaStreamTrack, Track};
use webrtc::peer_connection::{
    register_default_interceptors, MediaEngine, PeerConnection, PeerConnectionBuilder,
    PeerConnectionEventHandler, RTCConfigurationBuilder, RTCIceGatheringState,
    RTCPeerConnectionState, RTCSessionDescription, Registry, SettingEngineBuilder,
};
use webrtc::rtp_transceiver::RtpSender;

use super::meter::{MediaMeter, Received};
use super::tone::{Frames, OggError};
use crate::sdp::audio_level_extension_id;

const OPUS_PAYLOAD_TYPE: u8 = 111;
const TELEPHONE_EVENT_PAYLOAD_TYPE: u8 = 126;
const FRAME: Duration = Duration::from_millis(20);
/// How long to wait for ICE gathering; host candidates on one address take milliseconds.
const GATHERING_LIMIT: Duration = Duration::from_secs(5);
const AUDIO_LEVEL_URI: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";

/// Which side of the call the peer plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The WhatsApp user behind Meta's relay: ICE-lite.
    MetaUser,
    /// The business (what a browser dialer does): a full ICE agent.
    Business,
}

/// What the peer sends once connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audio {
    /// A steady 440 Hz tone.
    Tone,
    /// Opus silence frames: packets, no sound.
    Silence,
    /// Nothing at all, like a dialer that never attached its microphone.
    Nothing,
}

#[derive(Debug, Clone, Copy)]
pub struct PeerOptions {
    pub role: Role,
    pub bind_ip: IpAddr,
    pub audio: Audio,
}

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("WebRTC: {0}")]
    WebRtc(#[from] webrtc::error::Error),
    #[error("ICE gathering did not complete within {0:?}")]
    GatheringTimedOut(Duration),
    #[error("the peer has no local description after setting one")]
    NoLocalDescription,
    #[error(transparent)]
    Tone(#[from] OggError),
}

/// One peer connection with its tone sender and its meter. Close it with
/// [`MediaPeer::close`]; its tasks stop then.
pub struct MediaPeer {
    connection: Arc<dyn PeerConnection>,
    meter: Arc<MediaMeter>,
    gathered: watch::Receiver<bool>,
    audio_level_id: Arc<Mutex<Option<u8>>>,
    stop: CancellationToken,
}

/// Receives the connection's events.
struct Events {
    meter: Arc<MediaMeter>,
    gathered: watch::Sender<bool>,
    connected: watch::Sender<bool>,
    audio_level_id: Arc<Mutex<Option<u8>>>,
    stop: CancellationToken,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Events {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            self.gathered.send_replace(true);
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        tracing::debug!(%state, "peer connection state");
        self.meter.set_connection_state(&state.to_string());
        if state == RTCPeerConnectionState::Connected {
            self.connected.send_replace(true);
        }
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let meter = Arc::clone(&self.meter);
        let audio_level_id = Arc::clone(&self.audio_level_id);
        let stop = self.stop.clone();
        tokio::spawn(async move {
            loop {
                let event = tokio::select! {
                    () = stop.cancelled() => return,
                    event = track.poll() => event,
                };
                match event {
                    None => return,
                    Some(TrackRemoteEvent::OnRtpPacket(packet)) => {
                        let id = *audio_level_id
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner);
                        let level = id
                            .and_then(|id| packet.header.get_extension(id))
                            .and_then(|payload| payload.first().copied());
                        meter.received(Received {
                            payload: &packet.payload,
                            audio_level: level,
                        });
                    }
                    Some(_) => {}
                }
            }
        });
    }
}

impl MediaPeer {
    pub async fn start(options: PeerOptions) -> Result<Self, MediaError> {
        let frames = match options.audio {
            Audio::Tone => Some(Frames::tone()?),
            Audio::Silence => Some(Frames::silence()),
            Audio::Nothing => None,
        };
        let meter = Arc::new(MediaMeter::new());
        let stop = CancellationToken::new();
        let (gathered_tx, gathered) = watch::channel(false);
        let (connected_tx, connected) = watch::channel(false);
        let audio_level_id = Arc::new(Mutex::new(None));
        let events = Arc::new(Events {
            meter: Arc::clone(&meter),
            gathered: gathered_tx,
            connected: connected_tx,
            audio_level_id: Arc::clone(&audio_level_id),
            stop: stop.clone(),
        });

        let connection = connect(&options, events).await?;

        let track = audio_track()?;
        let sender = connection
            .add_track(Arc::clone(&track) as Arc<dyn TrackLocal>)
            .await?;
        // A track names one codec; offer and answer DTMF beside it, as Meta does.
        for transceiver in connection.get_transceivers().await {
            transceiver
                .set_codec_preferences(vec![opus_codec(), telephone_event_codec()])
                .await?;
        }
        if let Some(frames) = frames {
            let sending = SendLoop {
                track,
                sender,
                frames,
                meter: Arc::clone(&meter),
            };
            tokio::spawn(sending.run(connected, stop.clone()));
        }

        Ok(Self {
            connection,
            meter,
            gathered,
            audio_level_id,
            stop,
        })
    }

    /// Creates an offer and returns it with every candidate in it (no trickle ICE).
    pub async fn create_offer(&self) -> Result<String, MediaError> {
        let offer = self.connection.create_offer(None).await?;
        self.connection.set_local_description(offer).await?;
        let sdp = self.gathered_local_sdp().await?;
        self.learn_audio_level_id(&sdp);
        Ok(sdp)
    }

    /// Applies a remote offer and returns the complete answer.
    pub async fn answer(&self, offer: &str) -> Result<String, MediaError> {
        self.connection
            .set_remote_description(RTCSessionDescription::offer(offer.to_owned())?)
            .await?;
        self.learn_audio_level_id(offer);
        let answer = self.connection.create_answer(None).await?;
        self.connection.set_local_description(answer).await?;
        self.gathered_local_sdp().await
    }

    /// Applies the remote answer to this peer's offer.
    pub async fn apply_answer(&self, answer: &str) -> Result<(), MediaError> {
        self.connection
            .set_remote_description(RTCSessionDescription::answer(answer.to_owned())?)
            .await?;
        self.learn_audio_level_id(answer);
        Ok(())
    }

    pub fn report(&self) -> MediaReport {
        self.meter.report()
    }

    /// Stops sending and closes the connection.
    pub async fn close(&self) {
        self.stop.cancel();
        if let Err(error) = self.connection.close().await {
            tracing::debug!(%error, "closing a peer connection");
        }
        self.meter.set_connection_state("closed");
    }

    fn learn_audio_level_id(&self, sdp: &str) {
        if let Some(id) = audio_level_extension_id(sdp) {
            *self
                .audio_level_id
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(id);
        }
    }

    async fn gathered_local_sdp(&self) -> Result<String, MediaError> {
        let mut gathered = self.gathered.clone();
        tokio::time::timeout(GATHERING_LIMIT, gathered.wait_for(|done| *done))
            .await
            .map_err(|_| MediaError::GatheringTimedOut(GATHERING_LIMIT))?
            .map_err(|_| MediaError::GatheringTimedOut(GATHERING_LIMIT))?;
        self.connection
            .local_description()
            .await
            .map(|description| description.sdp)
            .ok_or(MediaError::NoLocalDescription)
    }
}

/// A peer connection with Opus, DTMF and the audio-level extension, on `options.bind_ip`
/// only, with mDNS off (it fails in a loopback-only namespace).
async fn connect(
    options: &PeerOptions,
    events: Arc<Events>,
) -> Result<Arc<dyn PeerConnection>, MediaError> {
    let mut media_engine = MediaEngine::default();
    media_engine.register_codec(opus_codec(), RtpCodecKind::Audio)?;
    media_engine.register_codec(telephone_event_codec(), RtpCodecKind::Audio)?;
    media_engine.register_header_extension(
        RTCRtpHeaderExtensionCapability {
            uri: AUDIO_LEVEL_URI.into(),
        },
        RtpCodecKind::Audio,
        None,
    )?;
    let registry = register_default_interceptors(Registry::new(), &mut media_engine)?;
    let network = if options.bind_ip.is_ipv4() {
        NetworkType::Udp4
    } else {
        NetworkType::Udp6
    };
    let settings = SettingEngineBuilder::new()
        .with_lite(options.role == Role::MetaUser)
        .with_multicast_dns_mode(MulticastDnsMode::Disabled)
        .with_network_types(vec![network])
        .with_include_loopback_candidate(true)
        .with_answering_dtls_role(RTCDtlsRole::Client)
        .build();
    let connection = PeerConnectionBuilder::new()
        .with_configuration(RTCConfigurationBuilder::new().build())
        .with_media_engine(media_engine)
        .with_setting_engine(settings)
        .with_interceptor_registry(registry)
        .with_handler(events)
        .with_udp_addrs(vec![std::net::SocketAddr::new(options.bind_ip, 0)])
        .build()
        .await?;
    Ok(Arc::new(connection))
}

/// The one audio track the peer sends on.
fn audio_track() -> Result<Arc<TrackLocalStaticSample>, MediaError> {
    Ok(Arc::new(TrackLocalStaticSample::new(
        Instant::now(),
        MediaStreamTrack::new(
            "WhatsAppStream1".into(),
            "WhatsAppTrack1".into(),
            "audio".into(),
            RtpCodecKind::Audio,
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    ssrc: Some(rand::random::<u32>()),
                    ..Default::default()
                },
                codec: opus_codec().rtp_codec,
                ..Default::default()
            }],
        ),
    )?))
}

impl Drop for MediaPeer {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn opus_codec() -> RTCRtpCodecParameters {
    RTCRtpCodecParameters {
        rtp_codec: RTCRtpCodec {
            mime_type: "audio/opus".into(),
            clock_rate: 48000,
            channels: 2,
            sdp_fmtp_line: "minptime=10;useinbandfec=1".into(),
            rtcp_feedback: vec![],
        },
        payload_type: OPUS_PAYLOAD_TYPE,
    }
}

fn telephone_event_codec() -> RTCRtpCodecParameters {
    RTCRtpCodecParameters {
        rtp_codec: RTCRtpCodec {
            mime_type: "audio/telephone-event".into(),
            clock_rate: 8000,
            channels: 1,
            sdp_fmtp_line: "0-16".into(),
            rtcp_feedback: vec![],
        },
        payload_type: TELEPHONE_EVENT_PAYLOAD_TYPE,
    }
}

/// Sends one frame every 20 ms from the moment the connection is up.
struct SendLoop {
    track: Arc<TrackLocalStaticSample>,
    sender: Arc<dyn RtpSender>,
    frames: Frames,
    meter: Arc<MediaMeter>,
}

impl SendLoop {
    async fn run(self, mut connected: watch::Receiver<bool>, stop: CancellationToken) {
        tokio::select! {
            () = stop.cancelled() => return,
            result = connected.wait_for(|up| *up) => if result.is_err() { return },
        }
        let Some(ssrc) = self.track.ssrcs().await.first().copied() else {
            tracing::warn!("the audio track has no SSRC; sending nothing");
            return;
        };
        let payload_type = match self.sender.get_parameters().await {
            Ok(parameters) => parameters
                .rtp_parameters
                .codecs
                .first()
                .map_or(OPUS_PAYLOAD_TYPE, |codec| codec.payload_type),
            Err(_) => OPUS_PAYLOAD_TYPE,
        };
        let mut ticker = tokio::time::interval(FRAME);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        for n in 0u64.. {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = ticker.tick() => {}
            }
            let data = self.frames.frame(n);
            let len = data.len();
            let sample = Sample {
                data,
                duration: FRAME,
                ..Sample::new(Instant::now())
            };
            match self
                .track
                .write_sample(ssrc, payload_type, &sample, &[])
                .await
            {
                Ok(()) => self.meter.sent(len),
                Err(error) => tracing::trace!(%error, "audio frame not sent"),
            }
        }
    }
}
