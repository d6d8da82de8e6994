//! The dialer's side of the WebSocket: frames from the router decoded as the page decodes
//! them (`wire::External`, the tag moved to a wrapper key first, as `browser/socket.rs`
//! does on the browser's objects), then handed to the call state machine and shown, as
//! `browser/app/connection.rs` and `browser/view.rs` do, with the page's own sentences.
//!
//! Input: one frame per line. A line starting with `!` is instead something the agent or
//! the browser does (`!place`, `!accept`, `!reject`, `!hangup`, `!mute`, `!media`,
//! `!local`, `!placed`, `!accepted`, `!remote`, `!socket`), so sequences of events reach
//! the states a real call goes through.
//!
//! What must hold: no frame, sequence or clock panics the page; an event the page decoded,
//! written again as the router writes it, decodes to the same event.

#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use switchboard_protocol::ws::ServerEvent;
use switchboard_web::call::{Attempt, Dialer, Effect, Input};
use switchboard_web::display;
use switchboard_web::permission::Known;
use switchboard_web::wire::{External, TAG};

/// The page's clocks: a Unix time in seconds, and zones from UTC-12 to UTC+14.
const NOW: i64 = 1_767_225_600;
const ZONES_MIN: [i64; 3] = [-720, 0, 840];

/// What `browser/socket.rs::event_from_json` does, on serde_json's values.
fn event_from_json(text: &str) -> Option<ServerEvent> {
    let mut event: Value = serde_json::from_str(text).ok()?;
    let tag = event.as_object_mut()?.remove(TAG)?;
    let Value::String(tag) = tag else {
        return None;
    };
    let wrapper = serde_json::json!({ tag: event });
    serde_json::from_value::<External>(wrapper)
        .ok()
        .map(|e| e.0)
}

/// The page, as far as it is plain Rust: the machine, the last attempt it asked work for,
/// and a clock.
struct Page {
    dialer: Dialer,
    attempt: Option<Attempt>,
    ms: f64,
}

impl Page {
    fn handle(&mut self, input: Input) {
        self.ms += 250.0;
        for effect in self.dialer.handle(input, self.ms) {
            if let Effect::OpenMedia { attempt } | Effect::CreateOffer { attempt } = effect {
                self.attempt = Some(attempt);
            }
        }
        self.render();
    }

    /// What `browser/view.rs` reads back to draw the page.
    fn render(&self) {
        let dialer = &self.dialer;
        let _ = dialer.phase().as_str();
        let _ = dialer.peer().map(|p| p.label());
        let _ = dialer.outcome().map(|o| o.summary());
        let _ = (
            dialer.can_place(),
            dialer.muted(),
            dialer.call_id(),
            dialer.timings(),
        );
        if let Some(banner) = dialer.banner() {
            let _ = (display::who(banner.user), banner.state.as_str());
        }
        if let Some(since) = dialer.connected_at() {
            let _ = display::clock(self.ms - since);
        }
        if let Some(at) = dialer.error().and_then(|e| e.retry_at) {
            for zone in ZONES_MIN {
                let _ = display::when(at, NOW, zone);
            }
        }
    }

    /// `browser/app/connection.rs::on_server_event`.
    fn on_server_event(&mut self, event: ServerEvent) {
        match event {
            ServerEvent::PermissionUpdated {
                user,
                response,
                permanent,
                expires_at,
            } => {
                let known = Known::from_reply(response, permanent, expires_at);
                let _ = display::who_line(&user);
                let _ = known.code();
                for zone in ZONES_MIN {
                    let _ = known.describe(NOW, zone);
                }
            }
            hello @ ServerEvent::Hello { .. } => {
                self.handle(Input::Server(hello));
                self.handle(Input::SocketOpened);
            }
            event => self.handle(Input::Server(event)),
        }
    }

    /// A `!` line: something the agent or the browser did.
    fn act(&mut self, line: &str) {
        let (verb, arg) = line.split_once(' ').unwrap_or((line, ""));
        let arg = arg.to_owned();
        let input = match (verb, self.attempt) {
            ("place", _) => Input::Place { to: arg },
            ("accept", _) => Input::Accept { call_id: arg },
            ("reject", _) => Input::Reject { call_id: arg },
            ("hangup", _) => Input::HangUp,
            ("mute", _) => Input::ToggleMute,
            ("socket", _) => Input::SocketOpened,
            ("media", Some(attempt)) => Input::MediaOpened { attempt },
            ("local", Some(attempt)) => Input::LocalDescription { attempt, sdp: arg },
            ("placed", Some(attempt)) => Input::Placed {
                attempt,
                result: Ok(arg),
            },
            ("accepted", Some(attempt)) => Input::Accepted {
                attempt,
                result: Ok(()),
            },
            ("remote", Some(attempt)) => Input::RemoteApplied { attempt },
            _ => return,
        };
        self.handle(input);
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut page = Page {
        dialer: Dialer::new(),
        attempt: None,
        ms: 1000.0,
    };
    page.handle(Input::SignedIn {
        agent: "asha".to_owned(),
    });
    for line in text.lines().take(64) {
        if let Some(action) = line.strip_prefix('!') {
            page.act(action);
            continue;
        }
        // Externally tagged JSON read straight, as the mirror allows.
        let _ = serde_json::from_str::<External>(line);
        let Some(event) = event_from_json(line) else {
            continue;
        };
        let written = serde_json::to_string(&event).expect("events serialise");
        assert_eq!(
            event_from_json(&written).as_ref(),
            Some(&event),
            "{written}"
        );
        page.on_server_event(event);
    }
});
