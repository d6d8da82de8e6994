//! Carries out the state machine's effects: a call's media and SDP, the call requests to
//! the router, the call log and the notice timer. Each result goes back in as an input.

use std::rc::Rc;

use switchboard_protocol::api::{AcceptCall, CallPlaced, CallRecord, DialerConfig, PlaceCall};
use wasm_bindgen_futures::spawn_local;
use web_sys::{RtcPeerConnection, RtcSdpType};

use super::App;
use crate::browser::api::{self, segment};
use crate::browser::dom::{log_value, sleep};
use crate::browser::media::{self, CallMedia, MediaEvent, Setup};
use crate::call::{Attempt, Effect, Input};
use crate::failure::Action;

/// How long the "taken" or "hung up" banner stays.
const NOTICE_MS: f64 = 8000.0;
/// The gathering timeout when `/api/config` could not be read.
const DEFAULT_GATHERING_MS: u32 = 3000;

impl App {
    pub(super) fn run(self: &Rc<Self>, effect: Effect) {
        match effect {
            Effect::OpenMedia { attempt } => {
                self.spawn(move |app| async move { app.open_media(attempt).await });
            }
            Effect::CreateOffer { attempt } => {
                self.spawn(move |app| async move { app.describe(attempt, None).await });
            }
            Effect::CreateAnswer { attempt, offer } => {
                self.spawn(move |app| async move { app.describe(attempt, Some(offer)).await });
            }
            Effect::ApplyAnswer { attempt, answer } => {
                self.spawn(move |app| async move { app.apply_answer(attempt, answer).await });
            }
            Effect::PostCall { attempt, to, sdp } => {
                self.spawn(move |app| async move { app.post_call(attempt, to, sdp).await });
            }
            Effect::PostAccept {
                attempt,
                call_id,
                sdp,
            } => {
                self.spawn(move |app| async move { app.post_accept(attempt, call_id, sdp).await });
            }
            Effect::PostReject { call_id } => {
                self.spawn(move |app| async move {
                    app.post_end(&call_id, "reject", Action::RejectCall).await;
                });
            }
            Effect::PostTerminate { call_id } => {
                self.spawn(move |app| async move {
                    app.post_end(&call_id, "terminate", Action::HangUp).await;
                });
            }
            Effect::SetMuted { attempt, muted } => {
                if let Some(media) = self
                    .media
                    .borrow()
                    .as_ref()
                    .filter(|m| m.attempt == attempt)
                {
                    media.set_muted(muted);
                }
            }
            Effect::CloseMedia { attempt } => {
                let mut slot = self.media.borrow_mut();
                if slot.as_ref().is_some_and(|m| m.attempt == attempt) {
                    // Dropping it stops the tracks and closes the connection.
                    slot.take();
                }
            }
            Effect::CheckCall { call_id } => {
                self.spawn(move |app| async move { app.check_call(&call_id).await });
            }
            Effect::RefreshLog => self.refresh_log(),
            Effect::ExpireNotice { call_id } => {
                self.spawn(move |app| async move {
                    sleep(NOTICE_MS).await;
                    app.handle(Input::DismissNotice { call_id });
                });
            }
        }
    }

    // A call's media.

    fn media_events(self: &Rc<Self>, attempt: Attempt) -> Rc<dyn Fn(MediaEvent)> {
        let app = Rc::downgrade(self);
        Rc::new(move |event| {
            let app = app.clone();
            // Handled outside the connection's callback: the effects may close it.
            spawn_local(async move {
                if let Some(app) = app.upgrade() {
                    match event {
                        MediaEvent::AudioPathFailed => {
                            app.handle(Input::AudioPathFailed { attempt });
                        }
                    }
                }
            });
        })
    }

