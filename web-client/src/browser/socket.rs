//! The WebSocket of call events (DESIGN §6). One `Socket` is one connection; reconnecting
//! makes a new one. Dropping it unregisters its handlers and closes it. A frame is read
//! into the protocol's event by [`event_from_json`].

use js_sys::Reflect;
use switchboard_protocol::ws::ServerEvent;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{Event, MessageEvent, WebSocket};

use super::decode;
use super::dom::{window, Listener};
use crate::wire;

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

/// Reads a WebSocket frame: the tag moves to a wrapper key (see [`crate::wire`]), then
/// serde reads the protocol's event.
pub fn event_from_json(text: &str) -> Option<ServerEvent> {
    let event = js_sys::JSON::parse(text).ok()?;
    let key = JsValue::from_str(wire::TAG);
    let tag = Reflect::get(&event, &key).ok().filter(JsValue::is_string)?;
    Reflect::delete_property(event.dyn_ref::<js_sys::Object>()?, &key).ok()?;
    let wrapper = js_sys::Object::new();
    Reflect::set(&wrapper, &tag, &event).ok()?;
    decode::from_value::<wire::External>(wrapper.into())
        .ok()
        .map(|external| external.0)
}
