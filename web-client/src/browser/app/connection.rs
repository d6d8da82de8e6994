//! The WebSocket of call events, kept open while the agent is signed in: one `Socket` at a
//! time, events from older ones ignored, reconnected with backoff after it drops, and each
//! event routed to the state machine or the permission shown.

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};

use switchboard_protocol::api::Session;
use switchboard_protocol::ws::ServerEvent;
use wasm_bindgen_futures::spawn_local;

use super::App;
use crate::backoff::Backoff;
use crate::browser::api;
use crate::browser::dom::{log, sleep};
use crate::browser::socket::{self, Socket, SocketEvent};
use crate::browser::view;
use crate::call::Input;
use crate::failure::{Action, Failure};

/// Reconnect attempts after which the session itself is checked.
const CHECK_SESSION_AFTER: u32 = 3;

/// The connection's state, owned by the [`App`].
#[derive(Default)]
pub(super) struct Connection {
    socket: RefCell<Option<Socket>>,
    /// Which socket is current; events of older ones are ignored.
    generation: Cell<u32>,
    ever_connected: Cell<bool>,
    /// The "can't open its live connection" message is showing.
    trouble: Cell<bool>,
    backoff: RefCell<Backoff>,
}

impl App {
    pub(super) fn connect(self: &Rc<Self>) {
        let generation = self.connection.generation.get() + 1;
        self.connection.generation.set(generation);
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
        *self.connection.socket.borrow_mut() = socket;
        if !opened {
            self.reconnect_later();
        }
    }

    /// Closes the socket; whatever an older one still reports is ignored.
    pub(super) fn disconnect(&self) {
        let connection = &self.connection;
        connection.generation.set(connection.generation.get() + 1);
        connection.socket.borrow_mut().take();
    }

    fn on_socket(self: &Rc<Self>, generation: u32, event: SocketEvent) {
        let connection = &self.connection;
        if generation != connection.generation.get() || !self.signed_in.get() {
            return;
        }
        match event {
            SocketEvent::Opened => {
                if connection.trouble.replace(false) {
                    self.handle(Input::DismissError);
                }
                connection.backoff.borrow_mut().reset();
                connection.ever_connected.set(true);
                view::connection(&self.dom, true, true);
            }
            SocketEvent::Message(text) => match socket::event_from_json(&text) {
                Some(event) => self.on_server_event(event),
                None => log("ignoring an event this dialer does not know"),
            },
            SocketEvent::Closed => {
                connection.socket.borrow_mut().take();
                view::connection(&self.dom, false, connection.ever_connected.get());
                self.reconnect_later();
            }
        }
    }

    fn on_server_event(self: &Rc<Self>, event: ServerEvent) {
        match event {
            ServerEvent::PermissionUpdated {
                user,
                response,
                permanent,
                expires_at,
            } => self.permission_updated(&user, response, permanent, expires_at),
            hello @ ServerEvent::Hello { .. } => {
                self.handle(Input::Server(hello));
                // Whatever happened while the socket was down is looked up now.
                self.handle(Input::SocketOpened);
            }
            event => self.handle(Input::Server(event)),
        }
    }

    fn reconnect_later(self: &Rc<Self>) {
        let backoff = &self.connection.backoff;
        let delay = backoff.borrow_mut().next_delay_ms(js_sys::Math::random());
        let failures = backoff.borrow().failures();
        let generation = self.connection.generation.get();
        self.spawn(move |app| async move {
            sleep(delay).await;
            if generation != app.connection.generation.get() || !app.signed_in.get() {
                return;
            }
            // A socket that keeps failing may mean the session expired, or that the
            // server refuses this page's origin.
            if failures == CHECK_SESSION_AFTER && !app.check_session().await {
                return;
            }
            app.connect();
        });
    }

    /// Whether to keep trying after the socket failed again and again: not if the session
    /// has expired. If it is fine, the agent is told why calls can't ring here.
    async fn check_session(self: &Rc<Self>) -> bool {
        match api::get::<Session>("/api/me").await {
            Err(error) if error.status() == Some(401) => {
                let failure = self.refused(&error, Action::SignIn);
                self.problem(failure);
                false
            }
            Ok(_) => {
                self.connection.trouble.set(true);
                self.problem(Failure::new(
                    "The dialer can't open its live connection to the server, so calls can't ring here. It keeps trying; if this page's address is not the server's public address, open the dialer at that address.",
                ));
                true
            }
            Err(_) => true,
        }
    }
}
