//! The page's elements, found once by id, and the small owned handles for what the page
//! calls back into: event listeners and intervals that unregister themselves when dropped.

use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{
    Document, Element, Event, EventTarget, HtmlAudioElement, HtmlButtonElement, HtmlElement,
    HtmlInputElement, HtmlMeterElement, HtmlSelectElement, Window,
};

pub fn window() -> Window {
    // The dialer only ever runs in a page.
    web_sys::window().unwrap_or_else(|| wasm_bindgen::throw_str("no window"))
}

/// Milliseconds on the page's monotonic clock.
pub fn now() -> f64 {
    window().performance().map_or(0.0, |p| p.now())
}

/// Unix seconds from the wall clock.
pub fn unix_now() -> i64 {
    (js_sys::Date::now() / 1000.0) as i64
}

/// The browser's time zone, in minutes east of UTC.
pub fn zone_offset_min() -> i64 {
    -(js_sys::Date::new_0().get_timezone_offset() as i64)
}

pub fn log(message: &str) {
    web_sys::console::log_1(&JsValue::from_str(message));
}

/// Logs a label and a value, letting the console format the value.
pub fn log_value(label: &str, value: &JsValue) {
    web_sys::console::log_2(&JsValue::from_str(label), value);
}

/// An event listener that is removed when this handle is dropped, with the closure it
/// calls, so the closure lives exactly as long as the registration.
pub struct Listener {
    target: EventTarget,
    kind: &'static str,
    closure: Closure<dyn FnMut(Event)>,
}

impl Listener {
    pub fn new(
        target: &EventTarget,
        kind: &'static str,
        handler: impl FnMut(Event) + 'static,
    ) -> Self {
        Self::boxed(target, kind, Box::new(handler))
    }

