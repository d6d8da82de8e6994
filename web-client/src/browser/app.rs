//! The dialer page: it feeds the state machine, carries out the effects it returns, and
//! renders it. Page-lifetime handlers live in `App::listeners`; a call's handlers live in
//! its `CallMedia`, a connection's in its `Socket`, and go with them.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::rc::{Rc, Weak};

use switchboard_protocol::api::{
    AcceptCall, CallLog, CallPlaced, CallRecord, DialerConfig, Login, PermissionState, PlaceCall,
    RequestPermission, Session,
};
use switchboard_protocol::ws::ServerEvent;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::spawn_local;
use web_sys::{Element, Event, EventTarget, KeyboardEvent, RtcPeerConnection, RtcSdpType};

use super::api::{self, segment, ApiError};
use super::dom::{self, log, log_value, now, set_attr, show, sleep, Dom, Interval, Listener};
use super::media::{self, CallMedia, MediaEvent, Setup};
use super::socket::{Socket, SocketEvent};
use super::view;
use crate::backoff::Backoff;
use crate::call::{Attempt, Dialer, Effect, Input, Phase};
use crate::display;
use crate::failure::{Action, Failure};
use crate::permission::{self, Known};

/// How long the "taken" or "hung up" banner stays.
const NOTICE_MS: f64 = 8000.0;
/// How long typing must pause before the permission is looked up.
const TYPING_PAUSE_MS: f64 = 400.0;
/// The gathering timeout when `/api/config` could not be read.
const DEFAULT_GATHERING_MS: u32 = 3000;
/// Reconnect attempts after which the session itself is checked.
const CHECK_SESSION_AFTER: u32 = 3;
const MIC_KEY: &str = "switchboard.microphone";

pub struct App {
    dom: Dom,
    dialer: RefCell<Dialer>,
    config: RefCell<Option<DialerConfig>>,
    media: RefCell<Option<CallMedia>>,
    socket: RefCell<Option<Socket>>,
    /// Which socket is current; events of older ones are ignored.
    socket_generation: Cell<u32>,
    ever_connected: Cell<bool>,
    /// The "can't open its live connection" message is showing.
    socket_trouble: Cell<bool>,
    backoff: RefCell<Backoff>,
    timer: RefCell<Option<Interval>>,
    log: RefCell<Vec<CallRecord>>,
    log_loading: Cell<bool>,
    log_again: Cell<bool>,
    permission: RefCell<Known>,
    permission_note: RefCell<Option<String>>,
    typing: Cell<u32>,
    signed_in: Cell<bool>,
    listeners: RefCell<Vec<Listener>>,
}

impl App {
    pub fn new(dom: Dom) -> Rc<Self> {
        Rc::new(Self {
            dom,
            dialer: RefCell::new(Dialer::new()),
            config: RefCell::new(None),
            media: RefCell::new(None),
            socket: RefCell::new(None),
            socket_generation: Cell::new(0),
            ever_connected: Cell::new(false),
            socket_trouble: Cell::new(false),
            backoff: RefCell::new(Backoff::new()),
            timer: RefCell::new(None),
            log: RefCell::new(Vec::new()),
            log_loading: Cell::new(false),
            log_again: Cell::new(false),
            permission: RefCell::new(Known::Unknown),
            permission_note: RefCell::new(None),
            typing: Cell::new(0),
            signed_in: Cell::new(false),
            listeners: RefCell::new(Vec::new()),
        })
    }

    /// Wires the page and resumes the session if the cookie is still good.
    pub fn start(self: &Rc<Self>) {
        self.wire();
        self.render();
        view::connection(&self.dom, false, false);
        self.spawn(|app| async move {
            app.clone().resume_session().await;
            // Ready: the sign-in form or the dialer is showing.
            set_attr(&app.dom.body, "data-ready", "true");
        });
    }

    fn spawn<F, Fut>(self: &Rc<Self>, task: F)
    where
        F: FnOnce(Rc<Self>) -> Fut,
        Fut: Future<Output = ()> + 'static,
    {
        spawn_local(task(self.clone()));
    }