    async fn open_media(self: Rc<Self>, attempt: Attempt) {
        // Fresh ICE servers (TURN credentials expire), fetched while the microphone opens.
        let fresh = api::begin("GET", "/api/config", None);
        let ice_servers = async {
            match fresh.json::<DialerConfig>().await {
                Ok(config) => {
                    let servers = config.ice_servers.clone();
                    *self.config.borrow_mut() = Some(config);
                    servers
                }
                Err(_) => self
                    .config
                    .borrow()
                    .as_ref()
                    .map(|c| c.ice_servers.clone())
                    .unwrap_or_default(),
            }
        };
        let setup = Setup {
            microphone: self.chosen_microphone(),
            remote_audio: &self.dom.remote_audio,
            meter: &self.dom.mic_level,
            on_event: self.media_events(attempt),
        };
        match CallMedia::open(attempt, setup, ice_servers).await {
            Ok(opened) => {
                if !self.dialer.borrow().wants_media(attempt) {
                    // The call ended while the microphone opened; dropping closes it.
                    return;
                }
                *self.media.borrow_mut() = Some(opened);
                self.handle(Input::MediaOpened { attempt });
                // Device names are readable once the microphone is allowed.
                self.list_microphones().await;
            }
            Err(failure) => self.handle(Input::MediaFailed { attempt, failure }),
        }
    }

    fn connection_for(&self, attempt: Attempt) -> Option<RtcPeerConnection> {
        self.media
            .borrow()
            .as_ref()
            .filter(|m| m.attempt == attempt)
            .map(CallMedia::connection)
    }

    async fn describe(self: Rc<Self>, attempt: Attempt, offer: Option<String>) {
        let Some(pc) = self.connection_for(attempt) else {
            return;
        };
        let timeout = self
            .config
            .borrow()
            .as_ref()
            .map_or(DEFAULT_GATHERING_MS, |c| c.ice_gathering_timeout_ms);
        let input = match media::describe(&pc, offer.as_deref(), timeout).await {
            Ok(sdp) => Input::LocalDescription { attempt, sdp },
            Err(failure) => Input::MediaFailed { attempt, failure },
        };
        self.handle(input);
    }

    async fn apply_answer(self: Rc<Self>, attempt: Attempt, answer: String) {
        let Some(pc) = self.connection_for(attempt) else {
            return;
        };
        let input = match media::apply(&pc, RtcSdpType::Answer, &answer).await {
            Ok(()) => Input::RemoteApplied { attempt },
            Err(failure) => Input::MediaFailed { attempt, failure },
        };
        self.handle(input);
    }

    // Calls at the router.

    async fn post_call(self: Rc<Self>, attempt: Attempt, to: String, sdp: String) {
        let result = api::post::<_, CallPlaced>("/api/calls", &PlaceCall { to, sdp }).await;
        let result = match result {
            Ok(placed) => Ok(placed.call_id.into_string()),
            Err(error) => Err(self.refused(&error, Action::PlaceCall)),
        };
        self.handle(Input::Placed { attempt, result });
    }

    async fn post_accept(self: Rc<Self>, attempt: Attempt, call_id: String, sdp: String) {
        let path = format!("/api/calls/{}/accept", segment(&call_id));
        let result = match api::post::<_, CallRecord>(&path, &AcceptCall { sdp }).await {
            Ok(_) => Ok(()),
            Err(error) => Err(self.refused(&error, Action::AcceptCall)),
        };
        self.handle(Input::Accepted { attempt, result });
    }

    async fn post_end(self: Rc<Self>, call_id: &str, verb: &str, action: Action) {
        let path = format!("/api/calls/{}/{verb}", segment(call_id));
        if let Err(error) = api::post_empty(&path).await {
            let failure = self.refused(&error, action);
            self.problem(failure);
        }
        self.refresh_log();
    }

    async fn check_call(self: Rc<Self>, call_id: &str) {
        match api::get::<CallRecord>(&format!("/api/calls/{}", segment(call_id))).await {
            Ok(record) => self.handle(Input::Checked(record)),
            Err(error) => {
                let failure = error.failure(Action::LoadCallLog);
                log_value(
                    "could not check a call after reconnecting:",
                    &failure.message.into(),
                );
            }
        }
    }
}
