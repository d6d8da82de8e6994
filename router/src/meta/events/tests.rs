//! The split, on Meta's fixtures and on the shapes the fuzzer and reviews found.

use super::*;
use crate::meta::signature::{verify, AppSecret};
use secrecy::SecretString;

fn verified(body: &str) -> VerifiedDelivery {
    let secret = AppSecret::parse(SecretString::from("s".to_owned())).unwrap();
    let header = secret.sign(body.as_bytes());
    verify(&[secret], Some(&header), Bytes::from(body.to_owned())).unwrap()
}

fn kinds(body: &str) -> Vec<String> {
    split(&verified(body))
        .iter()
        .map(|e| e.kind.to_string())
        .collect()
}

#[test]
fn statuses_on_the_calls_field_are_call_statuses_not_message_statuses() {
    let body = r#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[
        {"field":"calls","value":{"statuses":[{"id":"wacid.1","status":"RINGING"}]}},
        {"field":"messages","value":{"statuses":[{"id":"wamid.1","status":"read"}]}}]}]}"#;
    assert_eq!(kinds(body), ["call_status:ringing", "message_status:read"]);
}

#[test]
fn every_entry_change_and_item_becomes_an_event() {
    let body = r#"{"object":"whatsapp_business_account","entry":[
        {"id":"1","changes":[{"field":"messages","value":{"messages":[
            {"id":"wamid.a","type":"text"},{"id":"wamid.b","type":"image"}]}}]},
        {"id":"2","changes":[{"field":"calls","value":{"calls":[
            {"id":"wacid.c","event":"connect"},{"id":"wacid.c","event":"terminate"}]}}]}]}"#;
    assert_eq!(
        kinds(body),
        [
            "message:text",
            "message:image",
            "call:connect",
            "call:terminate"
        ]
    );
}

#[test]
fn a_change_without_items_is_kept_as_an_other_event() {
    let body = r#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[
        {"field":"messages","value":{"errors":[{"code":131000}]}}]}]}"#;
    assert_eq!(kinds(body), ["other:messages"]);
}

#[test]
fn signed_bytes_that_are_not_an_envelope_are_one_unparsed_event() {
    for body in ["not json", "[1,2]", r#"{"object":"x"}"#, ""] {
        let events = split(&verified(body));
        assert_eq!(events.len(), 1, "{body}");
        assert_eq!(events[0].kind, EventKind::unparsed());
        assert_eq!(events[0].payload, body.as_bytes());
    }
}

#[test]
fn an_envelope_with_no_change_to_split_is_one_unparsed_event() {
    // Found by fuzzing (fuzz/corpus/webhook_split/regression-no-changes): a misspelt
    // `changes` made a call permission reply vanish without an event.
    let reply = r#"{"id":"wamid.a","interactive":{"type":"call_permission_reply"}}"#;
    let misspelt = format!(
        r#"{{"entry":[{{"id":"1","ch#anges":[{{"field":"messages","value":{{"messages":[{reply}]}}}}]}}]}}"#
    );
    let half = r#"{"entry":[{"id":"1","changes":[{"field":"x"}]},{"id":"2","changes":{}}]}"#;
    for body in [
        r#"{"entry":[]}"#,
        r#"{"entry":[{"changes":[]}]}"#,
        r#"{"entry":[1]}"#,
        half,
        &misspelt,
    ] {
        let events = split(&verified(body));
        assert_eq!(events.len(), 1, "{body}");
        assert_eq!(events[0].kind, EventKind::unparsed(), "{body}");
        assert_eq!(events[0].payload, body.as_bytes());
    }
}

#[test]
fn the_same_item_gets_the_same_id_in_any_delivery() {
    let a = r#"{"object":"o","entry":[{"id":"1","changes":[{"field":"messages","value":{"statuses":[{"id":"wamid.x","status":"read","timestamp":"1"}]}}]}]}"#;
    let b = r#"{"entry":[{"id":"1","changes":[{"field":"messages","value":{"metadata":{},"statuses":[{"id":"wamid.x","status":"read","timestamp":"1"}]}}]}],"object":"o"}"#;
    let c = r#"{"object":"o","entry":[{"id":"1","changes":[{"field":"messages","value":{"statuses":[{"id":"wamid.x","status":"delivered","timestamp":"1"}]}}]}]}"#;
    let id = |body| split(&verified(body))[0].id.clone();
    assert_eq!(id(a), id(b));
    assert_ne!(id(a), id(c));
}

