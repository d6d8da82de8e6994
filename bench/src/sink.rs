//! A consumer that stands in for the router's delivery targets: it answers every `POST` with
//! `200` (after an optional delay) and counts what arrived, so fan-out throughput can be read
//! from `GET /stats`.

use std::collections::{BTreeMap, HashSet};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{HeaderMap, Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::net::TcpListener;

/// What `GET /stats` returns.
#[derive(Debug, Default, Serialize)]
pub struct Stats {
    pub requests: u64,
    pub bytes: u64,
    /// Unix time in ms of the first and last `POST`; `null` before the first.
    pub first_at_ms: Option<u64>,
    pub last_at_ms: Option<u64>,
    /// Requests whose `webhook-id` (event mode) or `x-hub-signature-256` (original mode) had
    /// been seen before: redeliveries.
    pub duplicates: u64,
    /// Requests per `x-switchboard-event` value; `none` when the header is absent.
    pub by_event: BTreeMap<String, u64>,
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    bytes: AtomicU64,
    /// 0 means "not yet": no request arrives at the Unix epoch.
    first_at_ms: AtomicU64,
    last_at_ms: AtomicU64,
    seen: Mutex<Seen>,
}

#[derive(Default)]
struct Seen {
    ids: HashSet<Vec<u8>>,
    duplicates: u64,
    by_event: BTreeMap<String, u64>,
}

impl Counters {
    fn record(&self, headers: &HeaderMap, bytes: usize) {
        let now = unix_ms();
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
        let _ = self
            .first_at_ms
            .compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
        self.last_at_ms.fetch_max(now, Ordering::Relaxed);

        let event = headers
            .get("x-switchboard-event")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("none");
        let id = headers
            .get("webhook-id")
            .or_else(|| headers.get("x-hub-signature-256"));
        // A panic elsewhere cannot leave these counters half-updated, so poisoning is harmless.
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        *seen.by_event.entry(event.to_owned()).or_default() += 1;
        if let Some(id) = id {
            if !seen.ids.insert(id.as_bytes().to_vec()) {
                seen.duplicates += 1;
            }
        }
    }

    fn stats(&self) -> Stats {
        let seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let at = |ms: &AtomicU64| Some(ms.load(Ordering::Relaxed)).filter(|ms| *ms != 0);
        Stats {
            requests: self.requests.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            first_at_ms: at(&self.first_at_ms),
            last_at_ms: at(&self.last_at_ms),
            duplicates: seen.duplicates,
            by_event: seen.by_event.clone(),
        }
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A bound sink; [`Sink::run`] serves it.
pub struct Sink {
    listener: TcpListener,
    delay: Duration,
    counters: Arc<Counters>,
}

impl Sink {
    /// Binds `listen` (port 0 picks a free port; see [`Sink::local_addr`]).
    pub async fn bind(listen: SocketAddr, delay: Duration) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(listen)
            .await
            .with_context(|| format!("binding {listen}"))?;
        Ok(Self {
            listener,
            delay,
            counters: Arc::default(),
        })
    }

    /// Reads the counters in-process, as `GET /stats` would.
    #[cfg(test)]
    pub fn stats_reader(&self) -> impl Fn() -> Stats {
        let counters = self.counters.clone();
        move || counters.stats()
    }

    pub fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        self.listener.local_addr().context("reading bound address")
    }

    /// Accepts connections until the process ends.
    pub async fn run(self) -> anyhow::Result<()> {
        loop {
            let (stream, _) = self.listener.accept().await.context("accepting")?;
            // Best effort: a socket that refuses NODELAY still works, only slower.
            let _ = stream.set_nodelay(true);
            let counters = self.counters.clone();
            let delay = self.delay;
            tokio::spawn(async move {
                let service = service_fn(move |request| handle(request, counters.clone(), delay));
                // A consumer that hangs up mid-request is its own business.
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    }
}

async fn handle(
    request: Request<Incoming>,
    counters: Arc<Counters>,
    delay: Duration,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if request.method() == Method::GET && request.uri().path() == "/stats" {
        let body = serde_json::to_vec(&counters.stats()).unwrap_or_default();
        return Ok(reply(StatusCode::OK, body, "application/json"));
    }
    if request.method() != Method::POST {
        return Ok(reply(
            StatusCode::METHOD_NOT_ALLOWED,
            Vec::new(),
            "text/plain",
        ));
    }
    let (parts, body) = request.into_parts();
    let Ok(body) = body.collect().await else {
        return Ok(reply(StatusCode::BAD_REQUEST, Vec::new(), "text/plain"));
    };
    counters.record(&parts.headers, body.to_bytes().len());
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    Ok(reply(StatusCode::OK, Vec::new(), "text/plain"))
}

fn reply(status: StatusCode, body: Vec<u8>, content_type: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}
