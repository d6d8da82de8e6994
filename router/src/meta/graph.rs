//! The Graph API client: call actions, permission requests, calling settings and
//! permission checks. The access token stays here; nothing that leaves the router carries it.

use std::net::IpAddr;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::Serialize;
use switchboard_protocol::graph::{
    CallAction, CallPermissionsResponse, CallRequest, ConnectResponse, ErrorEnvelope,
    MessageRequest, MessageResponse, Settings, SuccessResponse,
};
use switchboard_protocol::{CallId, UserRef};

/// Attempts for requests that are safe to repeat.
const SAFE_ATTEMPTS: u32 = 3;
const RETRY_PAUSE: Duration = Duration::from_millis(250);

/// The most of an answer that is read. Meta's answers are a few hundred bytes; anything
/// near this is not Meta, and reading it whole could take the router's memory.
pub const MAX_ANSWER_BYTES: usize = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    /// Meta answered with its error envelope.
    #[error("Meta refused ({code}): {message}")]
    Meta {
        status: u16,
        code: i64,
        message: String,
        details: Option<String>,
    },
    #[error("Meta did not answer within {0:?}")]
    Timeout(Duration),
    #[error("cannot reach Meta: {0}")]
    Transport(String),
    #[error("Meta's answer was not understood (HTTP {status}): {reason}")]
    Unexpected { status: u16, reason: String },
    /// A redirect: never followed, since it would carry the access token elsewhere.
    #[error("Meta's address answered with a redirect (HTTP {status}), which is not followed")]
    Redirect { status: u16 },
    #[error("Meta's answer (HTTP {status}) is larger than {limit} bytes; it was not read")]
    TooLarge { status: u16, limit: usize },
}

impl GraphError {
    pub fn meta_code(&self) -> Option<i64> {
        match self {
            GraphError::Meta { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Worth another try: no answer, or Meta's own failure.
    fn is_transient(&self) -> bool {
        match self {
            GraphError::Timeout(_) | GraphError::Transport(_) => true,
            GraphError::Meta { status, .. } | GraphError::Unexpected { status, .. } => {
                *status >= 500
            }
            GraphError::Redirect { .. } | GraphError::TooLarge { .. } => false,
        }
    }
}

#[derive(Clone)]
pub struct GraphClient {
    http: reqwest::Client,
    base: reqwest::Url,
    version: String,
    phone_number_id: String,
    token: SecretString,
    timeout: Duration,
    max_answer_bytes: usize,
}

impl std::fmt::Debug for GraphClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphClient")
            .field("base", &self.base.as_str())
            .field("version", &self.version)
            .field("phone_number_id", &self.phone_number_id)
            .finish_non_exhaustive()
    }
}

/// Whether a request may be sent again after a failure that left its fate unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Repeat {
    Safe,
    Never,
}

/// Whether `base` may carry the access token: https, or plain http to this machine only
/// (wa-sim on 127.0.0.1). The reason when it may not.
pub fn check_base(base: &reqwest::Url) -> Result<(), String> {
    match base.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(base) => Ok(()),
        "http" => Err(format!(
            "`{base}` would send the access token in clear: use https (plain http is \
             allowed only to a loopback host, such as wa-sim on 127.0.0.1)"
        )),
        other => Err(format!("`{other}:` is not https")),
    }
}

fn is_loopback(url: &reqwest::Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    // An IPv6 host keeps its brackets here.
    let host = host.trim_start_matches('[').trim_end_matches(']');
    match host.parse::<IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => host.eq_ignore_ascii_case("localhost"),
    }
}

impl GraphClient {
    /// A client for `base`, which must pass [`check_base`]. Redirects are never followed
    /// (one would carry the token wherever it points), and answers are read up to
    /// [`MAX_ANSWER_BYTES`].
    pub fn new(
        base: reqwest::Url,
        version: String,
        phone_number_id: String,
        token: SecretString,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        check_base(&base).map_err(|reason| anyhow::anyhow!("the Graph API base {reason}"))?;
        let http = reqwest::Client::builder()
            .user_agent(concat!("switchboard/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Self {
            http,
            base,
            version,
            phone_number_id,
            token,
            timeout,
            max_answer_bytes: MAX_ANSWER_BYTES,
        })
    }

    /// The same client reading answers up to `bytes` instead of [`MAX_ANSWER_BYTES`].
    #[must_use]
    /// The business number this client acts for.
    pub fn phone_number_id(&self) -> &str {
        &self.phone_number_id
    }

    pub fn with_answer_limit(mut self, bytes: usize) -> Self {
        self.max_answer_bytes = bytes;
        self
    }

    fn url(&self, path: &str) -> Result<reqwest::Url, GraphError> {
        let base = self.base.as_str().trim_end_matches('/');
        let text = format!("{base}/{}/{}/{path}", self.version, self.phone_number_id);
        reqwest::Url::parse(&text).map_err(|e| GraphError::Transport(e.to_string()))
    }

    /// `connect`: places a call and returns Meta's call id. Never repeated: a second
    /// connect would ring the user twice.
    #[tracing::instrument(skip_all, fields(to = %to))]
    pub async fn connect(&self, to: &UserRef, offer: String) -> Result<CallId, GraphError> {
        let (phone, bsuid) = UserRef::to_and_recipient(to);
        let request = CallRequest::connect(phone, bsuid, offer);
        let response: ConnectResponse = self
            .send(Method::POST, "calls", Some(&request), Repeat::Never)
            .await?;
        response
            .calls
            .into_iter()
            .next()
            .map(|call| CallId::from(call.id))
            .ok_or_else(|| GraphError::Unexpected {
                status: 200,
                reason: "no call id in the connect answer".into(),
            })
    }

