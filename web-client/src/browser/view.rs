//! Puts the state into the page: the call panel, the incoming banner, the error, the
//! permission line and the call log. Writes only what changed, so focus and screen
//! readers are not disturbed by repaints.

use switchboard_protocol::api::{CallRecord, CallState, Direction};
use switchboard_protocol::ws::EndStatus;
use wasm_bindgen::{JsCast, JsValue};

use super::dom::{remove_attr, set_attr, set_text, show, unix_now, zone_offset_min, Dom};
use crate::call::{BannerState, Dialer, Phase};
use crate::display;
use crate::failure::Failure;
use crate::permission::Known;

/// The call panel, except the timer's text (see [`timer`]).
pub fn call(dom: &Dom, dialer: &Dialer) {
    let phase = dialer.phase();
    set_attr(&dom.call_panel, "data-state", phase.as_str());
    let status = match phase {
        Phase::Idle => "No call in progress.".to_owned(),
        Phase::Preparing => "Starting your microphone\u{2026}".to_owned(),
        Phase::Dialing => "Calling\u{2026}".to_owned(),
        Phase::Ringing => "Ringing\u{2026}".to_owned(),
        Phase::Accepting => "Answering\u{2026}".to_owned(),
        Phase::Connected => "Connected".to_owned(),
        Phase::Ended => dialer
            .outcome()
            .map_or_else(|| "Call ended.".to_owned(), |o| o.summary()),
    };
    set_text(&dom.call_status, &status);
    let peer = dialer.peer().map(|p| p.label()).unwrap_or_default();
    set_text(&dom.call_peer, &peer);
    let live = phase.is_live();
    dom.hangup.set_disabled(!live);
    dom.mute.set_disabled(!live);
    let muted = dialer.muted();
    set_attr(
        &dom.mute,
        "aria-pressed",
        if muted { "true" } else { "false" },
    );
    set_text(&dom.mute, if muted { "Unmute" } else { "Mute" });
    dom.call.set_disabled(!dialer.can_place());
    // The timer runs while connected and keeps the call's length once it ended.
    if !matches!(phase, Phase::Connected | Phase::Ended) {
        set_text(&dom.call_timer, "00:00");
    }
    let title = match (dialer.banner().map(|b| b.state), phase) {
        (Some(BannerState::Ringing), _) => "Incoming call \u{b7} Switchboard",
        (_, Phase::Connected) => "On a call \u{b7} Switchboard",
        _ => "Switchboard dialer",
    };
    if dom.document.title() != title {
        dom.document.set_title(title);
    }
}

/// The call timer: `mm:ss` since the call connected.
pub fn timer(dom: &Dom, dialer: &Dialer, now: f64) {
    if let Some(since) = dialer.connected_at() {
        set_text(&dom.call_timer, &display::clock(now - since));
    }
}

pub fn banner(dom: &Dom, dialer: &Dialer) {
    let Some(banner) = dialer.banner() else {
        show(&dom.incoming, false);
        return;
    };
    show(&dom.incoming, true);
    set_attr(&dom.incoming, "data-call-id", banner.call_id);
    set_attr(&dom.incoming, "data-state", banner.state.as_str());
    let (name, handle) = display::who(banner.user);
    let caller = if handle.is_empty() {
        name
    } else {
        format!("{name} \u{b7} {handle}")
    };
    set_text(&dom.incoming_caller, &caller);
    let note = match banner.state {
        BannerState::Ringing if !banner.can_accept => {
            "is calling. Finish your current call to answer.".to_owned()
        }
        BannerState::Ringing if banner.waiting > 0 => {
            format!("is calling ({} more waiting).", banner.waiting)
        }
        BannerState::Ringing => "is calling.".to_owned(),
        BannerState::Claimed => match banner.taken_by {
            Some(agent) if agent == dialer.agent() => {
                "You answered it in another window.".to_owned()
            }
            Some(agent) => format!("Taken by {agent}."),
            None => "Taken by another agent.".to_owned(),
        },
        BannerState::Ended => "The caller hung up.".to_owned(),
    };
    set_text(&dom.incoming_note, &note);
    let ringing = banner.state == BannerState::Ringing;
    show(&dom.accept, ringing);
    show(&dom.reject, ringing);
    show(&dom.dismiss_incoming, !ringing);
    dom.accept.set_disabled(!banner.can_accept);
}

pub fn error(dom: &Dom, failure: Option<&Failure>) {
    let Some(failure) = failure else {
        set_text(&dom.error, "");
        remove_attr(&dom.error, "data-meta-code");
        show(&dom.dismiss_error, false);
        return;
    };
    let mut text = failure.message.clone();
    if let Some(at) = failure.retry_at.filter(|at| *at > unix_now()) {
        text.push_str(&format!(
            " You can try again at {}.",
            display::when(at, unix_now(), zone_offset_min())
        ));
    }
    set_text(&dom.error, &text);
    match failure.meta_code {
        Some(code) => set_attr(&dom.error, "data-meta-code", &code.to_string()),
        None => remove_attr(&dom.error, "data-meta-code"),
    }
    show(&dom.dismiss_error, true);
}

