//! The microphone and the peer connection of one call.
//!
//! [`CallMedia::open`] is the only way to get a peer connection, and it adds the
//! microphone track before handing it out, so no offer or answer can be made without the
//! track. Descriptions are sent only after ICE gathering finished (or timed out), and what
//! is sent is `localDescription.sdp`, candidates included. Dropping a `CallMedia` stops the
//! tracks, closes the connection and the level meter, and drops every closure it gave the
//! browser.

use std::rc::Rc;

use js_sys::{Array, Object, Promise, Reflect};
use switchboard_protocol::api::IceServer;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    AnalyserNode, AudioContext, DomException, Event, HtmlAudioElement, HtmlMeterElement,
    MediaDeviceInfo, MediaDeviceKind, MediaDevices, MediaStream, MediaStreamAudioSourceNode,
    MediaStreamConstraints, MediaStreamTrack, MediaTrackConstraints, RtcConfiguration,
    RtcIceConnectionState, RtcIceGatheringState, RtcIceServer, RtcPeerConnection,
    RtcPeerConnectionIceEvent, RtcRtpSender, RtcSdpType, RtcSessionDescriptionInit, RtcTrackEvent,
};

use super::dom::{log, log_value, window, Interval, Listener};
use crate::call::Attempt;
use crate::failure::{Failure, MicProblem};

/// What the media of a call reports on its own.
pub enum MediaEvent {
    /// ICE failed: no network path for the audio.
    AudioPathFailed,
}

/// The microphone, the peer connection, the remote audio and the level meter of a call.
pub struct CallMedia {
    pub attempt: Attempt,
    pc: RtcPeerConnection,
    track: MediaStreamTrack,
    sender: RtcRtpSender,
    remote_audio: HtmlAudioElement,
    meter: Option<LevelMeter>,
    meter_element: HtmlMeterElement,
    listeners: Vec<Listener>,
}

/// Where the peer connection and the page meet.
pub struct Setup<'a> {
    pub microphone: Option<String>,
    pub remote_audio: &'a HtmlAudioElement,
    pub meter: &'a HtmlMeterElement,
    pub on_event: Rc<dyn Fn(MediaEvent)>,
}

impl CallMedia {
    /// Opens the microphone, creates the peer connection with the ICE servers (awaited
    /// only once the microphone is open, so both can be fetched at once) and adds the
    /// microphone track.
    pub async fn open(
        attempt: Attempt,
        setup: Setup<'_>,
        ice_servers: impl std::future::Future<Output = Vec<IceServer>>,
    ) -> Result<Self, Failure> {
        let stream = open_microphone(setup.microphone.as_deref()).await?;
        let Some(track) = first_audio_track(&stream) else {
            return Err(Failure::microphone(&MicProblem::NotFound));
        };
        let ice_servers = ice_servers.await;
        let pc = match peer_connection(&ice_servers) {
            Ok(pc) => pc,
            Err(e) => {
                track.stop();
                return Err(Failure::webrtc(&describe_error(&e)));
            }
        };
        // The track goes on before anything else happens to the connection.
        let sender = pc.add_track_0(&track, &stream);
        let listeners = vec![
            play_remote_audio(&pc, setup.remote_audio),
            watch_ice(&pc, setup.on_event),
        ];
        let meter = LevelMeter::new(&stream, setup.meter).ok();
        Ok(Self {
            attempt,
            pc,
            track,
            sender,
            remote_audio: setup.remote_audio.clone(),
            meter,
            meter_element: setup.meter.clone(),
            listeners,
        })
    }

    /// A handle on the connection for async work that must not hold `self`.
    pub fn connection(&self) -> RtcPeerConnection {
        self.pc.clone()
    }

    pub fn set_muted(&self, muted: bool) {
        self.track.set_enabled(!muted);
    }

    /// Swaps the microphone mid-call without renegotiating.
    pub async fn switch_microphone(&mut self, device: Option<&str>) -> Result<(), Failure> {
        let stream = open_microphone(device).await?;
        let Some(track) = first_audio_track(&stream) else {
            return Err(Failure::microphone(&MicProblem::NotFound));
        };
        track.set_enabled(self.track.enabled());
        if let Err(e) = JsFuture::from(self.sender.replace_track(Some(&track))).await {
            track.stop();
            return Err(Failure::webrtc(&describe_error(&e)));
        }
        self.track.stop();
        self.track = track;
        self.meter = LevelMeter::new(&stream, &self.meter_element).ok();
        Ok(())
    }
}

