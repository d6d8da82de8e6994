//! The soak's deliveries: every shape of Meta's sample deliveries in turn (messages, message
//! statuses, permission replies, call events, call statuses, a mixed batch and a field the
//! router does not know), each made new: every wamid/wacid replaced by an id unique to the
//! run, the request and the item, and every timestamp set to the time it is made, as Meta's
//! own deliveries carry the time they happened.

use anyhow::Context;
use serde_json::Value;

use crate::bodies::{signed, unique_id, SignedBody, ID_PREFIXES};

/// One sample delivery used as a template.
struct Shape {
    name: &'static str,
    raw: &'static str,
    /// A key of a change's `value` made unique per request, for a delivery whose items carry
    /// no wamid/wacid: the router knows such an event by its content, so without it every
    /// copy would be a duplicate of the first.
    unique_key: Option<&'static str>,
}

macro_rules! shape {
    ($name:literal, $file:literal) => {
        Shape {
            name: $name,
            raw: include_str!(concat!("../../../fixtures/meta-webhooks/", $file)),
            unique_key: None,
        }
    };
}

/// Sent in this order, round-robin.
const SHAPES: [Shape; 13] = [
    shape!("text-message", "01-text-message.json"),
    shape!("status-delivered", "02-message-status-delivered.json"),
    shape!("status-failed", "03-message-status-failed.json"),
    shape!("permission-accept", "04-call-permission-reply-accept.json"),
    shape!("permission-reject", "05-call-permission-reply-reject.json"),
    shape!(
        "call-connect-offer",
        "06-call-connect-user-initiated-offer.json"
    ),
    shape!(
        "call-connect-answer",
        "07-call-connect-business-initiated-answer.json"
    ),
    shape!("call-status-ringing", "08-call-status-ringing.json"),
    shape!("call-status-accepted", "09-call-status-accepted.json"),
    shape!("call-status-rejected", "10-call-status-rejected.json"),
    shape!("call-terminate", "11-call-terminate-completed.json"),
    shape!("mixed-batch", "12-mixed-batch.json"),
    Shape {
        unique_key: Some("phone_number"),
        ..shape!("unknown-field", "13-unknown-field.json")
    },
];

/// Makes the body of request `n`; cheap to share between tasks.
pub struct SoakMix {
    templates: Vec<Value>,
    secret: String,
    run_id: u32,
}

