//! The soak's consumer: a real HTTP server on loopback that takes the router's forwarded
//! events and is unavailable in given windows of the run, answering `503` to every POST in
//! them (the script also stops the whole process in other windows: then nothing listens).
//!
//! Every POST is appended to a log before it is answered, so a consumer stopped at any
//! moment never answers 200 for an event the log lacks, and a restarted one appends to the
//! same log. Lines: `unix ms <TAB> status answered <TAB> webhook-id <TAB> x-switchboard-event`.

use std::convert::Infallible;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::Path;
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
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// A window of the run, in seconds from its start: `[from, to)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub from: u64,
    pub to: u64,
}

impl std::str::FromStr for Window {
    type Err = String;

    /// `FROM:TO`, whole seconds.
    fn from_str(text: &str) -> Result<Self, String> {
        let (from, to) = text
            .split_once(':')
            .ok_or_else(|| format!("`{text}` is not FROM:TO"))?;
        let number = |s: &str| s.parse::<u64>().map_err(|e| format!("`{s}`: {e}"));
        let window = Self {
            from: number(from)?,
            to: number(to)?,
        };
        if window.from >= window.to {
            return Err(format!("`{text}` ends before it starts"));
        }
        Ok(window)
    }
}

pub struct FlapOptions {
    pub listen: SocketAddr,
    pub log: std::path::PathBuf,
    /// Unix time in ms the windows count from.
    pub epoch_ms: u64,
    /// When every POST is answered 503.
    pub unavailable: Vec<Window>,
}

struct State {
    log: Mutex<File>,
    epoch_ms: u64,
    unavailable: Vec<Window>,
    ok: AtomicU64,
    refused: AtomicU64,
}

impl State {
    fn status_at(&self, now_ms: u64) -> StatusCode {
        let second = now_ms.saturating_sub(self.epoch_ms) / 1000;
        let down = now_ms >= self.epoch_ms
            && self
                .unavailable
                .iter()
                .any(|w| (w.from..w.to).contains(&second));
        if down {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::OK
        }
    }
}

/// Serves until the process is stopped.
pub async fn run(options: FlapOptions) -> anyhow::Result<()> {
    let log = open_log(&options.log)?;
    let listener = TcpListener::bind(options.listen)
        .await
        .with_context(|| format!("binding {}", options.listen))?;
    // Scripts wait for this line.
    println!("listening on {}", listener.local_addr()?);
    let state = Arc::new(State {
        log: Mutex::new(log),
        epoch_ms: options.epoch_ms,
        unavailable: options.unavailable,
        ok: AtomicU64::new(0),
        refused: AtomicU64::new(0),
    });
    loop {
        let (stream, _) = listener.accept().await.context("accepting")?;
        // Best effort: a socket that refuses NODELAY still works, only slower.
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| handle(request, state.clone()));
            // A router killed mid-request is what the soak is about: nothing to report.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn open_log(path: &Path) -> anyhow::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))
}

async fn handle(
    request: Request<Incoming>,
    state: Arc<State>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if request.method() == Method::GET && request.uri().path() == "/stats" {
        let body = format!(
            "{{\"ok\":{},\"unavailable\":{}}}",
            state.ok.load(Ordering::Relaxed),
            state.refused.load(Ordering::Relaxed)
        );
        return Ok(reply(StatusCode::OK, body.into_bytes()));
    }
    if request.method() != Method::POST {
        return Ok(reply(StatusCode::METHOD_NOT_ALLOWED, Vec::new()));
    }
    let (parts, body) = request.into_parts();
    if body.collect().await.is_err() {
        return Ok(reply(StatusCode::BAD_REQUEST, Vec::new()));
    }
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-")
            .to_owned()
    };
    let now = unix_ms();
    let status = state.status_at(now);
    let line = format!(
        "{now}\t{}\t{}\t{}\n",
        status.as_u16(),
        header("webhook-id"),
        header("x-switchboard-event")
    );
    // Logged before the answer: a 200 the log lacks would look like a lost event.
    let logged = state
        .log
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .write_all(line.as_bytes());
    if logged.is_err() {
        // Better the router tries again than a 200 nobody can count.
        return Ok(reply(StatusCode::INTERNAL_SERVER_ERROR, Vec::new()));
    }
    let counter = if status == StatusCode::OK {
        &state.ok
    } else {
        &state.refused
    };
    counter.fetch_add(1, Ordering::Relaxed);
    Ok(reply(status, Vec::new()))
}

fn reply(status: StatusCode, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis()
        .try_into()
        .unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn windows_parse_and_refuse_nonsense() {
        assert_eq!(
            "45:75".parse::<Window>().unwrap(),
            Window { from: 45, to: 75 }
        );
        for bad in ["45", "75:45", "a:b", "5:5"] {
            assert!(bad.parse::<Window>().is_err(), "{bad}");
        }
    }

    #[test]
    fn posts_are_answered_503_inside_a_window_only() {
        let dir = std::env::temp_dir().join(format!("soak-flap-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let state = State {
            log: Mutex::new(open_log(&dir.join("log")).unwrap()),
            epoch_ms: 1_000_000,
            unavailable: vec![Window { from: 10, to: 20 }],
            ok: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        };
        assert_eq!(state.status_at(500_000), StatusCode::OK);
        assert_eq!(state.status_at(1_009_999), StatusCode::OK);
        assert_eq!(state.status_at(1_010_000), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(state.status_at(1_019_999), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(state.status_at(1_020_000), StatusCode::OK);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