/// `#connection[data-state]`: whether call events are reaching the page.
pub fn connection(dom: &Dom, connected: bool, ever_connected: bool) {
    let (state, text) = match (connected, ever_connected) {
        (true, _) => ("connected", "Connected"),
        (false, false) => ("reconnecting", "Connecting\u{2026}"),
        (false, true) => (
            "reconnecting",
            "Connection lost. Reconnecting\u{2026} Calls can't be placed or received until it's back.",
        ),
    };
    set_attr(&dom.connection, "data-state", state);
    set_text(&dom.connection, text);
}

pub fn permission(dom: &Dom, known: &Known, note: Option<&str>) {
    set_attr(&dom.permission_status, "data-status", known.code());
    let text = match note {
        Some(note) => note.to_owned(),
        None => known.describe(unix_now(), zone_offset_min()),
    };
    set_text(&dom.permission_status, &text);
}

fn state_code(state: CallState) -> &'static str {
    match state {
        CallState::Dialing => "dialing",
        CallState::Ringing => "ringing",
        CallState::Accepting => "accepting",
        CallState::Connected => "connected",
        CallState::Ended => "ended",
    }
}

fn end_code(status: EndStatus) -> &'static str {
    match status {
        EndStatus::Completed => "completed",
        EndStatus::Failed => "failed",
        EndStatus::Rejected => "rejected",
        EndStatus::Missed => "missed",
    }
}

fn outcome_words(record: &CallRecord) -> &'static str {
    match (record.state, record.end_status) {
        (CallState::Ended, Some(EndStatus::Completed)) => "Completed",
        (CallState::Ended, Some(EndStatus::Missed)) => "Missed",
        (CallState::Ended, Some(EndStatus::Rejected)) => "Declined",
        (CallState::Ended, _) => "Failed",
        (CallState::Connected, _) => "On the line",
        _ => "In progress",
    }
}

/// The call log, newest first, and the recent numbers offered in the dial box.
pub fn call_log(dom: &Dom, records: &[CallRecord]) -> Result<(), JsValue> {
    let now = unix_now();
    let zone = zone_offset_min();
    // A keyboard user on an entry stays on it when the list is redrawn.
    let focused = dom
        .document
        .active_element()
        .filter(|e| dom.call_log.contains(Some(e)))
        .and_then(|e| e.get_attribute("data-call-id"));
    dom.call_log.set_text_content(None);
    for record in records {
        let item = entry(dom, record, now, zone)?;
        dom.call_log.append_child(&item)?;
        if focused.as_deref() == Some(record.call_id.as_str()) {
            if let Some(item) = item.dyn_ref::<web_sys::HtmlElement>() {
                let _ = item.focus();
            }
        }
    }
    set_text(
        &dom.log_note,
        if records.is_empty() {
            "No calls yet."
        } else {
            "Select a call to put its number in the dial box."
        },
    );
    dom.recent_numbers.set_text_content(None);
    let mut seen = Vec::new();
    for record in records {
        let target = display::dial_target(&record.user);
        if target.is_empty() || seen.contains(&target) || seen.len() == 10 {
            continue;
        }
        let option = dom.element("option", "", "")?;
        option.set_attribute("value", &target)?;
        option.set_attribute("label", &display::who_line(&record.user))?;
        dom.recent_numbers.append_child(&option)?;
        seen.push(target);
    }
    Ok(())
}

fn entry(dom: &Dom, record: &CallRecord, now: i64, zone: i64) -> Result<web_sys::Element, JsValue> {
    let item = dom.element("li", "log-entry", "")?;
    item.set_attribute("data-call-id", &record.call_id)?;
    item.set_attribute("data-state", state_code(record.state))?;
    item.set_attribute(
        "data-end-status",
        record.end_status.map(end_code).unwrap_or_default(),
    )?;
    item.set_attribute("data-dial", &display::dial_target(&record.user))?;
    item.set_attribute("tabindex", "0")?;
    let (direction, code, arrow) = match record.direction {
        Direction::Outgoing => ("Outgoing", "outgoing", "\u{2197}"),
        Direction::Incoming => ("Incoming", "incoming", "\u{2199}"),
    };
    item.set_attribute("data-direction", code)?;
    let who = display::who_line(&record.user);
    let when = display::when(record.created_at, now, zone);
    let length = record
        .duration
        .map(display::duration)
        .unwrap_or_else(|| "\u{2014}".to_owned());
    let outcome = outcome_words(record);
    item.set_attribute(
        "aria-label",
        &format!(
            "{direction} call, {who}, {when}, {length}, {outcome}. Press Enter to dial again."
        ),
    )?;

    let direction_tag = dom.element("span", "direction", "")?;
    let icon = dom.element("span", "arrow", arrow)?;
    icon.set_attribute("aria-hidden", "true")?;
    direction_tag.append_child(&icon)?;
    let label = dom.element("span", "", direction)?;
    direction_tag.append_child(&label)?;
    item.append_child(&direction_tag)?;
    let person = dom.element("span", "who", &who)?;
    item.append_child(&person)?;
    let time = dom.element("time", "when", &when)?;
    time.set_attribute("datetime", &display::iso(record.created_at))?;
    item.append_child(&time)?;
    let length = dom.element("span", "duration", &length)?;
    item.append_child(&length)?;
    let status = dom.element("span", "outcome", outcome)?;
    if let Some(end) = record.end_status {
        status.set_attribute("data-end-status", end_code(end))?;
    }
    item.append_child(&status)?;
    Ok(item)
}
