//! A simulator on a random port, a webhook receiver that checks every delivery with the
//! router's own signature check and event split, and a business-side WebRTC peer.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use bytes::Bytes;
use secrecy::SecretString;
use serde_json::{json, Value};
use switchboard::meta::events::split;
use switchboard::meta::signature::{verify, AppSecret};
use switchboard_protocol::sim::{SimCall, WebhookRecord};
use tokio::sync::watch;
use wa_sim::media::{Audio, MediaPeer, PeerOptions, Role};
use wa_sim::startup::Stopper;
use wa_sim::{Config, Simulator};

pub const SECRET: &str = "test-app-secret";
pub const TOKEN: &str = "EAAG-test";
pub const NUMBER_ID: &str = "106540352242922";
/// Every wait in these tests is bounded by this; none asserts on speed.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// One delivery as the router would see it.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub signature: String,
    pub body: Value,
    /// `kind:detail` and the event's trimmed envelope, from the router's `split`.
    pub events: Vec<(String, Value)>,
}

#[derive(Default)]
struct Received {
    deliveries: Vec<Delivery>,
    /// Deliveries whose signature did not verify.
    forged: usize,
    /// Statuses to answer with before answering 200, one per request.
    failures_to_give: Vec<u16>,
}

#[derive(Clone)]
pub struct WebhookReceiver {
    received: Arc<Mutex<Received>>,
    arrivals: watch::Sender<u64>,
}

impl WebhookReceiver {
    fn with<T>(&self, f: impl FnOnce(&mut Received) -> T) -> T {
        f(&mut self.received.lock().unwrap())
    }

    /// The next requests get these statuses instead of 200.
    pub fn fail_next(&self, statuses: &[u16]) {
        self.with(|r| r.failures_to_give = statuses.to_vec());
    }

    pub fn deliveries(&self) -> Vec<Delivery> {
        self.with(|r| r.deliveries.clone())
    }

    pub fn forged(&self) -> usize {
        self.with(|r| r.forged)
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
        let mut arrivals = self.arrivals.subscribe();
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let found = self.with(|r| {
                r.deliveries
                    .iter()
                    .flat_map(|d| d.events.iter())
                    .find(|(k, v)| k == kind && matches(v))
                    .map(|(_, v)| v.clone())
            });
            if let Some(value) = found {
                return value;
            }
            let kinds: Vec<String> = self.with(|r| {
                r.deliveries
                    .iter()
                    .flat_map(|d| d.events.iter().map(|(k, _)| k.clone()))
                    .collect()
            });
            tokio::time::timeout_at(deadline, arrivals.changed())
                .await
                .unwrap_or_else(|_| panic!("no `{kind}` webhook arrived; got {kinds:?}"))
                .unwrap();
        }
    }

    /// The kinds received about `id`, in arrival order.
    pub fn kinds_for(&self, id: &str) -> Vec<String> {
        self.with(|r| {
            r.deliveries
                .iter()
                .flat_map(|d| d.events.iter())
                .filter(|(_, v)| v.to_string().contains(id))
                .map(|(k, _)| k.clone())
                .collect()
        })
    }
}

async fn receive(
    request: HttpRequest,
    body: Bytes,
    receiver: web::Data<WebhookReceiver>,
) -> HttpResponse {
    let secret = AppSecret::parse(SecretString::from(SECRET)).unwrap();
    let header = request
        .headers()
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let Ok(verified) = verify(&[secret], header.as_deref(), body.clone()) else {
        receiver.with(|r| r.forged += 1);
        return HttpResponse::Unauthorized().finish();
    };
    let events = split(&verified)
        .into_iter()
        .map(|event| {
            (
                event.kind.to_string(),
                serde_json::from_slice(&event.payload).unwrap_or(Value::Null),
            )
        })
        .collect();
    let status = receiver.with(|r| {
        r.deliveries.push(Delivery {
            signature: header.unwrap_or_default(),
            body: serde_json::from_slice(&body).unwrap_or(Value::Null),
            events,
        });
        if r.failures_to_give.is_empty() {
            200
        } else {
            r.failures_to_give.remove(0)
        }
    });
    receiver.arrivals.send_modify(|n| *n += 1);
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap()).finish()
}