    /// The registration itself, compiled once for every kind of handler.
    fn boxed(target: &EventTarget, kind: &'static str, handler: Box<dyn FnMut(Event)>) -> Self {
        let closure = Closure::wrap(handler);
        if target
            .add_event_listener_with_callback(kind, closure.as_ref().unchecked_ref())
            .is_err()
        {
            log_value("could not listen for", &JsValue::from_str(kind));
        }
        Self {
            target: target.clone(),
            kind,
            closure,
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self
            .target
            .remove_event_listener_with_callback(self.kind, self.closure.as_ref().unchecked_ref());
    }
}

/// A `setInterval` that is cleared when this handle is dropped.
pub struct Interval {
    id: i32,
    _closure: Closure<dyn FnMut()>,
}

impl Interval {
    pub fn new(every_ms: i32, tick: impl FnMut() + 'static) -> Self {
        let closure = Closure::<dyn FnMut()>::new(tick);
        let id = window()
            .set_interval_with_callback_and_timeout_and_arguments_0(
                closure.as_ref().unchecked_ref(),
                every_ms,
            )
            .unwrap_or_default();
        Self {
            id,
            _closure: closure,
        }
    }
}

impl Drop for Interval {
    fn drop(&mut self) {
        window().clear_interval_with_handle(self.id);
    }
}

/// Resolves after `ms` milliseconds (the timer calls the promise's own resolve function,
/// so no Rust closure has to outlive this future).
pub async fn sleep(ms: f64) {
    let promise = js_sys::Promise::new(&mut |resolve, _reject| {
        let _ = window()
            .set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms.max(0.0) as i32);
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}

/// Every element the dialer reads or writes. The ids are the page's contract with the
/// browser tests (see `www/index.html`).
pub struct Dom {
    pub document: Document,
    pub body: HtmlElement,
    pub sign_in_panel: HtmlElement,
    pub sign_in_form: HtmlElement,
    pub token: HtmlInputElement,
    pub sign_in: HtmlButtonElement,
    pub signed_in: HtmlElement,
    pub agent_name: HtmlElement,
    pub sign_out: HtmlButtonElement,
    pub connection: HtmlElement,
    pub error: HtmlElement,
    pub dismiss_error: HtmlButtonElement,
    pub workspace: HtmlElement,
    pub dial_form: HtmlElement,
    pub dial_to: HtmlInputElement,
    pub call: HtmlButtonElement,
    pub recent_numbers: HtmlElement,
    pub request_permission: HtmlButtonElement,
    pub permission_status: HtmlElement,
    pub call_panel: HtmlElement,
    pub call_status: HtmlElement,
    pub call_peer: HtmlElement,
    pub call_timer: HtmlElement,
    pub hangup: HtmlButtonElement,
    pub mute: HtmlButtonElement,
    pub mic_select: HtmlSelectElement,
    pub mic_level: HtmlMeterElement,
    pub remote_audio: HtmlAudioElement,
    pub incoming: HtmlElement,
    pub incoming_caller: HtmlElement,
    pub incoming_note: HtmlElement,
    pub accept: HtmlButtonElement,
    pub reject: HtmlButtonElement,
    pub dismiss_incoming: HtmlButtonElement,
    pub call_log: HtmlElement,
    pub log_note: HtmlElement,
}

/// Looks elements up by id without failing midway (so building [`Dom`] has one exit),
/// remembering the first id that is missing or is not the element the dialer needs.
struct Lookup {
    document: Document,
    missing: std::cell::Cell<Option<&'static str>>,
}

impl Lookup {
    /// The element with this id; `tag` (upper case) when the dialer relies on its kind.
    fn get(&self, id: &'static str, tag: &str) -> Element {
        match self.document.get_element_by_id(id) {
            Some(element) if tag.is_empty() || element.tag_name() == tag => element,
            _ => {
                self.missing.set(self.missing.get().or(Some(id)));
                // A stand-in, so the rest can still be looked up; never used.
                self.document
                    .create_element("div")
                    .unwrap_or_else(|_| wasm_bindgen::throw_str("cannot create an element"))
            }
        }
    }
}

impl Dom {
    /// Finds every element, or says which id is missing (or of the wrong kind).
    pub fn find() -> Result<Self, &'static str> {
        let document = window().document().ok_or("document")?;
        let body = document.body().ok_or("body")?;
        let page = Lookup {
            document: document.clone(),
            missing: std::cell::Cell::new(None),
        };
        let dom = Self {
            body,
            sign_in_panel: page.get("sign-in-panel", "").unchecked_into(),
            sign_in_form: page.get("sign-in-form", "FORM").unchecked_into(),
            token: page.get("token", "INPUT").unchecked_into(),
            sign_in: page.get("sign-in", "BUTTON").unchecked_into(),
            signed_in: page.get("signed-in", "").unchecked_into(),
            agent_name: page.get("agent-name", "").unchecked_into(),
            sign_out: page.get("sign-out", "BUTTON").unchecked_into(),
            connection: page.get("connection", "").unchecked_into(),
            error: page.get("error", "").unchecked_into(),
            dismiss_error: page.get("dismiss-error", "BUTTON").unchecked_into(),
            workspace: page.get("workspace", "").unchecked_into(),
            dial_form: page.get("dial-form", "FORM").unchecked_into(),
            dial_to: page.get("dial-to", "INPUT").unchecked_into(),
            call: page.get("call", "BUTTON").unchecked_into(),
            recent_numbers: page.get("recent-numbers", "").unchecked_into(),
            request_permission: page.get("request-permission", "BUTTON").unchecked_into(),
            permission_status: page.get("permission-status", "").unchecked_into(),
            call_panel: page.get("call-panel", "").unchecked_into(),
            call_status: page.get("call-status", "").unchecked_into(),
            call_peer: page.get("call-peer", "").unchecked_into(),
            call_timer: page.get("call-timer", "").unchecked_into(),
            hangup: page.get("hangup", "BUTTON").unchecked_into(),
            mute: page.get("mute", "BUTTON").unchecked_into(),
            mic_select: page.get("mic-select", "SELECT").unchecked_into(),
            mic_level: page.get("mic-level", "METER").unchecked_into(),
            remote_audio: page.get("remote-audio", "AUDIO").unchecked_into(),
            incoming: page.get("incoming", "").unchecked_into(),
            incoming_caller: page.get("incoming-caller", "").unchecked_into(),
            incoming_note: page.get("incoming-note", "").unchecked_into(),
            accept: page.get("accept", "BUTTON").unchecked_into(),
            reject: page.get("reject", "BUTTON").unchecked_into(),
            dismiss_incoming: page.get("dismiss-incoming", "BUTTON").unchecked_into(),
            call_log: page.get("call-log", "").unchecked_into(),
            log_note: page.get("log-note", "").unchecked_into(),
            document,
        };
        match page.missing.get() {
            Some(id) => Err(id),
            None => Ok(dom),
        }
    }

    /// A new element with a class and text.
    pub fn element(&self, tag: &str, class: &str, text: &str) -> Result<Element, JsValue> {
        let element = self.document.create_element(tag)?;
        if !class.is_empty() {
            element.set_class_name(class);
        }
        if !text.is_empty() {
            element.set_text_content(Some(text));
        }
        Ok(element)
    }
}

/// Sets text only when it changed, so screen readers are not told the same thing twice.
pub fn set_text(element: &Element, text: &str) {
    if element.text_content().as_deref() != Some(text) {
        element.set_text_content(Some(text));
    }
}

pub fn set_attr(element: &Element, name: &str, value: &str) {
    if element.get_attribute(name).as_deref() != Some(value) {
        let _ = element.set_attribute(name, value);
    }
}

pub fn remove_attr(element: &Element, name: &str) {
    if element.has_attribute(name) {
        let _ = element.remove_attribute(name);
    }
}

pub fn show(element: &HtmlElement, visible: bool) {
    if element.hidden() == visible {
        element.set_hidden(!visible);
    }
}
