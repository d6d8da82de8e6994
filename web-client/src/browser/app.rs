//! The dialer page: it owns the state machine and everything the page hands the browser,
//! wires the page's controls to it, feeds it inputs and renders it.
//!
//! Page-lifetime handlers live in `App::listeners`; a call's handlers live in its
//! `CallMedia`, a connection's in its `Socket`, and go with them. The rest of the page's
//! work is one file per job:
//!
//! - `effects`: carries out the state machine's effects (media, SDP, the call requests);
//! - `session`: signing in and out, and a session that ends;
//! - `connection`: the WebSocket of events, kept open and reconnected with backoff;
//! - `call_log`: the call log, loaded one request at a time, and calling back from it;
//! - `dial_permission`: the permission to call the number being typed;
//! - `microphones`: the microphone list and the agent's choice.

mod call_log;
mod connection;
mod dial_permission;
mod effects;
mod microphones;
mod session;

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::rc::Rc;

use switchboard_protocol::api::DialerConfig;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::spawn_local;
use web_sys::{Event, EventTarget, KeyboardEvent, RtcPeerConnection};

use self::call_log::CallLog;
use self::connection::Connection;
use self::dial_permission::DialPermission;
use super::api::{self, segment, ApiError};
use super::dom::{self, now, set_attr, Dom, Interval, Listener};
use super::media::CallMedia;
use super::view;
use crate::call::{Dialer, Input, Phase, Timings};
use crate::failure::{Action, Failure};

pub struct App {
    dom: Dom,
    dialer: RefCell<Dialer>,
    config: RefCell<Option<DialerConfig>>,
    media: RefCell<Option<CallMedia>>,
    connection: Connection,
    /// Ticks the call timer while a call is connected.
    timer: RefCell<Option<Interval>>,
    call_log: CallLog,
    permission: DialPermission,
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
            connection: Connection::default(),
            timer: RefCell::new(None),
            call_log: CallLog::default(),
            permission: DialPermission::default(),
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

    /// The live call's peer connection, for `window.switchboard.stats()`.
    pub fn peer_connection(&self) -> Option<RtcPeerConnection> {
        self.media.borrow().as_ref().map(CallMedia::connection)
    }

    pub fn timings(&self) -> Timings {
        self.dialer.borrow().timings()
    }
}
