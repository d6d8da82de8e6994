//! Unique, signed webhook bodies built from Meta's fixture deliveries.
//!
//! The router deduplicates events by Meta's item ids (wamid / wacid), so replaying one
//! fixture would measure only its "already seen" path. Every body made here therefore carries
//! fresh ids, derived from a per-run nonce, the request counter and the item's position.
//! [`parse_id`] reads the run and the request number back from such an id.

use bytes::Bytes;
use hmac::{Hmac, Mac};
use hyper::header::HeaderValue;
use sha2::Sha256;

/// One fixture delivery used as a template.
struct Fixture {
    name: &'static str,
    raw: &'static str,
}

/// The deliveries mixed round-robin: a text message, a message status, a call status and a
/// batch holding one of each kind of the first three (so it fans out to both routes).
const FIXTURES: [Fixture; 4] = [
    Fixture {
        name: "text-message",
        raw: include_str!("../../fixtures/meta-webhooks/01-text-message.json"),
    },
    Fixture {
        name: "message-status",
        raw: include_str!("../../fixtures/meta-webhooks/02-message-status-delivered.json"),
    },
    Fixture {
        name: "call-status",
        raw: include_str!("../../fixtures/meta-webhooks/08-call-status-ringing.json"),
    },
    Fixture {
        name: "mixed-batch",
        raw: include_str!("../../fixtures/meta-webhooks/12-mixed-batch.json"),
    },
];

/// A user-initiated call `connect` carrying an SDP offer: each new one rings every agent.
const INCOMING_CALL: Fixture = Fixture {
    name: "call-connect",
    raw: include_str!("../../fixtures/meta-webhooks/06-call-connect-user-initiated-offer.json"),
};

/// Which deliveries a factory makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mix {
    /// [`FIXTURES`] round-robin: the ingest benchmark's load.
    Ingest,
    /// Only [`INCOMING_CALL`], each with a new call id: the push benchmark's load.
    IncomingCalls,
}

/// The most templates a mix has; tallies per template are arrays of this size.
pub const MAX_TEMPLATES: usize = FIXTURES.len();

impl Mix {
    fn fixtures(self) -> &'static [Fixture] {
        match self {
            Self::Ingest => &FIXTURES,
            Self::IncomingCalls => std::slice::from_ref(&INCOMING_CALL),
        }
    }

    /// Names of the templates, indexed like [`SignedBody::template`].
    pub fn template_names(self) -> impl Iterator<Item = &'static str> {
        self.fixtures().iter().map(|f| f.name)
    }
}

/// Prefixes of the ids that are replaced; the prefix itself is kept.
pub const ID_PREFIXES: [&str; 2] = ["wamid.", "wacid."];

/// A fixture cut at its ids: `literals[0] prefix[0] <id> literals[1] prefix[1] <id> ...`.
struct Template {
    literals: Vec<&'static str>,
    prefixes: Vec<&'static str>,
    /// The fixture's length: a rendered body is at most a few bytes per id longer.
    raw_len: usize,
}

impl Template {
    /// Cuts `raw` at every JSON string value that starts with a wamid/wacid prefix.
    fn parse(raw: &'static str) -> Self {
        let mut literals = Vec::new();
        let mut prefixes = Vec::new();
        let mut rest = raw;
        while let Some((at, prefix)) = next_id(rest) {
            let id_start = at + prefix.len();
            // Ids never contain quotes or escapes, so the id runs to the next quote.
            let id_len = rest[id_start..].find('"').unwrap_or(rest.len() - id_start);
            literals.push(&rest[..id_start]);
            prefixes.push(prefix);
            rest = &rest[id_start + id_len..];
        }
        literals.push(rest);
        Self {
            literals,
            prefixes,
            raw_len: raw.len(),
        }
    }

    /// Writes the template with each id replaced by a unique one for this request.
    fn render(&self, run_id: u32, counter: u64, out: &mut Vec<u8>) {
        for (item, literal) in self.literals.iter().enumerate() {
            out.extend_from_slice(literal.as_bytes());
            if item < self.prefixes.len() {
                out.extend_from_slice(unique_id(run_id, counter, item).as_bytes());
            }
        }
    }

    #[cfg(test)]
    fn id_count(&self) -> usize {
        self.prefixes.len()
    }
}

/// The part of an id after its `wamid.`/`wacid.` prefix. Upper-case hex and digits only:
/// valid in any id charset a parser may check.
pub fn unique_id(run_id: u32, counter: u64, item: usize) -> String {
    format!("{ID_MARK}{run_id:08X}{counter:012X}{item:02X}")
}

/// What every id made here starts with, after the prefix.
const ID_MARK: &str = "BENCH";