async fn spawn_receiver() -> (WebhookReceiver, String) {
    let receiver = WebhookReceiver {
        received: Arc::default(),
        arrivals: watch::Sender::new(0),
    };
    let data = web::Data::new(receiver.clone());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .route("/webhook", web::post().to(receive))
    })
    .workers(1)
    .disable_signals()
    .bind("127.0.0.1:0")
    .unwrap();
    let port = server.addrs()[0].port();
    tokio::spawn(server.run());
    (receiver, format!("http://127.0.0.1:{port}/webhook"))
}

pub struct TestSim {
    pub base: String,
    pub client: reqwest::Client,
    pub hooks: WebhookReceiver,
    stopper: Stopper,
}

/// A simulator with short timings, sending to a fresh receiver.
pub async fn spawn_sim() -> TestSim {
    spawn_sim_with(|_| {}).await
}

pub async fn spawn_sim_with(adjust: impl FnOnce(&mut Config)) -> TestSim {
    let (hooks, url) = spawn_receiver().await;
    let mut config = Config::new(url);
    config.timings.answer_delay = Duration::from_millis(200);
    config.timings.ring_timeout = Duration::from_secs(1);
    config.timings.accept_timeout = Duration::from_secs(20);
    config.timings.media_timeout = Duration::from_secs(15);
    config.timings.permission_reply_delay = Duration::from_millis(100);
    config.webhook_retries = vec![Duration::from_millis(50), Duration::from_millis(100)];
    adjust(&mut config);
    let simulator = Simulator::build(config).unwrap();
    let base = format!("http://127.0.0.1:{}", simulator.port());
    let stopper = simulator.stopper();
    tokio::spawn(simulator.run_until_stopped());
    TestSim {
        base,
        client: reqwest::Client::new(),
        hooks,
        stopper,
    }
}

impl TestSim {
    pub fn graph(&self, path: &str) -> String {
        format!("{}/v23.0/{NUMBER_ID}/{path}", self.base)
    }

    /// `POST` to a Graph endpoint with the right token; returns status and body.
    pub async fn post_graph(&self, path: &str, body: &Value) -> (u16, Value) {
        let response = self
            .client
            .post(self.graph(path))
            .bearer_auth(TOKEN)
            .json(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn get_graph(&self, path_and_query: &str) -> (u16, Value) {
        let response = self
            .client
            .get(self.graph(path_and_query))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn post_sim(&self, path: &str, body: &Value) -> (u16, Value) {
        let response = self
            .client
            .post(format!("{}/sim/{path}", self.base))
            .json(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn call(&self, call_id: &str) -> SimCall {
        self.client
            .get(format!("{}/sim/calls/{call_id}", self.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub async fn webhook_records(&self) -> Vec<WebhookRecord> {
        self.client
            .get(format!("{}/sim/webhooks", self.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
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

    /// Polls the simulator until `done` holds for the call, within [`PATIENCE`].
    pub async fn call_until(
        &self,
        call_id: &str,
        what: &str,
        done: impl Fn(&SimCall) -> bool,
    ) -> SimCall {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let call = self.call(call_id).await;
            if done(&call) {
                return call;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "call never reached `{what}`: {call:#?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
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
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let records = self.webhook_records().await;
            if records.iter().all(|record| record.delivered) {
                return records;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "webhooks never delivered: {records:#?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn stop(self) {
        self.stopper.stop().await;
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

/// The business's WebRTC peer, on loopback like everything here.
pub async fn business_peer(audio: Audio) -> MediaPeer {
    MediaPeer::start(PeerOptions {
        role: Role::Business,
        bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        audio,
    })
    .await
    .unwrap()
}

/// Waits until `peer` has received `count` audible packets.
pub async fn until_heard(peer: &MediaPeer, count: u64) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while peer.report().audible_packets_received < count {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the business never heard the user: {:?}",
            peer.report()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
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
