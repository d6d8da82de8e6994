//! A simulator on a random port, a webhook receiver that checks every delivery with the
//! router's own signature check and event split, and a business-side WebRTC peer. The
//! servers, the recording receiver beneath the check, the secret and the waits come from
//! `switchboard_testkit`.

use std::time::Duration;

use serde_json::{json, Value};
use switchboard::meta::events::split;
use switchboard::meta::signature::verify;
use switchboard_protocol::sim::{SimCall, WebhookRecord};
use switchboard_testkit::http::JsonAnswer;
use switchboard_testkit::meta::{app_secret, ACCESS_TOKEN, PHONE_NUMBER_ID};
use switchboard_testkit::receiver::{Receiver, Reply, Request};
use switchboard_testkit::server::Running;
use switchboard_testkit::sim::start_sim;
use switchboard_testkit::wait::poll;
use wa_sim::media::MediaPeer;
use wa_sim::{Config, Simulator};

/// One delivery as the router would see it.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub signature: String,
    pub body: Value,
    /// `kind:detail` and the event's trimmed envelope, from the router's `split`.
    pub events: Vec<(String, Value)>,
}

/// `request` as the router would take it: `None` if its signature does not verify.
fn delivery(request: &Request) -> Option<Delivery> {
    let signature = request.header("x-hub-signature-256");
    let verified = verify(&[app_secret()], signature, request.body.clone()).ok()?;
    let events = split(&verified)
        .into_iter()
        .map(|event| {
            (
                event.kind.to_string(),
                serde_json::from_slice(&event.payload).unwrap_or(Value::Null),
            )
        })
        .collect();
    Some(Delivery {
        signature: signature.unwrap_or_default().to_owned(),
        body: serde_json::from_slice(&request.body).unwrap_or(Value::Null),
        events,
    })
}

/// The router's stand-in: records every webhook, and answers one whose signature does not
/// verify with 401, as the router would.
pub struct WebhookReceiver {
    receiver: Receiver,
}

impl WebhookReceiver {
    async fn start() -> Self {
        let receiver =
            Receiver::refusing(|request| delivery(request).is_none().then(|| Reply::status(401)))
                .await;
        Self { receiver }
    }

    /// The next requests get these statuses instead of 200.
    pub fn fail_next(&self, statuses: &[u16]) {
        self.receiver
            .answer_next(statuses.iter().map(|&status| Reply::status(status)));
    }

    pub fn deliveries(&self) -> Vec<Delivery> {
        self.receiver
            .requests()
            .iter()
            .filter_map(delivery)
            .collect()
    }

    /// Deliveries whose signature did not verify.
    pub fn forged(&self) -> usize {
        let requests = self.receiver.requests();
        requests.iter().filter(|r| delivery(r).is_none()).count()
    }

    /// Waits for an event of `kind` (`call:connect`) about `id` (a wacid or wamid, or
    /// any when empty), and returns its trimmed envelope.
    pub async fn event(&self, kind: &str, id: &str) -> Value {
        self.event_matching(kind, |value| {
            id.is_empty() || value.to_string().contains(id)
        })
        .await
    }

    pub async fn event_matching(&self, kind: &str, matches: impl Fn(&Value) -> bool) -> Value {
        let found = self
            .receiver
            .until(|requests| {
                requests
                    .iter()
                    .filter_map(delivery)
                    .flat_map(|d| d.events)
                    .find(|(k, v)| k == kind && matches(v))
                    .map(|(_, v)| v)
            })
            .await;
        found.unwrap_or_else(|| {
            let kinds: Vec<String> = self
                .deliveries()
                .into_iter()
                .flat_map(|d| d.events.into_iter().map(|(k, _)| k))
                .collect();
            panic!("no `{kind}` webhook arrived; got {kinds:?}")
        })
    }

    /// The kinds received about `id`, in arrival order.
    pub fn kinds_for(&self, id: &str) -> Vec<String> {
        self.deliveries()
            .into_iter()
            .flat_map(|d| d.events)
            .filter(|(_, v)| v.to_string().contains(id))
            .map(|(k, _)| k)
            .collect()
    }
}

pub struct TestSim {
    pub base: String,
    pub client: reqwest::Client,
    pub hooks: WebhookReceiver,
    sim: Running<Simulator>,
}

/// A simulator with short timings, sending to a fresh receiver.
pub async fn spawn_sim() -> TestSim {
    spawn_sim_with(|_| {}).await
}

pub async fn spawn_sim_with(adjust: impl FnOnce(&mut Config)) -> TestSim {
    let hooks = WebhookReceiver::start().await;
    let mut config = Config::new(hooks.receiver.url.clone());
    config.timings.answer_delay = Duration::from_millis(200);
    config.timings.ring_timeout = Duration::from_secs(1);
    config.timings.accept_timeout = Duration::from_secs(20);
    config.timings.media_timeout = Duration::from_secs(15);
    config.timings.permission_reply_delay = Duration::from_millis(100);
    config.webhook_retries = vec![Duration::from_millis(50), Duration::from_millis(100)];
    adjust(&mut config);
    let sim = start_sim(config).expect("the simulator builds");
    TestSim {
        base: sim.url.clone(),
        client: reqwest::Client::new(),
        hooks,
        sim,
    }
}

impl TestSim {
    pub fn graph(&self, path: &str) -> String {
        format!("{}/v23.0/{PHONE_NUMBER_ID}/{path}", self.base)
    }