/// Reads an id made by a factory (`wacid.BENCH…` or `wamid.BENCH…`) back into its run id and
/// request number; `None` for any other id.
pub fn parse_id(id: &str) -> Option<(u32, u64)> {
    let rest = ID_PREFIXES
        .iter()
        .find_map(|prefix| id.strip_prefix(prefix))?
        .strip_prefix(ID_MARK)?;
    if rest.len() != 8 + 12 + 2 || !rest.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let run_id = u32::from_str_radix(&rest[..8], 16).ok()?;
    let counter = u64::from_str_radix(&rest[8..20], 16).ok()?;
    Some((run_id, counter))
}

/// The earliest `"wamid.` or `"wacid.` in `text`: byte offset of the prefix and the prefix.
fn next_id(text: &str) -> Option<(usize, &'static str)> {
    ID_PREFIXES
        .iter()
        .filter_map(|prefix| {
            text.find(&format!("\"{prefix}"))
                .map(|quote| (quote + 1, *prefix))
        })
        .min_by_key(|(at, _)| *at)
}

/// A request body and its `X-Hub-Signature-256` header value.
#[derive(Clone)]
pub struct SignedBody {
    pub body: Bytes,
    pub signature: HeaderValue,
    /// Index into the factory's [`Mix::template_names`].
    pub template: usize,
}

/// Makes the body of request number `n`; cheap to share between tasks.
pub struct BodyFactory {
    templates: Vec<Template>,
    mac: Hmac<Sha256>,
    run_id: u32,
}

impl BodyFactory {
    /// `run_id` keeps ids unique across runs against the same router data directory.
    pub fn new(secret: &str, run_id: u32, mix: Mix) -> Self {
        let templates = mix
            .fixtures()
            .iter()
            .map(|f| Template::parse(f.raw))
            .collect();
        // HMAC accepts keys of any length, so this cannot fail.
        let mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        Self {
            templates,
            mac,
            run_id,
        }
    }

    /// The body of request `n`: template `n mod (templates)` with ids unique to (run, n).
    pub fn make(&self, n: u64) -> SignedBody {
        let index = usize::try_from(n % self.templates.len() as u64)
            .unwrap_or_else(|_| unreachable!("a remainder of a few templates fits in usize"));
        let template = &self.templates[index];
        let mut body = Vec::with_capacity(template.raw_len + 64);
        template.render(self.run_id, n, &mut body);
        let signature = self.sign(&body);
        SignedBody {
            body: Bytes::from(body),
            signature,
            template: index,
        }
    }

    /// `sha256=<lower-case hex HMAC-SHA256 of the exact body bytes>`, as Meta sends it.
    fn sign(&self, body: &[u8]) -> HeaderValue {
        let mut mac = self.mac.clone();
        mac.update(body);
        let value = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        HeaderValue::from_str(&value)
            .unwrap_or_else(|_| unreachable!("hex digits are a valid header value"))
    }

    #[cfg(test)]
    fn sign_raw(&self, body: &[u8]) -> String {
        self.sign(body)
            .to_str()
            .map(str::to_owned)
            .unwrap_or_default()
    }
}

/// `body` signed with `secret` as Meta signs it, for a body made elsewhere.
pub fn signed(secret: &str, body: Bytes) -> SignedBody {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(&body);
    let value = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    SignedBody {
        body,
        signature: HeaderValue::from_str(&value)
            .unwrap_or_else(|_| unreachable!("hex digits are a valid header value")),
        template: 0,
    }
}

/// Where workers get bodies: made up front when the request count is known and fits in
/// memory, so signing stays off the sending path; otherwise made on demand.
pub enum BodySource {
    Pregenerated(Vec<SignedBody>),
    OnDemand(BodyFactory),
}

impl BodySource {
    /// Above this many requests, bodies are made on demand (about 1 KiB each).
    const PREGENERATE_LIMIT: u64 = 500_000;

    pub fn new(factory: BodyFactory, count: Option<u64>) -> Self {
        match count {
            Some(count) if count <= Self::PREGENERATE_LIMIT => {
                Self::Pregenerated((0..count).map(|n| factory.make(n)).collect())
            }
            _ => Self::OnDemand(factory),
        }
    }