    /// Registers a page-lifetime handler. Handlers are plain functions of the app and the
    /// event, so every registration shares one closure type.
    fn on(
        self: &Rc<Self>,
        target: &EventTarget,
        kind: &'static str,
        handler: fn(&Rc<Self>, Event),
    ) {
        let app = Rc::downgrade(self);
        let listener = Listener::new(target, kind, move |event| {
            if let Some(app) = app.upgrade() {
                handler(&app, event);
            }
        });
        self.listeners.borrow_mut().push(listener);
    }

    fn wire(self: &Rc<Self>) {
        let dom = &self.dom;
        self.on(&dom.sign_in_form, "submit", |app, event| {
            event.prevent_default();
            app.spawn(|app| async move { app.sign_in().await });
        });
        self.on(&dom.sign_out, "click", |app, _| {
            app.spawn(|app| async move { app.sign_out().await });
        });
        self.on(&dom.dismiss_error, "click", |app, _| {
            app.handle(Input::DismissError);
        });
        self.on(&dom.dial_form, "submit", |app, event| {
            event.prevent_default();
            let to = app.dom.dial_to.value();
            app.handle(Input::Place { to });
        });
        self.on(&dom.dial_to, "input", |app, _| app.typed());
        self.on(&dom.request_permission, "click", |app, _| {
            app.spawn(|app| async move { app.request_permission().await });
        });
        self.on(&dom.hangup, "click", |app, _| app.handle(Input::HangUp));
        self.on(&dom.mute, "click", |app, _| app.handle(Input::ToggleMute));
        self.on(&dom.mic_select, "change", |app, _| {
            app.spawn(|app| async move { app.choose_microphone().await });
        });
        self.on(&dom.accept, "click", |app, _| {
            if let Some(call_id) = app.dom.incoming.get_attribute("data-call-id") {
                app.handle(Input::Accept { call_id });
            }
        });
        self.on(&dom.reject, "click", |app, _| {
            if let Some(call_id) = app.dom.incoming.get_attribute("data-call-id") {
                app.handle(Input::Reject { call_id });
            }
        });
        self.on(&dom.dismiss_incoming, "click", |app, _| {
            if let Some(call_id) = app.dom.incoming.get_attribute("data-call-id") {
                app.handle(Input::DismissNotice { call_id });
            }
        });
        self.on(&dom.call_log, "click", |app, event| {
            app.log_entry_chosen(&event)
        });
        self.on(&dom.call_log, "keydown", |app, event| {
            let key = event
                .dyn_ref::<KeyboardEvent>()
                .map(KeyboardEvent::key)
                .unwrap_or_default();
            if key == "Enter" || key == " " {
                event.prevent_default();
                app.log_entry_chosen(&event);
            }
        });
        // Closing the tab hangs up: a keep-alive request outlives the page.
        self.on(&dom::window(), "pagehide", |app, _| {
            if let Some(call_id) = app.dialer.borrow().call_to_end_on_exit() {
                api::post_keepalive(&format!("/api/calls/{}/terminate", segment(call_id)));
            }
        });
        if let Ok(devices) = dom::window().navigator().media_devices() {
            self.on(&devices, "devicechange", |app, _| {
                app.spawn(|app| async move { app.list_microphones().await });
            });
        }
    }

    /// Feeds one input to the state machine, carries out its effects, renders.
    pub fn handle(self: &Rc<Self>, input: Input) {
        let effects = self.dialer.borrow_mut().handle(input, now());
        for effect in effects {
            self.run(effect);
        }
        self.render();
    }

