//! A keep-alive HTTP/1.1 connection owned by one worker.
//!
//! Each worker drives exactly one connection, so `--connections C` means C sockets and at most
//! C requests in flight, with no pool in between whose queueing would hide in the numbers.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{bail, Context};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{HeaderValue, CONTENT_TYPE, HOST};
use hyper::{Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::bodies::SignedBody;

/// Where requests go: the resolved socket address plus what goes on the request line.
#[derive(Clone, Debug)]
pub struct Target {
    addr: SocketAddr,
    host: HeaderValue,
    path: Uri,
}

impl Target {
    /// Accepts `http://host:port/path`; the host is resolved once, up front.
    pub async fn parse(url: &str) -> anyhow::Result<Self> {
        let uri: Uri = url
            .parse()
            .with_context(|| format!("invalid URL {url:?}"))?;
        if uri.scheme_str() != Some("http") {
            bail!("only http:// URLs are supported, got {url:?}");
        }
        let authority = uri
            .authority()
            .with_context(|| format!("URL {url:?} has no host"))?;
        let port = authority.port_u16().unwrap_or(80);
        let addr = tokio::net::lookup_host((authority.host(), port))
            .await
            .with_context(|| format!("resolving {}", authority.host()))?
            .next()
            .with_context(|| format!("{} resolves to no address", authority.host()))?;
        let path = uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .parse()
            .context("URL path")?;
        Ok(Self {
            addr,
            host: HeaderValue::from_str(authority.as_str()).context("URL authority")?,
            path,
        })
    }
}

/// How one request ended.
#[derive(Debug)]
pub enum Outcome {
    Response(StatusCode),
    Timeout,
    Error(anyhow::Error),
}

/// No answer came within the connection's timeout.
#[derive(Debug)]
pub struct TimedOut(pub Duration);

impl std::fmt::Display for TimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "no answer within {:?}", self.0)
    }
}

impl std::error::Error for TimedOut {}

/// One connection, opened lazily and re-opened after the server closes it or it fails.
pub struct Connection {
    target: Target,
    timeout: Duration,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Connection {
    pub fn new(target: Target, timeout: Duration) -> Self {
        Self {
            target,
            timeout,
            sender: None,
        }
    }

    /// Sends one signed webhook and reads the whole response; the timeout covers connecting,
    /// sending and reading.
    pub async fn post(&mut self, body: &SignedBody) -> Outcome {
        match tokio::time::timeout(self.timeout, self.exchange(body)).await {
            Ok(Ok((status, _))) => Outcome::Response(status),
            Ok(Err(error)) => {
                self.sender = None;
                Outcome::Error(error)
            }
            Err(_) => {
                // The request may still be on the wire: never reuse this connection.
                self.sender = None;
                Outcome::Timeout
            }
        }
    }

    /// Sends one signed webhook and returns the answer's status and body, within the timeout
    /// (past it, the error is a [`TimedOut`]).
    pub async fn post_reading(&mut self, body: &SignedBody) -> anyhow::Result<(StatusCode, Bytes)> {
        let answer = tokio::time::timeout(self.timeout, self.exchange(body)).await;
        if !matches!(answer, Ok(Ok(_))) {
            self.sender = None;
        }
        answer.map_err(|_| anyhow::Error::new(TimedOut(self.timeout)))?
    }

    async fn exchange(&mut self, body: &SignedBody) -> anyhow::Result<(StatusCode, Bytes)> {
        let mut sender = match self.sender.take() {
            Some(sender) => sender,
            None => self.connect().await?,
        };
        // A kept-alive connection the server has closed in the meantime is replaced.
        if sender.ready().await.is_err() {
            sender = self.connect().await?;
        }
        let request = Request::post(self.target.path.clone())
            .header(HOST, self.target.host.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header("x-hub-signature-256", body.signature.clone())
            .body(Full::new(body.body.clone()))
            .context("building request")?;
        let response = sender.send_request(request).await.context("sending")?;
        let status = response.status();
        // Read the body whole, so the connection can carry the next request.
        let answer = response
            .into_body()
            .collect()
            .await
            .context("reading response body")?
            .to_bytes();
        self.sender = Some(sender);
        Ok((status, answer))
    }

    async fn connect(&self) -> anyhow::Result<SendRequest<Full<Bytes>>> {
        let stream = TcpStream::connect(self.target.addr)
            .await
            .with_context(|| format!("connecting to {}", self.target.addr))?;
        stream.set_nodelay(true).context("setting TCP_NODELAY")?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .context("HTTP/1.1 handshake")?;
        // Errors on the connection also surface through `send_request`, so they are not lost.
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(sender)
    }
}