    /// The body of request `n`; `None` past the end of a pre-generated set.
    pub fn get(&self, n: u64) -> Option<SignedBody> {
        match self {
            Self::Pregenerated(bodies) => {
                usize::try_from(n).ok().and_then(|n| bodies.get(n)).cloned()
            }
            Self::OnDemand(factory) => Some(factory.make(n)),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use std::collections::HashSet;

    /// From fixtures/meta-webhooks/SIGNATURES.tsv (secret `test-app-secret`).
    const FIXTURE_SIGNATURES: [&str; 4] = [
        "sha256=4eda601bc0e7a0607b2709636ec9ddec36ae9aa299886b9b50b573b84ef23f0e",
        "sha256=cd213d83eb0737638a96fde595c221f00507b58662035fc53e97784006c85d5c",
        "sha256=c326f663bebd81bba3926023e97c4d44a0708bb5206cd7a5ac927db40c1e6712",
        "sha256=883aa7c7a6b4f129a72e8efcd1e93f8614905b0628f249e7d24a913b781dd0e0",
    ];

    fn ids_in(body: &[u8]) -> Vec<String> {
        let value: serde_json::Value = serde_json::from_slice(body).unwrap();
        let mut ids = Vec::new();
        for change in value["entry"][0]["changes"].as_array().unwrap() {
            for list in ["messages", "statuses", "calls"] {
                for item in change["value"][list].as_array().into_iter().flatten() {
                    ids.push(item["id"].as_str().unwrap().to_owned());
                }
            }
        }
        ids
    }

    #[test]
    fn signatures_match_the_ones_meta_sent_for_the_fixtures() {
        let factory = BodyFactory::new("test-app-secret", 0, Mix::Ingest);
        for (fixture, expected) in FIXTURES.iter().zip(FIXTURE_SIGNATURES) {
            assert_eq!(factory.sign_raw(fixture.raw.as_bytes()), expected);
        }
    }

    #[test]
    fn every_item_id_of_every_fixture_is_replaced() {
        let expected_items = [1, 1, 1, 3];
        for (fixture, items) in FIXTURES.iter().zip(expected_items) {
            assert_eq!(
                Template::parse(fixture.raw).id_count(),
                items,
                "{}",
                fixture.name
            );
        }
    }

    #[test]
    fn bodies_are_valid_json_with_fresh_ids_and_round_robin_templates() {
        let factory = BodyFactory::new("test-app-secret", 7, Mix::Ingest);
        let original: HashSet<String> = FIXTURES
            .iter()
            .flat_map(|f| ids_in(f.raw.as_bytes()))
            .collect();
        let mut seen = HashSet::new();
        for n in 0..40 {
            let body = factory.make(n);
            assert_eq!(body.template, (n % 4) as usize);
            for id in ids_in(&body.body) {
                assert!(id.starts_with("wamid.") || id.starts_with("wacid."), "{id}");
                assert!(!original.contains(&id), "{id} kept from the fixture");
                assert!(seen.insert(id.clone()), "{id} repeated");
            }
        }
        assert_eq!(seen.len(), 10 * (1 + 1 + 1 + 3));
    }

    #[test]
    fn a_body_is_signed_over_its_exact_bytes() {
        let factory = BodyFactory::new("another-secret", 1, Mix::Ingest);
        let body = factory.make(3);
        let mut mac = Hmac::<Sha256>::new_from_slice(b"another-secret").unwrap();
        mac.update(&body.body);
        let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        assert_eq!(body.signature.to_str().unwrap(), expected);
    }

    #[test]
    fn different_runs_get_different_ids() {
        let a = BodyFactory::new("s", 1, Mix::Ingest).make(0);
        let b = BodyFactory::new("s", 2, Mix::Ingest).make(0);
        assert_ne!(ids_in(&a.body), ids_in(&b.body));
    }

    #[test]
    fn pregenerated_source_ends_where_its_count_does() {
        let source = BodySource::new(BodyFactory::new("s", 1, Mix::Ingest), Some(3));
        assert!(source.get(2).is_some());
        assert!(source.get(3).is_none());
    }

    #[test]
    fn incoming_calls_get_a_fresh_call_id_that_reads_back_as_run_and_number() {
        let factory = BodyFactory::new("test-app-secret", 0xA1B2_C3D4, Mix::IncomingCalls);
        assert_eq!(
            Mix::IncomingCalls.template_names().collect::<Vec<_>>(),
            ["call-connect"]
        );
        for n in [0, 1, 999, 0xFFFF_FFFF_FFFF] {
            let body = factory.make(n);
            assert_eq!(body.template, 0);
            let value: serde_json::Value = serde_json::from_slice(&body.body).unwrap();
            let call = &value["entry"][0]["changes"][0]["value"]["calls"][0];
            assert_eq!(call["event"], "connect");
            assert_eq!(call["direction"], "USER_INITIATED");
            assert!(call["session"]["sdp"].as_str().unwrap().starts_with("v=0"));
            let id = call["id"].as_str().unwrap();
            assert_eq!(parse_id(id), Some((0xA1B2_C3D4, n)), "{id}");
        }
    }

    #[test]
    fn ids_not_made_here_do_not_parse() {
        for id in [
            "wacid.HBgLMTIxMjU1NTAxMDAVAgARGCAyQkE1RTNGNUM4QjFBOTk2MTY1RTJCMDg4RkRCNTcyMBwYCzE1NTUwNzgzODgxFQIAAA==",
            "wacid.BENCH0000000100000000000",
            "wacid.BENCH00000001000000000000ZZ",
            "other.BENCH0000000100000000000000",
            "",
        ] {
            assert_eq!(parse_id(id), None, "{id}");
        }
        assert_eq!(
            parse_id("wamid.BENCH000000010000000000FF02"),
            Some((1, 0xFF))
        );
    }
}
