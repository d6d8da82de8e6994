//! The browser layer (wasm32 only): the page, WebRTC, the microphone, HTTP and the
//! WebSocket. It decides nothing about calls; the state machine in [`crate::call`] does.
//!
//! - `app`: the page's owner: feeds the state machine, carries out its effects (one file
//!   per job under `app/`: effects, session, connection, call log, permission, microphones).
//! - `media`: a call's microphone, peer connection, ICE gathering, level meter, stats.
//! - `socket`: one WebSocket connection of call events, and reading its frames.
//! - `api`: the router's HTTP API.
//! - `decode`: serde over values the browser parsed, without building error messages.
//! - `view`: renders state into the page.
//! - `dom`: the page's elements, and listeners and timers that clean up after themselves.

mod api;
mod app;
mod decode;
mod dom;
mod media;
mod socket;
mod view;

use std::cell::OnceCell;
use std::rc::Rc;

use js_sys::{Object, Promise, Reflect};
use wasm_bindgen::prelude::*;

use self::app::App;

thread_local! {
    /// The page's one dialer, alive as long as the page.
    static APP: OnceCell<Rc<App>> = const { OnceCell::new() };
}

#[wasm_bindgen(start)]
pub fn start() {
    match dom::Dom::find() {
        Ok(page) => {
            let app = App::new(page);
            app.start();
            APP.with(|cell| {
                let _ = cell.set(app);
            });
        }
        Err(missing) => wasm_bindgen::throw_str(&format!(
            "the dialer cannot start: the page has no usable #{missing}"
        )),
    }
}

fn app() -> Option<Rc<App>> {
    APP.with(|cell| cell.get().cloned())
}

/// `window.switchboard.stats()`: a promise of the live call's figures from `getStats()`
/// (`packetsSent`, `packetsReceived`, `bytesReceived`, `totalAudioEnergy`,
/// `iceConnectionState`, `connectionState`), zeros when there is no call.
#[wasm_bindgen]
pub fn stats() -> Promise {
    let pc = app().and_then(|app| app.peer_connection());
    wasm_bindgen_futures::future_to_promise(async move { Ok(media::stats(pc).await.into()) })
}

/// `window.switchboard.timings()`: the last call's `clickToOfferSentMs`,
/// `answeredToRemoteAppliedMs` and `clickToAnswerSentMs` (`null` when not measured).
#[wasm_bindgen]
pub fn timings() -> JsValue {
    let timings = app().map(|app| app.timings()).unwrap_or_default();
    let out = Object::new();
    let set = |key: &str, value: Option<f64>| {
        let value = value.map_or(JsValue::NULL, JsValue::from_f64);
        let _ = Reflect::set(&out, &key.into(), &value);
    };
    set("clickToOfferSentMs", timings.click_to_offer_sent_ms);
    set(
        "answeredToRemoteAppliedMs",
        timings.answered_to_remote_applied_ms,
    );
    set("clickToAnswerSentMs", timings.click_to_answer_sent_ms);
    out.into()
}