    /// `POST` to a Graph endpoint with the right token; returns status and body.
    pub async fn post_graph(&self, path: &str, body: &Value) -> (u16, Value) {
        self.client
            .post(self.graph(path))
            .bearer_auth(ACCESS_TOKEN)
            .json(body)
            .status_and_json()
            .await
    }

    pub async fn get_graph(&self, path_and_query: &str) -> (u16, Value) {
        self.client
            .get(self.graph(path_and_query))
            .bearer_auth(ACCESS_TOKEN)
            .status_and_json()
            .await
    }

    pub async fn post_sim(&self, path: &str, body: &Value) -> (u16, Value) {
        self.client
            .post(format!("{}/sim/{path}", self.base))
            .json(body)
            .status_and_json()
            .await
    }

    pub async fn call(&self, call_id: &str) -> SimCall {
        self.client
            .get(format!("{}/sim/calls/{call_id}", self.base))
            .json_body()
            .await
    }

    pub async fn webhook_records(&self) -> Vec<WebhookRecord> {
        self.client
            .get(format!("{}/sim/webhooks", self.base))
            .json_body()
            .await
    }

    /// A user who has granted call permission.
    pub async fn callable_user(&self, phone: &str) {
        let (status, body) = self
            .post_sim("users", &json!({"wa_id": phone, "permission": "permanent"}))
            .await;
        assert_eq!(status, 200, "{body}");
    }

    /// `connect` to `to` with `offer`; returns the call id.
    pub async fn connect(&self, to: &str, offer: &str) -> String {
        let (status, body) = self.post_graph("calls", &connect_body(to, offer)).await;
        assert_eq!(status, 200, "{body}");
        body["calls"][0]["id"].as_str().unwrap().to_owned()
    }

    /// Polls the simulator until `done` holds for the call, within the testkit's
    /// [`PATIENCE`](switchboard_testkit::wait::PATIENCE).
    pub async fn call_until(
        &self,
        call_id: &str,
        what: &str,
        done: impl Fn(&SimCall) -> bool,
    ) -> SimCall {
        let reached = poll(Duration::from_millis(100), async || {
            Some(self.call(call_id).await).filter(&done)
        })
        .await;
        match reached {
            Some(call) => call,
            None => panic!(
                "call never reached `{what}`: {:#?}",
                self.call(call_id).await
            ),
        }
    }

    /// Every webhook the simulator recorded verified at the receiver, and the router's
    /// split of it gave exactly the events the simulator meant to send.
    pub async fn assert_every_webhook_verified_and_split_as_sent(&self) {
        let records = self.records_once_delivered().await;
        assert_eq!(
            self.hooks.forged(),
            0,
            "a webhook failed signature verification"
        );
        let deliveries = self.hooks.deliveries();
        assert!(!records.is_empty());
        for record in records {
            let delivery = deliveries
                .iter()
                .find(|d| d.signature == record.signature)
                .unwrap_or_else(|| panic!("webhook {} never arrived: {record:?}", record.id));
            let kinds: Vec<&str> = delivery.events.iter().map(|(k, _)| k.as_str()).collect();
            assert_eq!(kinds, record.events, "{}", delivery.body);
            assert_eq!(delivery.body, record.body);
        }
    }

    /// The simulator's webhook records once every one of them was answered 200.
    pub async fn records_once_delivered(&self) -> Vec<WebhookRecord> {
        let delivered = poll(Duration::from_millis(50), async || {
            let records = self.webhook_records().await;
            records
                .iter()
                .all(|record| record.delivered)
                .then_some(records)
        })
        .await;
        match delivered {
            Some(records) => records,
            None => panic!(
                "webhooks never delivered: {:#?}",
                self.webhook_records().await
            ),
        }
    }

    pub async fn stop(self) {
        self.sim.stop().await;
    }
}

pub fn connect_body(to: &str, offer: &str) -> Value {
    json!({
        "messaging_product": "whatsapp",
        "to": to,
        "action": "connect",
        "session": {"sdp_type": "offer", "sdp": offer},
    })
}

pub fn answer_body(action: &str, call_id: &str, answer: &str) -> Value {
    json!({
        "messaging_product": "whatsapp",
        "call_id": call_id,
        "action": action,
        "session": {"sdp_type": "answer", "sdp": answer},
    })
}

/// Waits until `peer` has received `count` audible packets.
pub async fn until_heard(peer: &MediaPeer, count: u64) {
    let heard = poll(Duration::from_millis(100), async || {
        (peer.report().audible_packets_received >= count).then_some(())
    })
    .await;
    assert!(
        heard.is_some(),
        "the business never heard the user: {:?}",
        peer.report()
    );
}

/// What Meta's SDP looks like (research file §8.2).
pub fn assert_meta_like_sdp(sdp: &str, setup: &str) {
    for line in [
        "a=ice-lite",
        setup,
        "a=rtpmap:111 opus/48000/2",
        "a=rtpmap:126 telephone-event/8000",
        "a=rtcp-mux",
    ] {
        assert!(sdp.contains(line), "`{line}` missing from\n{sdp}");
    }
    let candidates: Vec<&str> = sdp
        .lines()
        .filter(|l| l.starts_with("a=candidate:"))
        .collect();
    assert!(!candidates.is_empty(), "no candidates in\n{sdp}");
    for candidate in candidates {
        assert!(candidate.contains("typ host"), "{candidate}");
        assert!(candidate.contains("127.0.0.1"), "{candidate}");
    }
    assert_eq!(sdp.matches("a=fingerprint:").count(), 1, "{sdp}");
}