impl Drop for CallMedia {
    fn drop(&mut self) {
        self.listeners.clear();
        self.meter = None;
        self.track.stop();
        for sender in self.pc.get_senders().iter() {
            if let Some(track) = sender
                .dyn_ref::<RtcRtpSender>()
                .and_then(RtcRtpSender::track)
            {
                track.stop();
            }
        }
        self.pc.close();
        self.remote_audio.set_src_object(None);
        self.meter_element.set_value(0.0);
    }
}

fn media_devices() -> Result<MediaDevices, Failure> {
    // Outside a secure context `navigator.mediaDevices` is undefined.
    let navigator = window().navigator();
    let devices = Reflect::get(&navigator, &"mediaDevices".into()).unwrap_or(JsValue::UNDEFINED);
    if devices.is_undefined() {
        return Err(Failure::microphone(&MicProblem::InsecurePage));
    }
    navigator
        .media_devices()
        .map_err(|_| Failure::microphone(&MicProblem::InsecurePage))
}

async fn open_microphone(device: Option<&str>) -> Result<MediaStream, Failure> {
    let devices = media_devices()?;
    let audio = MediaTrackConstraints::new();
    audio.set_echo_cancellation_bool(true);
    audio.set_noise_suppression_bool(true);
    audio.set_auto_gain_control_bool(true);
    if let Some(device) = device.filter(|d| !d.is_empty()) {
        let exact = Object::new();
        let _ = Reflect::set(&exact, &"exact".into(), &device.into());
        audio.set_device_id(&exact);
    }
    let constraints = MediaStreamConstraints::new();
    constraints.set_audio(&audio);
    let promise = devices
        .get_user_media_with_constraints(&constraints)
        .map_err(|e| Failure::microphone(&mic_problem(&e)))?;
    JsFuture::from(promise)
        .await
        .map_err(|e| Failure::microphone(&mic_problem(&e)))?
        .dyn_into::<MediaStream>()
        .map_err(|_| Failure::microphone(&MicProblem::NotFound))
}

fn mic_problem(error: &JsValue) -> MicProblem {
    let name = error
        .dyn_ref::<DomException>()
        .map(DomException::name)
        .unwrap_or_default();
    match name.as_str() {
        "NotAllowedError" | "SecurityError" | "PermissionDeniedError" => MicProblem::Denied,
        "NotFoundError" | "OverconstrainedError" | "DevicesNotFoundError" => MicProblem::NotFound,
        "NotReadableError" | "AbortError" | "TrackStartError" => MicProblem::Busy,
        _ => MicProblem::Other(describe_error(error)),
    }
}

fn first_audio_track(stream: &MediaStream) -> Option<MediaStreamTrack> {
    stream
        .get_audio_tracks()
        .iter()
        .next()
        .and_then(|t| t.dyn_into::<MediaStreamTrack>().ok())
}

pub fn describe_error(error: &JsValue) -> String {
    if let Some(exception) = error.dyn_ref::<DomException>() {
        return format!("{}: {}", exception.name(), exception.message());
    }
    if let Some(e) = error.dyn_ref::<js_sys::Error>() {
        return String::from(e.message());
    }
    error
        .as_string()
        .unwrap_or_else(|| "unknown error".to_owned())
}

fn peer_connection(ice_servers: &[IceServer]) -> Result<RtcPeerConnection, JsValue> {
    let servers = Array::new();
    for server in ice_servers {
        let entry = RtcIceServer::new();
        let urls: Array = server.urls.iter().map(|u| JsValue::from_str(u)).collect();
        entry.set_urls(&urls);
        if let Some(username) = &server.username {
            entry.set_username(username);
        }
        if let Some(credential) = &server.credential {
            entry.set_credential(credential);
        }
        servers.push(&entry);
    }
    let config = RtcConfiguration::new();
    config.set_ice_servers(&servers);
    RtcPeerConnection::new_with_configuration(&config)
}

/// Plays what the customer says through the page's `<audio>`.
fn play_remote_audio(pc: &RtcPeerConnection, audio: &HtmlAudioElement) -> Listener {
    let audio = audio.clone();
    Listener::new(pc, "track", move |event: Event| {
        let Some(event) = event.dyn_ref::<RtcTrackEvent>() else {
            return;
        };
        let stream = event
            .streams()
            .iter()
            .next()
            .and_then(|s| s.dyn_into::<MediaStream>().ok())
            .or_else(|| {
                let stream = MediaStream::new().ok()?;
                stream.add_track(&event.track());
                Some(stream)
            });
        audio.set_src_object(stream.as_ref());
        // Autoplay may be refused until the agent interacts; the call button counts.
        if let Ok(playing) = audio.play() {
            wasm_bindgen_futures::spawn_local(async move {
                if let Err(e) = JsFuture::from(playing).await {
                    log_value("remote audio did not start:", &e);
                }
            });
        }
    })
}

