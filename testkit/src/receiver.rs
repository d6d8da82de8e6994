//! A real HTTP server on loopback that records every request it gets and answers as told:
//! a route's consumer for the router's tests, the router's stand-in for wa-sim's, Meta's
//! stand-in for the Graph client's.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use bytes::Bytes;
use tokio::sync::watch;

use crate::wait::PATIENCE;

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Request {
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    /// When it was recorded (after any [`Reply::after`] delay).
    pub at: Instant,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// How the receiver answers a request.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// How long to wait before recording the request and answering.
    pub delay: Duration,
}

impl Default for Reply {
    fn default() -> Self {
        Self::ok()
    }
}

impl Reply {
    /// `200` with no body.
    pub fn ok() -> Self {
        Self::status(200)
    }

    pub fn status(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: String::new(),
            delay: Duration::ZERO,
        }
    }

    /// `status` with a JSON `body`.
    pub fn json(status: u16, body: &str) -> Self {
        Self {
            body: body.to_owned(),
            ..Self::status(status).header("content-type", "application/json")
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// The same answer, given only after `delay`.
    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// Answers a request with a reply of its own instead of the programmed one (`None`: no).
type Refusal = dyn Fn(&Request) -> Option<Reply> + Send + Sync;

struct Shared {
    requests: Mutex<Vec<Request>>,
    /// Replies for the next requests, one each, before `otherwise`.
    next: Mutex<VecDeque<Reply>>,
    otherwise: Mutex<Reply>,
    refuse: Option<Box<Refusal>>,
    /// How many requests were recorded; a change wakes whoever waits in [`Receiver::until`].
    arrivals: watch::Sender<usize>,
}

/// A recording HTTP receiver on `127.0.0.1`; it takes any method on any path, and stays up
/// for the rest of the test.
pub struct Receiver {
    /// Where to send: `http://127.0.0.1:<port>/hook`.
    pub url: String,
    port: u16,
    shared: web::Data<Shared>,
}

impl Receiver {
    /// A receiver on a port of its own.
    pub async fn start() -> Self {
        Self::start_on(0).await
    }

    /// A receiver on `port`, say one a sender has been failing to reach.
    pub async fn start_on(port: u16) -> Self {
        Self::serve(port, None)
    }

    /// A receiver that answers a request `refuse` picks out with the reply it gives,
    /// whatever it was told to answer; such a request is recorded all the same.
    pub async fn refusing(
        refuse: impl Fn(&Request) -> Option<Reply> + Send + Sync + 'static,
    ) -> Self {
        Self::serve(0, Some(Box::new(refuse)))
    }

    fn serve(port: u16, refuse: Option<Box<Refusal>>) -> Self {
        let shared = web::Data::new(Shared {
            requests: Mutex::default(),
            next: Mutex::default(),
            otherwise: Mutex::new(Reply::ok()),
            refuse,
            arrivals: watch::Sender::new(0),
        });
        let data = shared.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(web::PayloadConfig::new(16 * 1024 * 1024))
                .default_service(web::to(record))
        })
        .workers(1)
        .disable_signals()
        .bind(("127.0.0.1", port))
        .expect("the receiver's port is free");
        let port = server.addrs()[0].port();
        tokio::spawn(server.run());
        Self {
            url: format!("http://127.0.0.1:{port}/hook"),
            port,
            shared,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Answer every request from now on with `reply`.
    pub fn answer(&self, reply: Reply) {
        *self.shared.otherwise.lock().expect("the lock") = reply;
    }

    /// Answer the next requests with `replies`, one each, then as before.
    pub fn answer_next(&self, replies: impl IntoIterator<Item = Reply>) {
        *self.shared.next.lock().expect("the lock") = replies.into_iter().collect();
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        self.shared.requests.lock().expect("the lock").clone()
    }

    /// Waits until `found` finds what it looks for in the requests so far, checking again
    /// on each arrival, for at most [`PATIENCE`]; `None` if it never did.
    pub async fn until<T>(&self, mut found: impl FnMut(&[Request]) -> Option<T>) -> Option<T> {
        let mut arrivals = self.shared.arrivals.subscribe();
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            arrivals.borrow_and_update();
            if let Some(value) = found(&self.requests()) {
                return Some(value);
            }
            match tokio::time::timeout_at(deadline, arrivals.changed()).await {
                Ok(changed) => changed.expect("the receiver outlives its waiters"),
                Err(_) => return None,
            }
        }
    }

    /// Waits until at least `n` requests have arrived and returns them all.
    pub async fn wait_for(&self, n: usize) -> Vec<Request> {
        let all = self
            .until(|requests| (requests.len() >= n).then(|| requests.to_vec()))
            .await;
        all.unwrap_or_else(|| {
            panic!(
                "expected {n} requests at {}, got {}",
                self.url,
                self.requests().len()
            )
        })
    }
}

async fn record(request: HttpRequest, body: Bytes, shared: web::Data<Shared>) -> HttpResponse {
    let headers = request
        .headers()
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or_default().to_owned()))
        .collect();
    let mut request = Request {
        headers,
        body,
        at: Instant::now(),
    };
    let reply = shared
        .refuse
        .as_ref()
        .and_then(|refuse| refuse(&request))
        .unwrap_or_else(|| shared.next_reply());
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    request.at = Instant::now();
    shared.requests.lock().expect("the lock").push(request);
    shared.arrivals.send_modify(|n| *n += 1);
    let mut response =
        HttpResponse::build(StatusCode::from_u16(reply.status).expect("a valid status"));
    for (name, value) in reply.headers {
        response.insert_header((name, value));
    }
    response.body(reply.body)
}

impl Shared {
    fn next_reply(&self) -> Reply {
        let next = self.next.lock().expect("the lock").pop_front();
        next.unwrap_or_else(|| self.otherwise.lock().expect("the lock").clone())
    }
}
