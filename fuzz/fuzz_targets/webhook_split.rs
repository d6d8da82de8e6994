//! A signed delivery's arbitrary body, taken the way ingest takes it: verified, split into
//! events (`meta::events::split_within`), each event labelled for metrics and built into
//! its outbound request, and the calling events read (`calls::updates::read`) and run
//! through the call and permission state machines, whose pushes the dialer must read.
//!
//! Input: the body, as Meta would send it (the corpus starts from the fixtures).
//!
//! What must hold, besides no panic: every delivery makes at least one event; an oversize
//! one is exactly one `other:oversize` event holding the raw bytes; otherwise there are at
//! most `max_items` events, each payload within `max_event_bytes` and (unless the body was
//! not an envelope) a JSON envelope that splits again into the same one event; the split
//! is the same every time; every push a call makes decodes in the dialer as it was sent.

#![no_main]

use std::collections::HashMap;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use secrecy::SecretString;
use switchboard::calls::updates::{self, Context, Read, Update};
use switchboard::domain::call::{self, Call};
use switchboard::domain::delivery::JobBody;
use switchboard::domain::event::{EventKind, Kind};
use switchboard::domain::permission::Permission;
use switchboard::fanout::outbound;
use switchboard::meta::events::{split_within, Event, Limits};
use switchboard::meta::signature::{verify, AppSecret, VerifiedDelivery};
use switchboard::telemetry::event_label;
use switchboard_protocol::ws::ServerEvent;
use switchboard_web::wire::{External, TAG};

/// A fixed "now" (2026-01-01), so a run is reproducible.
const NOW: i64 = 1_767_225_600;

fn signed(body: &[u8]) -> VerifiedDelivery {
    let secret = AppSecret::parse(SecretString::from("test-app-secret".to_owned()))
        .expect("a non-empty secret");
    let header = secret.sign(body);
    verify(&[secret], Some(&header), Bytes::copy_from_slice(body)).expect("signed just now")
}

fn check_split(delivery: &VerifiedDelivery, limits: Limits) -> Vec<Event> {
    let split = split_within(delivery, limits);
    let events = split.events;
    assert!(!events.is_empty(), "a delivery made no event");
    if split.oversize.is_some() {
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].kind, EventKind::new(Kind::Other, "oversize"));
        assert_eq!(&events[0].payload, delivery.body());
        return events;
    }
    if events.len() == 1 && events[0].kind == EventKind::unparsed() {
        assert_eq!(&events[0].payload, delivery.body());
        return events;
    }
    assert!(events.len() <= limits.max_items, "{} events", events.len());
    let exact = numbers_read_back_exactly(delivery.body());
    for event in &events {
        assert!(event.payload.len() <= limits.max_event_bytes);
        assert_eq!(
            EventKind::parse(&event.kind.to_string()).as_ref(),
            Some(&event.kind)
        );
        // An event's payload is Meta's envelope around that one item or change.
        let again = split_within(&signed(&event.payload), limits).events;
        assert_eq!(
            again.len(),
            1,
            "an event's payload split into {}",
            again.len()
        );
        assert_eq!(again[0].kind, event.kind);
        if exact {
            assert_eq!(again[0].id, event.id);
        }
    }
    events
}

/// Whether serde_json reads back the numbers it wrote for this JSON. Its float parsing is
/// not always exact (a number past 2^64 may come back one unit in the last place off), so
/// an id that hashes such a number is stable for the same bytes, as Meta resends them, but
/// not across a rewrite of them.
fn numbers_read_back_exactly(json: &[u8]) -> bool {
    let Ok(first) = serde_json::from_slice::<serde_json::Value>(json) else {
        return false;
    };
    let written = serde_json::to_vec(&first).expect("a value serialises");
    serde_json::from_slice::<serde_json::Value>(&written).ok() == Some(first)
}

/// What `calls/inbound.rs` does with the calling events, without the store.
#[derive(Default)]
struct CallPlane {
    calls: HashMap<String, Call>,
}

impl CallPlane {
    fn take(&mut self, event: &Event) {
        let context = Context {
            phone_number_id: "106540352242922",
            received_at: NOW,
        };
        if !updates::wants(&event.kind) {
            assert!(!matches!(
                updates::read(&event.kind, &event.payload, context),
                Read::Update(_)
            ));
            return;
        }
        match updates::read(&event.kind, &event.payload, context) {
            Read::Update(Update::Call { call_id, update }) => {
                let before = self.calls.remove(call_id.as_str());
                let (after, pushes) = call::apply(before, &call_id, &update);
                let _ = after.record();
                let _ = after.replay_for("asha");
                let _ = call::stale(&after, NOW);
                for push in pushes {
                    dialer_reads(&push.event);
                }
                self.calls.insert(call_id.as_str().to_owned(), after);
            }
            Read::Update(Update::Permission(reply)) => {
                let mut permission = Permission::unknown(reply.user.clone(), NOW);
                if let Some(event) = permission.apply_reply(&reply) {
                    dialer_reads(&event);
                }
                let _ = permission.state(NOW);
                let _ = permission.next_request_at(NOW);
            }
            Read::OtherNumber(_) | Read::Nothing => {}
        }
    }
}

/// The router's frame, as the dialer's page reads it: the tag moved to a wrapper key, then
/// decoded through the wire mirror.
fn dialer_reads(event: &ServerEvent) {
    let mut json = serde_json::to_value(event).expect("events serialise");
    let object = json.as_object_mut().expect("an object");
    let tag = object.remove(TAG).expect("tagged");
    let tag = tag.as_str().expect("a text tag").to_owned();
    let wrapped = serde_json::json!({ tag: json });
    let External(read) = serde_json::from_value(wrapped).expect("the dialer reads it");
    assert_eq!(&read, event);
}

fuzz_target!(|body: &[u8]| {
    let delivery = signed(body);
    let tight = Limits {
        max_items: 8,
        max_event_bytes: 2048,
    };
    let events = check_split(&delivery, Limits::default());
    let tight_events = check_split(&delivery, tight);
    let ids = |events: &[Event]| events.iter().map(|e| e.id.clone()).collect::<Vec<_>>();
    if tight_events.len() > 1 {
        assert_eq!(ids(&tight_events), ids(&events), "limits changed the ids");
    }
    assert_eq!(
        ids(&check_split(&delivery, Limits::default())),
        ids(&events)
    );

    let mut plane = CallPlane::default();
    for event in &events {
        let label = event_label(&event.kind);
        assert!(label.starts_with(event.kind.kind.as_str()));
        let job = JobBody::Event {
            id: event.id.clone(),
            kind: event.kind.clone(),
            payload: event.payload.clone(),
        };
        let request = outbound::build(&job, None, NOW);
        assert_eq!(request.body, event.payload);
        plane.take(event);
    }
});