    fn run(self: &Rc<Self>, effect: Effect) {
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

    fn render(self: &Rc<Self>) {
        let dialer = self.dialer.borrow();
        view::call(&self.dom, &dialer);
        view::banner(&self.dom, &dialer);
        view::error(&self.dom, dialer.error());
        view::timer(&self.dom, &dialer, now());
        let connected = dialer.phase() == Phase::Connected;
        drop(dialer);
        let mut timer = self.timer.borrow_mut();
        match (connected, timer.is_some()) {
            (true, false) => {
                let app = Rc::downgrade(self);
                *timer = Some(Interval::new(250, move || {
                    if let Some(app) = app.upgrade() {
                        view::timer(&app.dom, &app.dialer.borrow(), now());
                    }
                }));
            }
            (false, true) => *timer = None,
            _ => {}
        }
    }

    fn problem(self: &Rc<Self>, failure: Failure) {
        self.handle(Input::Problem(failure));
    }

    /// A refused request: a 401 means the session is gone.
    fn refused(self: &Rc<Self>, error: &ApiError, action: Action) -> Failure {
        if error.status() == Some(401) && self.signed_in.get() {
            self.session_ended();
        }
        error.failure(action)
    }

    // Signing in and out.

    async fn resume_session(self: Rc<Self>) {
        match api::get::<Session>("/api/me").await {
            Ok(session) => self.signed_in_as(session),
            Err(ApiError::Refused { status: 401, .. }) => self.show_sign_in(),
            Err(error) => {
                self.show_sign_in();
                self.problem(error.failure(Action::SignIn));
            }
        }
    }

    fn show_sign_in(&self) {
        show(&self.dom.sign_in_panel, true);
        show(&self.dom.workspace, false);
        show(&self.dom.signed_in, false);
        set_attr(&self.dom.body, "data-signed-in", "false");
        let _ = self.dom.token.focus();
    }

    async fn sign_in(self: Rc<Self>) {
        let token = self.dom.token.value();
        if token.trim().is_empty() {
            self.problem(Failure::new("Enter your agent token to sign in."));
            return;
        }
        self.dom.sign_in.set_disabled(true);
        let result = api::post::<_, Session>("/api/login", &Login { token }).await;
        self.dom.sign_in.set_disabled(false);
        match result {
            Ok(session) => {
                self.dom.token.set_value("");
                self.handle(Input::DismissError);
                self.signed_in_as(session);
            }
            Err(error) => self.problem(error.failure(Action::SignIn)),
        }
    }

    fn signed_in_as(self: &Rc<Self>, session: Session) {
        self.signed_in.set(true);
        dom::set_text(&self.dom.agent_name, &session.agent);
        show(&self.dom.sign_in_panel, false);
        show(&self.dom.workspace, true);
        show(&self.dom.signed_in, true);
        set_attr(&self.dom.body, "data-signed-in", "true");
        self.handle(Input::SignedIn {
            agent: session.agent,
        });
        self.spawn(|app| async move { app.load_config().await });
        self.connect();
        self.refresh_log();
        self.spawn(|app| async move { app.list_microphones().await });
        self.render_permission();
        let _ = self.dom.dial_to.focus();
    }

    async fn load_config(self: Rc<Self>) {
        match api::get::<DialerConfig>("/api/config").await {
            Ok(config) => *self.config.borrow_mut() = Some(config),
            Err(error) => {
                let failure = self.refused(&error, Action::LoadSettings);
                self.problem(failure);
            }
        }
    }

    async fn sign_out(self: Rc<Self>) {
        if self.dialer.borrow().phase().is_live() {
            self.handle(Input::HangUp);
        }
        let _ = api::post_empty("/api/logout").await;
        // A fresh page is the surest way to drop every piece of the session.
        let _ = dom::window().location().reload();
    }

    fn session_ended(self: &Rc<Self>) {
        self.signed_in.set(false);
        self.socket_generation.set(self.socket_generation.get() + 1);
        self.socket.borrow_mut().take();
        self.show_sign_in();
    }

    // The WebSocket.

    fn connect(self: &Rc<Self>) {
        let generation = self.socket_generation.get() + 1;
        self.socket_generation.set(generation);
        let app: Weak<Self> = Rc::downgrade(self);
        let socket = Socket::open(move |event| {
            let app = app.clone();
            // Handled outside the socket's own callback, which may replace the socket.
            spawn_local(async move {
                if let Some(app) = app.upgrade() {
                    app.on_socket(generation, event);
                }
            });
        });
        let opened = socket.is_some();
        *self.socket.borrow_mut() = socket;
        if !opened {
            self.reconnect_later();
        }
    }

    fn on_socket(self: &Rc<Self>, generation: u32, event: SocketEvent) {
        if generation != self.socket_generation.get() || !self.signed_in.get() {
            return;
        }
        match event {
            SocketEvent::Opened => {
                if self.socket_trouble.replace(false) {
                    self.handle(Input::DismissError);
                }
                self.backoff.borrow_mut().reset();
                self.ever_connected.set(true);
                view::connection(&self.dom, true, true);
            }
            SocketEvent::Message(text) => match api::event_from_json(&text) {
                Some(ServerEvent::PermissionUpdated {
                    user,
                    response,
                    permanent,
                    expires_at,
                }) => {
                    if permission::concerns(&user, &self.dom.dial_to.value()) {
                        *self.permission.borrow_mut() =
                            Known::from_reply(response, permanent, expires_at);
                        *self.permission_note.borrow_mut() = None;
                        self.render_permission();
                    }
                }
                Some(hello @ ServerEvent::Hello { .. }) => {
                    self.handle(Input::Server(hello));
                    // Whatever happened while the socket was down is looked up now.
                    self.handle(Input::SocketOpened);
                }
                Some(event) => self.handle(Input::Server(event)),
                None => log("ignoring an event this dialer does not know"),
            },
            SocketEvent::Closed => {
                self.socket.borrow_mut().take();
                view::connection(&self.dom, false, self.ever_connected.get());
                self.reconnect_later();
            }
        }
    }

    fn reconnect_later(self: &Rc<Self>) {
        let delay = self
            .backoff
            .borrow_mut()
            .next_delay_ms(js_sys::Math::random());
        let failures = self.backoff.borrow().failures();
        let generation = self.socket_generation.get();
        self.spawn(move |app| async move {
            sleep(delay).await;
            if generation != app.socket_generation.get() || !app.signed_in.get() {
                return;
            }
            // A socket that keeps failing may mean the session expired, or that the
            // server refuses this page's origin.
            if failures == CHECK_SESSION_AFTER {
                match api::get::<Session>("/api/me").await {
                    Err(error) if error.status() == Some(401) => {
                        let failure = app.refused(&error, Action::SignIn);
                        app.problem(failure);
                        return;
                    }
                    Ok(_) => {
                        app.socket_trouble.set(true);
                        app.problem(Failure::new(
                        "The dialer can't open its live connection to the server, so calls can't ring here. It keeps trying; if this page's address is not the server's public address, open the dialer at that address.",
                        ));
                    }
                    Err(_) => {}
                }
            }
            app.connect();
        });
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
            Ok(placed) => Ok(placed.call_id),
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

    // The call log.

    fn refresh_log(self: &Rc<Self>) {
        if !self.signed_in.get() {
            return;
        }
        if self.log_loading.replace(true) {
            // One load at a time; the latest change is fetched once this one is done.
            self.log_again.set(true);
            return;
        }
        self.spawn(|app| async move {
            loop {
                app.log_again.set(false);
                match api::get::<CallLog>("/api/calls?limit=50").await {
                    Ok(page) => {
                        *app.log.borrow_mut() = page.calls;
                        if let Err(e) = view::call_log(&app.dom, &app.log.borrow()) {
                            log_value("could not show the call log:", &e);
                        }
                    }
                    Err(error) => {
                        let failure = app.refused(&error, Action::LoadCallLog);
                        dom::set_text(&app.dom.log_note, &failure.message);
                    }
                }
                if !app.log_again.get() {
                    break;
                }
            }
            app.log_loading.set(false);
        });
    }

    fn log_entry_chosen(self: &Rc<Self>, event: &Event) {
        let entry = event
            .target()
            .and_then(|t| t.dyn_into::<Element>().ok())
            .and_then(|e| e.closest("li[data-call-id]").ok().flatten());
        let Some(target) = entry.and_then(|e| e.get_attribute("data-dial")) else {
            return;
        };
        self.dom.dial_to.set_value(&target);
        let _ = self.dom.dial_to.focus();
        self.typing.set(self.typing.get() + 1);
        self.spawn(|app| async move { app.check_permission().await });
    }

    // Permission to call.

    /// The dial box changed: look the permission up once typing pauses.
    fn typed(self: &Rc<Self>) {
        let turn = self.typing.get() + 1;
        self.typing.set(turn);
        *self.permission.borrow_mut() = Known::Unknown;
        *self.permission_note.borrow_mut() = None;
        self.render_permission();
        self.spawn(move |app| async move {
            sleep(TYPING_PAUSE_MS).await;
            if app.typing.get() == turn {
                app.check_permission().await;
            }
        });
    }

    async fn check_permission(self: Rc<Self>) {
        let typed = self.dom.dial_to.value();
        let Some(target) = display::parse_target(&typed) else {
            *self.permission.borrow_mut() = Known::Unknown;
            *self.permission_note.borrow_mut() = None;
            self.render_permission();
            return;
        };
        let turn = self.typing.get();
        let path = format!("/api/permissions/{}", segment(target.as_str()));
        let result = api::get::<PermissionState>(&path).await;
        if self.typing.get() != turn {
            return;
        }
        match result {
            Ok(state) => {
                *self.permission.borrow_mut() = Known::from_state(&state);
                *self.permission_note.borrow_mut() = None;
            }
            Err(error) => {
                let failure = self.refused(&error, Action::CheckPermission);
                *self.permission.borrow_mut() = Known::Unknown;
                *self.permission_note.borrow_mut() =
                    Some(format!("Permission unknown: {}", failure.message));
            }
        }
        self.render_permission();
    }

    async fn request_permission(self: Rc<Self>) {
        let typed = self.dom.dial_to.value();
        let Some(target) = display::parse_target(&typed) else {
            self.problem(Failure::invalid_number(&typed));
            return;
        };
        self.dom.request_permission.set_disabled(true);
        let body = RequestPermission {
            to: target.as_str().to_owned(),
        };
        let result = api::post::<_, PermissionState>("/api/permissions", &body).await;
        self.dom.request_permission.set_disabled(false);
        match result {
            Ok(state) => {
                *self.permission.borrow_mut() = Known::from_state(&state);
                *self.permission_note.borrow_mut() = Some(
                    "Permission request sent. The customer's answer will show here.".to_owned(),
                );
                self.render_permission();
            }
            Err(error) => {
                let failure = self.refused(&error, Action::RequestPermission);
                self.problem(failure);
            }
        }
    }

    fn render_permission(&self) {
        view::permission(
            &self.dom,
            &self.permission.borrow(),
            self.permission_note.borrow().as_deref(),
        );
    }

    // Microphones.

    fn chosen_microphone(&self) -> Option<String> {
        let value = self.dom.mic_select.value();
        if !value.is_empty() {
            return Some(value);
        }
        dom::window()
            .local_storage()
            .ok()
            .flatten()
            .and_then(|s| s.get_item(MIC_KEY).ok().flatten())
            .filter(|v| !v.is_empty())
    }

    async fn list_microphones(self: Rc<Self>) {
        let microphones = media::microphones().await;
        let chosen = self.chosen_microphone().unwrap_or_default();
        let select = &self.dom.mic_select;
        select.set_text_content(None);
        let mut options = vec![(String::new(), "Default microphone".to_owned())];
        for (index, (id, label)) in microphones.into_iter().enumerate() {
            if id.is_empty() || id == "default" {
                continue;
            }
            let label = if label.is_empty() {
                format!("Microphone {}", index + 1)
            } else {
                label
            };
            options.push((id, label));
        }
        for (id, label) in &options {
            if let Ok(option) = self.dom.element("option", "", label) {
                let _ = option.set_attribute("value", id);
                let _ = select.append_child(&option);
            }
        }
        if options.iter().any(|(id, _)| *id == chosen) {
            select.set_value(&chosen);
        }
    }

    async fn choose_microphone(self: Rc<Self>) {
        let chosen = self.dom.mic_select.value();
        if let Some(storage) = dom::window().local_storage().ok().flatten() {
            let _ = storage.set_item(MIC_KEY, &chosen);
        }
        // Taken out while the new track is fetched, so no borrow is held across the wait.
        let Some(mut media) = self.media.borrow_mut().take() else {
            return;
        };
        let device = Some(chosen).filter(|c| !c.is_empty());
        let switched = media.switch_microphone(device.as_deref()).await;
        if self.dialer.borrow().wants_media(media.attempt) {
            media.set_muted(self.dialer.borrow().muted());
            *self.media.borrow_mut() = Some(media);
        }
        if let Err(failure) = switched {
            self.problem(failure);
        }
    }

    /// The live call's peer connection, for `window.switchboard.stats()`.
    pub fn peer_connection(&self) -> Option<RtcPeerConnection> {
        self.media.borrow().as_ref().map(CallMedia::connection)
    }

    pub fn timings(&self) -> crate::call::Timings {
        self.dialer.borrow().timings()
    }
}