fn watch_ice(pc: &RtcPeerConnection, on_event: Rc<dyn Fn(MediaEvent)>) -> Listener {
    let watched = pc.clone();
    Listener::new(pc, "iceconnectionstatechange", move |_| {
        let state = watched.ice_connection_state();
        if let Ok(name) = Reflect::get(&watched, &"iceConnectionState".into()) {
            log_value("ICE connection:", &name);
        }
        if state == RtcIceConnectionState::Failed {
            on_event(MediaEvent::AudioPathFailed);
        }
    })
}

/// Makes the local offer (or, given Meta's offer, the answer), waits for ICE gathering
/// and returns the complete local description.
pub async fn describe(
    pc: &RtcPeerConnection,
    remote_offer: Option<&str>,
    gathering_timeout_ms: u32,
) -> Result<String, Failure> {
    let webrtc = |e: JsValue| Failure::webrtc(&describe_error(&e));
    let kind = match remote_offer {
        Some(offer) => {
            apply(pc, RtcSdpType::Offer, offer).await?;
            RtcSdpType::Answer
        }
        None => RtcSdpType::Offer,
    };
    let made = match kind {
        RtcSdpType::Answer => JsFuture::from(pc.create_answer()).await,
        _ => JsFuture::from(pc.create_offer()).await,
    }
    .map_err(webrtc)?;
    let sdp = Reflect::get(&made, &"sdp".into())
        .ok()
        .and_then(|s| s.as_string())
        .unwrap_or_default();
    let local = RtcSessionDescriptionInit::new(kind);
    local.set_sdp(&sdp);
    JsFuture::from(pc.set_local_description(&local))
        .await
        .map_err(webrtc)?;
    wait_for_gathering(pc, gathering_timeout_ms).await;
    pc.local_description()
        .map(|d| d.sdp())
        .filter(|sdp| !sdp.is_empty())
        .ok_or_else(|| Failure::webrtc("no local description"))
}

/// Applies a remote description (Meta's offer or answer).
pub async fn apply(pc: &RtcPeerConnection, kind: RtcSdpType, sdp: &str) -> Result<(), Failure> {
    let remote = RtcSessionDescriptionInit::new(kind);
    remote.set_sdp(sdp);
    JsFuture::from(pc.set_remote_description(&remote))
        .await
        .map(|_| ())
        .map_err(|e| Failure::webrtc(&describe_error(&e)))
}

/// Waits until ICE gathering is complete (the state change, or the final null candidate),
/// or until the timeout: Meta takes no trickled candidates, so the description must carry
/// them all, but a slow STUN or TURN server must not hold the call up.
async fn wait_for_gathering(pc: &RtcPeerConnection, timeout_ms: u32) {
    if pc.ice_gathering_state() == RtcIceGatheringState::Complete {
        return;
    }
    let mut listeners = Vec::new();
    let mut timer = None;
    let done = Promise::new(&mut |resolve, _reject| {
        let finish = resolve.clone();
        let watched = pc.clone();
        listeners.push(Listener::new(pc, "icegatheringstatechange", move |_| {
            if watched.ice_gathering_state() == RtcIceGatheringState::Complete {
                let _ = finish.call0(&JsValue::UNDEFINED);
            }
        }));
        let finish = resolve.clone();
        listeners.push(Listener::new(pc, "icecandidate", move |event: Event| {
            let last = event
                .dyn_ref::<RtcPeerConnectionIceEvent>()
                .is_some_and(|e| e.candidate().is_none());
            if last {
                let _ = finish.call0(&JsValue::UNDEFINED);
            }
        }));
        timer = window()
            .set_timeout_with_callback_and_timeout_and_arguments_0(
                &resolve,
                i32::try_from(timeout_ms).unwrap_or(i32::MAX),
            )
            .ok();
        if pc.ice_gathering_state() == RtcIceGatheringState::Complete {
            let _ = resolve.call0(&JsValue::UNDEFINED);
        }
    });
    let _ = JsFuture::from(done).await;
    if let Some(timer) = timer {
        window().clear_timeout_with_handle(timer);
    }
    if pc.ice_gathering_state() != RtcIceGatheringState::Complete {
        log("ICE gathering timed out; sending the candidates gathered so far");
    }
    drop(listeners);
}

/// The microphone's loudness, shown live in a `<meter>`.
struct LevelMeter {
    context: AudioContext,
    /// Held so the graph's input lives exactly as long as the meter.
    _source: MediaStreamAudioSourceNode,
    _tick: Interval,
}