impl SoakMix {
    pub fn new(secret: &str, run_id: u32) -> anyhow::Result<Self> {
        let templates = SHAPES
            .iter()
            .map(|shape| {
                serde_json::from_str(shape.raw)
                    .with_context(|| format!("fixture {} is not JSON", shape.name))
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(Self {
            templates,
            secret: secret.to_owned(),
            run_id,
        })
    }

    /// Names of the shapes, indexed like [`SignedBody::template`].
    pub fn names() -> impl Iterator<Item = &'static str> {
        SHAPES.iter().map(|s| s.name)
    }

    /// Request `n`: shape `n mod 13` with ids unique to (run, n) and every timestamp
    /// `now_secs`, signed with the app secret.
    pub fn make(&self, n: u64, now_secs: u64) -> SignedBody {
        let index = usize::try_from(n % SHAPES.len() as u64)
            .unwrap_or_else(|_| unreachable!("a remainder of 13 fits in usize"));
        let mut value = self.templates[index].clone();
        let mut fresh = Fresh {
            run_id: self.run_id,
            n,
            item: 0,
            now_secs,
        };
        fresh.rewrite(&mut value);
        if let Some(key) = SHAPES[index].unique_key {
            fresh.make_unique(&mut value, key);
        }
        let body = serde_json::to_vec(&value)
            .unwrap_or_else(|_| unreachable!("a JSON value always serializes"));
        let mut signed = signed(&self.secret, body.into());
        signed.template = index;
        signed
    }
}

/// What one request's ids and times are made from.
struct Fresh {
    run_id: u32,
    n: u64,
    /// Ids replaced so far: the next one's position in the delivery.
    item: usize,
    now_secs: u64,
}

impl Fresh {
    fn rewrite(&mut self, value: &mut Value) {
        match value {
            Value::Object(map) => {
                for (key, value) in map.iter_mut() {
                    match (key.as_str(), &*value) {
                        ("timestamp", Value::String(_)) => {
                            *value = Value::String(self.now_secs.to_string());
                        }
                        ("time", Value::Number(_)) => *value = Value::from(self.now_secs),
                        _ => self.rewrite(value),
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|item| self.rewrite(item)),
            Value::String(text) => {
                if let Some(prefix) = ID_PREFIXES.iter().find(|p| text.starts_with(*p)) {
                    *text = format!("{prefix}{}", unique_id(self.run_id, self.n, self.item));
                    self.item += 1;
                }
            }
            _ => {}
        }
    }

    /// Sets `key` of every change's `value` to digits unique to the request.
    fn make_unique(&self, value: &mut Value, key: &str) {
        let changes = value["entry"]
            .as_array_mut()
            .into_iter()
            .flatten()
            .filter_map(|entry| entry["changes"].as_array_mut())
            .flatten();
        for change in changes {
            if let Some(slot) = change["value"].get_mut(key) {
                *slot = Value::String(format!("{:010}{:010}", self.run_id, self.n));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::HashSet;

    use hmac::{Hmac, Mac};
    use sha2::Sha256;

    use super::*;

    fn parse(body: &SignedBody) -> Value {
        serde_json::from_slice(&body.body).unwrap()
    }

    /// Every string in `value` that starts with wamid./wacid.
    fn ids(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => map.values().for_each(|v| ids(v, out)),
            Value::Array(items) => items.iter().for_each(|v| ids(v, out)),
            Value::String(s) if ID_PREFIXES.iter().any(|p| s.starts_with(p)) => {
                out.push(s.clone());
            }
            _ => {}
        }
    }

    #[test]
    fn every_shape_comes_in_turn_with_fresh_ids_and_the_time_it_was_made() {
        let mix = SoakMix::new("test-app-secret", 9).unwrap();
        let mut seen = HashSet::new();
        for n in 0..26 {
            let body = mix.make(n, 1_790_000_000);
            assert_eq!(body.template, (n % 13) as usize);
            let text = String::from_utf8(body.body.to_vec()).unwrap();
            for old in ["\"timestamp\":\"17531", "\"time\":17531"] {
                assert!(!text.contains(old), "an old timestamp kept: {text}");
            }
            let mut found = Vec::new();
            ids(&parse(&body), &mut found);
            for id in found {
                assert!(id.contains("BENCH"), "{id} kept from the fixture");
                assert!(seen.insert(id.clone()), "{id} repeated");
            }
        }
        // 13 shapes, two rounds: one id each, two in the permission replies (the reply and
        // the message it answers), three in the batch, none in the unknown field.
        assert_eq!(seen.len(), 2 * (9 + 2 * 2 + 3));
    }

    #[test]
    fn the_delivery_without_item_ids_differs_from_request_to_request() {
        let mix = SoakMix::new("s", 1).unwrap();
        let a = parse(&mix.make(12, 5));
        let b = parse(&mix.make(25, 5));
        let number = |v: &Value| v["entry"][0]["changes"][0]["value"]["phone_number"].clone();
        assert_ne!(number(&a), number(&b));
        assert_eq!(a["entry"][0]["time"], 5);
    }

    #[test]
    fn a_body_is_signed_over_its_exact_bytes() {
        let mix = SoakMix::new("another-secret", 1).unwrap();
        let body = mix.make(5, 1);
        let mut mac = Hmac::<Sha256>::new_from_slice(b"another-secret").unwrap();
        mac.update(&body.body);
        let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        assert_eq!(body.signature.to_str().unwrap(), expected);
    }

    #[test]
    fn names_follow_the_order_bodies_are_made_in() {
        let names: Vec<_> = SoakMix::names().collect();
        assert_eq!(names.len(), 13);
        assert_eq!(names[11], "mixed-batch");
    }
}