    /// `pre_accept` or `accept` with our SDP answer. Repeating the same answer for the same
    /// call is harmless, so these are retried.
    #[tracing::instrument(skip(self, answer))]
    pub async fn answer(
        &self,
        action: CallAction,
        call_id: &CallId,
        answer: &str,
    ) -> Result<(), GraphError> {
        let request = CallRequest::answer(action, call_id.clone(), answer.to_owned());
        let _: SuccessResponse = self
            .send(Method::POST, "calls", Some(&request), Repeat::Safe)
            .await?;
        Ok(())
    }

    /// `reject` or `terminate`.
    #[tracing::instrument(skip(self))]
    pub async fn end(&self, action: CallAction, call_id: &CallId) -> Result<(), GraphError> {
        let request = CallRequest::end(action, call_id.clone());
        let _: SuccessResponse = self
            .send(Method::POST, "calls", Some(&request), Repeat::Safe)
            .await?;
        Ok(())
    }

    /// Sends a call-permission request (interactive or template); returns the message id.
    /// Never repeated: each one counts against Meta's limits.
    #[tracing::instrument(skip_all)]
    pub async fn send_message(&self, request: &MessageRequest) -> Result<String, GraphError> {
        let response: MessageResponse = self
            .send(Method::POST, "messages", Some(request), Repeat::Never)
            .await?;
        response
            .messages
            .into_iter()
            .next()
            .map(|m| m.id)
            .ok_or_else(|| GraphError::Unexpected {
                status: 200,
                reason: "no message id in the answer".into(),
            })
    }

    /// `GET call_permissions` for one user.
    #[tracing::instrument(skip(self))]
    pub async fn call_permissions(
        &self,
        user: &UserRef,
    ) -> Result<CallPermissionsResponse, GraphError> {
        let mut url = self.url("call_permissions")?;
        match user {
            UserRef::Phone(phone) => url.query_pairs_mut().append_pair("user_wa_id", phone),
            UserRef::Bsuid(id) => url.query_pairs_mut().append_pair("recipient", id),
        };
        self.send_to(Method::GET, url, None::<&()>, Repeat::Safe)
            .await
    }

    #[tracing::instrument(skip(self))]
    pub async fn settings(&self) -> Result<Settings, GraphError> {
        self.send(Method::GET, "settings", None::<&()>, Repeat::Safe)
            .await
    }

    #[tracing::instrument(skip(self))]
    pub async fn update_settings(&self, settings: &Settings) -> Result<(), GraphError> {
        let _: SuccessResponse = self
            .send(Method::POST, "settings", Some(settings), Repeat::Safe)
            .await?;
        Ok(())
    }

    async fn send<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
        repeat: Repeat,
    ) -> Result<T, GraphError> {
        let url = self.url(path)?;
        self.send_to(method, url, body, repeat).await
    }

    async fn send_to<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        url: reqwest::Url,
        body: Option<&B>,
        repeat: Repeat,
    ) -> Result<T, GraphError> {
        let attempts = match repeat {
            Repeat::Safe => SAFE_ATTEMPTS,
            Repeat::Never => 1,
        };
        let mut attempt = 1;
        loop {
            match self.attempt(method.clone(), url.clone(), body).await {
                Err(e) if e.is_transient() && attempt < attempts => {
                    tracing::warn!(error = %e, attempt, "Graph request failed; trying again");
                    tokio::time::sleep(RETRY_PAUSE * attempt).await;
                    attempt += 1;
                }
                result => return result,
            }
        }
    }

    async fn attempt<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        url: reqwest::Url,
        body: Option<&B>,
    ) -> Result<T, GraphError> {
        let mut request = self
            .http
            .request(method, url)
            .bearer_auth(self.token.expose_secret())
            .timeout(self.timeout);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| self.transport(&e))?;
        let status = response.status();
        if status.is_redirection() {
            tracing::warn!(
                status = status.as_u16(),
                location = ?response.headers().get(reqwest::header::LOCATION),
                "the Graph API answered with a redirect; not followed"
            );
            return Err(GraphError::Redirect {
                status: status.as_u16(),
            });
        }
        let bytes = self.read_bounded(response).await?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|e| GraphError::Unexpected {
                status: status.as_u16(),
                reason: e.to_string(),
            });
        }
        Err(refusal(status, &bytes))
    }

    fn transport(&self, e: &reqwest::Error) -> GraphError {
        if e.is_timeout() {
            GraphError::Timeout(self.timeout)
        } else {
            GraphError::Transport(e.to_string())
        }
    }

    /// The answer's body, refused as soon as it is known to pass the limit: from its
    /// `Content-Length`, or while it streams in.
    async fn read_bounded(&self, mut response: reqwest::Response) -> Result<Vec<u8>, GraphError> {
        let status = response.status().as_u16();
        let limit = self.max_answer_bytes;
        let too_large = GraphError::TooLarge { status, limit };
        let announced = response.content_length().unwrap_or(0);
        if usize::try_from(announced).map_or(true, |n| n > limit) {
            return Err(too_large);
        }
        let mut body = Vec::with_capacity(usize::try_from(announced).unwrap_or(0));
        while let Some(chunk) = response.chunk().await.map_err(|e| self.transport(&e))? {
            if body.len() + chunk.len() > limit {
                return Err(too_large);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

fn refusal(status: StatusCode, bytes: &[u8]) -> GraphError {
    match serde_json::from_slice::<ErrorEnvelope>(bytes) {
        Ok(envelope) => GraphError::Meta {
            status: status.as_u16(),
            code: envelope.error.code,
            message: envelope.error.message,
            details: envelope.error.error_data.map(|d| d.details),
        },
        Err(_) => GraphError::Unexpected {
            status: status.as_u16(),
            reason: "the body is not Meta's error envelope".into(),
        },
    }
}