impl LevelMeter {
    fn new(stream: &MediaStream, meter: &HtmlMeterElement) -> Result<Self, JsValue> {
        let context = AudioContext::new()?;
        let source = context.create_media_stream_source(stream)?;
        let analyser = AnalyserNode::new(&context)?;
        analyser.set_fft_size(2048);
        source.connect_with_audio_node(&analyser)?;
        let meter = meter.clone();
        let mut samples = vec![0f32; 2048];
        let tick = Interval::new(100, move || {
            analyser.get_float_time_domain_data(&mut samples);
            let peak = samples.iter().fold(0f32, |peak, s| peak.max(s.abs()));
            meter.set_value(meter_level(f64::from(peak)));
        });
        // Some browsers start a context suspended until a gesture; the call click was one.
        if let Ok(resumed) = context.resume() {
            drop(resumed);
        }
        Ok(Self {
            context,
            _source: source,
            _tick: tick,
        })
    }
}

/// A peak sample as the meter shows it: decibels from -60 dBFS (empty) to -6 dBFS
/// (full), as audio meters do, so speech sits mid-scale and silence reads zero.
fn meter_level(peak: f64) -> f64 {
    if peak <= 0.0 {
        return 0.0;
    }
    let dbfs = 20.0 * js_sys::Math::log10(peak);
    ((dbfs + 60.0) / 54.0).clamp(0.0, 1.0)
}

impl Drop for LevelMeter {
    fn drop(&mut self) {
        if let Ok(closed) = self.context.close() {
            drop(closed);
        }
    }
}

/// The microphones the browser offers: (device id, label).
pub async fn microphones() -> Vec<(String, String)> {
    let Ok(devices) = media_devices() else {
        return Vec::new();
    };
    let Ok(promise) = devices.enumerate_devices() else {
        return Vec::new();
    };
    let Ok(list) = JsFuture::from(promise).await else {
        return Vec::new();
    };
    Array::from(&list)
        .iter()
        .filter_map(|d| d.dyn_into::<MediaDeviceInfo>().ok())
        .filter(|d| d.kind() == MediaDeviceKind::Audioinput)
        .map(|d| (d.device_id(), d.label()))
        .collect()
}

/// The figures the browser tests read: packets and energy both ways, and the
/// connection's states. Zeros when there is no call.
pub async fn stats(pc: Option<RtcPeerConnection>) -> Object {
    let out = Object::new();
    let set = |key: &str, value: JsValue| {
        let _ = Reflect::set(&out, &key.into(), &value);
    };
    for key in [
        "packetsSent",
        "packetsReceived",
        "bytesReceived",
        "totalAudioEnergy",
    ] {
        set(key, JsValue::from_f64(0.0));
    }
    set("iceConnectionState", "none".into());
    set("connectionState", "none".into());
    let Some(pc) = pc else {
        return out;
    };
    set(
        "iceConnectionState",
        state_name(&Reflect::get(&pc, &"iceConnectionState".into())),
    );
    set(
        "connectionState",
        state_name(&Reflect::get(&pc, &"connectionState".into())),
    );
    let Ok(report) = JsFuture::from(pc.get_stats()).await else {
        return out;
    };
    let Ok(Some(entries)) = js_sys::try_iter(&report) else {
        return out;
    };
    let number = |stat: &JsValue, key: &str| {
        Reflect::get(stat, &key.into())
            .ok()
            .and_then(|v| v.as_f64())
            .unwrap_or(0.0)
    };
    let text = |stat: &JsValue, key: &str| {
        Reflect::get(stat, &key.into())
            .ok()
            .and_then(|v| v.as_string())
            .unwrap_or_default()
    };
    let (mut sent, mut received, mut bytes, mut energy) = (0.0, 0.0, 0.0, 0.0);
    for entry in entries.flatten() {
        // Each entry is [id, stats].
        let stat = Reflect::get_u32(&entry, 1).unwrap_or(JsValue::UNDEFINED);
        let audio = text(&stat, "kind") == "audio" || text(&stat, "mediaType") == "audio";
        match text(&stat, "type").as_str() {
            "outbound-rtp" if audio => sent += number(&stat, "packetsSent"),
            "inbound-rtp" if audio => {
                received += number(&stat, "packetsReceived");
                bytes += number(&stat, "bytesReceived");
                energy += number(&stat, "totalAudioEnergy");
            }
            _ => {}
        }
    }
    set("packetsSent", sent.into());
    set("packetsReceived", received.into());
    set("bytesReceived", bytes.into());
    set("totalAudioEnergy", energy.into());
    out
}

fn state_name(value: &Result<JsValue, JsValue>) -> JsValue {
    value
        .as_ref()
        .ok()
        .filter(|v| v.is_string())
        .cloned()
        .unwrap_or_else(|| "none".into())
}
