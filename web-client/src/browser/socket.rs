//! The WebSocket of call events (DESIGN §6). One `Socket` is one connection; reconnecting
//! makes a new one. Dropping it unregisters its handlers and closes it.

use wasm_bindgen::JsCast;
use web_sys::{Event, MessageEvent, WebSocket};

use super::dom::{window, Listener};

pub struct Socket {
    socket: WebSocket,
    listeners: Vec<Listener>,
}

/// What the page hears from a socket.
pub enum SocketEvent {
    Opened,
    Message(String),
    Closed,
}

impl Socket {
    /// Opens `/ws` on the page's own host; the session cookie goes with it.
    pub fn open(on_event: impl Fn(SocketEvent) + Clone + 'static) -> Option<Self> {
        let location = window().location();
        let scheme = match location.protocol().ok()?.as_str() {
            "https:" => "wss:",
            _ => "ws:",
        };
        let url = format!("{scheme}//{}/ws", location.host().ok()?);
        let socket = WebSocket::new(&url).ok()?;
        let opened = on_event.clone();
        let message = on_event.clone();
        let closed = on_event;
        let listeners = vec![
            Listener::new(&socket, "open", move |_| opened(SocketEvent::Opened)),
            Listener::new(&socket, "message", move |event: Event| {
                if let Some(text) = event
                    .dyn_ref::<MessageEvent>()
                    .and_then(|m| m.data().as_string())
                {
                    message(SocketEvent::Message(text));
                }
            }),
            // An error is always followed by a close; the close is what matters.
            Listener::new(&socket, "close", move |_| closed(SocketEvent::Closed)),
        ];
        Some(Self { socket, listeners })
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        self.listeners.clear();
        let _ = self.socket.close();
    }
}