#[test]
fn an_event_payload_is_metas_envelope_with_one_item() {
    let body = r#"{"object":"whatsapp_business_account","entry":[{"id":"9","changes":[{"field":"messages","value":{
        "messaging_product":"whatsapp","metadata":{"phone_number_id":"5"},"contacts":[{"wa_id":"1"}],
        "messages":[{"id":"wamid.a","type":"text"},{"id":"wamid.b","type":"text"}]}}]}]}"#;
    let events = split(&verified(body));
    let second: Value = serde_json::from_slice(&events[1].payload).unwrap();
    assert_eq!(second["object"], "whatsapp_business_account");
    assert_eq!(second["entry"][0]["id"], "9");
    let change = &second["entry"][0]["changes"][0];
    assert_eq!(change["field"], "messages");
    assert_eq!(change["value"]["messaging_product"], "whatsapp");
    assert_eq!(change["value"]["metadata"]["phone_number_id"], "5");
    assert_eq!(change["value"]["contacts"][0]["wa_id"], "1");
    assert_eq!(change["value"]["messages"].as_array().unwrap().len(), 1);
    assert_eq!(change["value"]["messages"][0]["id"], "wamid.b");
}

#[test]
fn each_event_carries_only_its_own_users_contact() {
    let body = r#"{"object":"o","entry":[{"id":"9","changes":[{"field":"messages","value":{
        "contacts":[{"wa_id":"111","user_id":"US.1"},{"wa_id":"222","user_id":"US.2"}],
        "messages":[{"id":"wamid.a","from":"111","type":"text"},{"id":"wamid.b","from_user_id":"US.2","type":"text"},
                    {"id":"wamid.c","from":"999","type":"text"}]}}]}]}"#;
    let events = split(&verified(body));
    let contacts = |i: usize| {
        let json: Value = serde_json::from_slice(&events[i].payload).unwrap();
        json["entry"][0]["changes"][0]["value"]["contacts"].clone()
    };
    assert_eq!(
        contacts(0),
        serde_json::json!([{"wa_id":"111","user_id":"US.1"}])
    );
    assert_eq!(
        contacts(1),
        serde_json::json!([{"wa_id":"222","user_id":"US.2"}])
    );
    assert_eq!(
        contacts(2).as_array().unwrap().len(),
        2,
        "no match: all kept"
    );
}

/// `n` statuses of one change whose `value` also holds `shared`, a key of its own.
fn batch(n: usize, shared: &str) -> String {
    let statuses: Vec<String> = (0..n)
        .map(|i| format!(r#"{{"id":"wamid.{i}","status":"read","recipient_id":"{i}"}}"#))
        .collect();
    format!(
        r#"{{"object":"o","entry":[{{"id":"9","changes":[{{"field":"messages","value":{{"messaging_product":"whatsapp","metadata":{{"phone_number_id":"5"}},"shared":"{shared}","statuses":[{}]}}}}]}}]}}"#,
        statuses.join(",")
    )
}

#[test]
fn the_parts_a_change_shares_are_not_copied_into_every_items_event() {
    let events = split(&verified(&batch(3, &"x".repeat(100_000))));
    assert_eq!(events.len(), 3);
    for event in &events {
        assert!(event.payload.len() < 300, "{}", event.payload.len());
        let json: Value = serde_json::from_slice(&event.payload).unwrap();
        let value = &json["entry"][0]["changes"][0]["value"];
        assert_eq!(value["metadata"]["phone_number_id"], "5");
        assert_eq!(value["messaging_product"], "whatsapp");
        assert!(value.get("shared").is_none());
    }
}

fn within(body: &str, max_items: usize, max_event_bytes: usize) -> Split {
    let limits = Limits {
        max_items,
        max_event_bytes,
    };
    split_within(&verified(body), limits)
}

#[test]
fn a_delivery_past_the_item_cap_is_one_oversize_event_holding_its_raw_bytes() {
    let body = batch(5, "");
    assert_eq!(within(&body, 5, 1024).events.len(), 5);
    let over = within(&body, 4, 1024);
    assert_eq!(over.oversize, Some(Oversize::Items));
    assert_eq!(over.events.len(), 1);
    assert_eq!(over.events[0].kind.to_string(), "other:oversize");
    assert_eq!(over.events[0].payload, body.as_bytes());
    assert_eq!(over.events[0].id, within(&body, 4, 1024).events[0].id);
}

#[test]
fn a_delivery_with_an_event_past_the_byte_cap_is_one_oversize_event() {
    let body = batch(2, "");
    let largest = split(&verified(&body))
        .iter()
        .map(|e| e.payload.len())
        .max()
        .unwrap();
    assert!(within(&body, 10, largest).oversize.is_none());
    let over = within(&body, 10, largest - 1);
    assert_eq!(over.oversize, Some(Oversize::EventBytes));
    assert_eq!(over.events.len(), 1);
    assert_eq!(over.events[0].payload, body.as_bytes());
    let other = r#"{"object":"o","entry":[{"changes":[{"field":"account_update","value":{"x":"0123456789"}}]}]}"#;
    assert_eq!(within(other, 10, 40).oversize, Some(Oversize::EventBytes));
}

#[test]
fn event_ids_round_trip_and_garbage_is_refused() {
    let id = split(&verified("x"))[0].id.clone();
    assert_eq!(EventId::parse(id.as_str()).unwrap(), id);
    for bad in [
        "",
        "evt_",
        "evt_XYZ",
        "msg_0123456789abcdef0123456789abcdef",
    ] {
        assert!(EventId::parse(bad).is_err(), "{bad}");
    }
}
