//! Agent WebSockets: `GET /ws` opened with `Authorization: Bearer <token>`, as the dialer's.
//!
//! The router sends JSON text frames tagged by `type` (DESIGN §6), `hello` first. Frames are
//! read with [`string_field`], a scan for one top-level string field, rather than a full
//! JSON parse: a `call.incoming` carries a ~1.7 KB SDP, and 50 agents at 1000 calls/s would
//! otherwise spend the load generator's CPU, which it shares with the router, on parsing it.

use std::time::Duration;

use anyhow::{bail, Context};
use futures_util::{StreamExt, TryStreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Which token each socket presents.
#[derive(Clone, Debug)]
pub enum Tokens {
    /// Every socket the same token (the router allows one agent several sockets).
    One(String),
    /// Socket `i` presents `{prefix}{i mod count}`: one agent per token.
    Numbered { prefix: String, count: usize },
}

impl Tokens {
    pub fn for_socket(&self, i: usize) -> String {
        match self {
            Self::One(token) => token.clone(),
            Self::Numbered { prefix, count } => format!("{prefix}{}", i % (*count).max(1)),
        }
    }
}

/// The value of the first `"key":"value"` in a compact JSON object, for values without
/// escapes (ids, event types, agent names made by scripts); `None` if absent or escaped.
///
/// Inside a JSON string every `"` is escaped as `\"`, so `"key":"` can only match an
/// unescaped key; serde puts an enum's `type` tag first, ahead of any nested object.
pub fn string_field<'a>(json: &'a str, key: &str) -> Option<&'a str> {
    let mut pattern = String::with_capacity(key.len() + 4);
    pattern.push('"');
    pattern.push_str(key);
    pattern.push_str("\":\"");
    let start = json.find(&pattern)? + pattern.len();
    let len = json[start..].find('"')?;
    let value = &json[start..start + len];
    (!value.contains('\\')).then_some(value)
}

/// Opens `url` as `token` and waits, within `timeout`, for the router's `hello`; returns the
/// socket and the agent name the hello gave.
pub async fn open(url: &str, token: &str, timeout: Duration) -> anyhow::Result<(Socket, String)> {
    let mut request = url
        .into_client_request()
        .with_context(|| format!("invalid WebSocket URL {url:?}"))?;
    request.headers_mut().insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {token}")).context("token in a header")?,
    );
    let opened = tokio::time::timeout(timeout, async {
        // Nagle off: the socket carries small frames (pongs, the close) only.
        let (mut socket, _) =
            match tokio_tungstenite::connect_async_with_config(request, None, true).await {
                Ok(opened) => opened,
                Err(WsError::Http(response)) => {
                    let body = response
                        .body()
                        .as_deref()
                        .map(String::from_utf8_lossy)
                        .unwrap_or_default();
                    bail!("{url} refused the socket: {} {body}", response.status());
                }
                Err(e) => return Err(anyhow::Error::new(e).context(format!("connecting to {url}"))),
            };
        loop {
            match socket.next().await {
                Some(Ok(Message::Text(text))) => {
                    return match (string_field(&text, "type"), string_field(&text, "agent")) {
                        (Some("hello"), Some(agent)) => Ok((socket, agent.to_owned())),
                        _ => bail!("expected a hello first, got {text}"),
                    };
                }
                Some(Ok(Message::Close(frame))) => bail!("the router closed the socket: {frame:?}"),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(anyhow::Error::new(e).context("reading the hello")),
                None => bail!("the socket ended before the hello"),
            }
        }
    })
    .await;
    opened.unwrap_or_else(|_| bail!("no hello on {url} within {timeout:?}"))
}

/// Opens `count` sockets, at most `parallel` at a time, each waiting for its hello; fails on
/// the first that cannot be opened. Socket `i` presents `tokens.for_socket(i)`.
pub async fn open_many(
    url: &str,
    tokens: &Tokens,
    count: usize,
    parallel: usize,
    timeout: Duration,
) -> anyhow::Result<Vec<(Socket, String)>> {
    futures_util::stream::iter(0..count)
        .map(|i| {
            let token = tokens.for_socket(i);
            async move {
                open(url, &token, timeout)
                    .await
                    .with_context(|| format!("socket {i} of {count}"))
            }
        })
        .buffered(parallel.max(1))
        .try_collect()
        .await
}

/// Starts the close handshake and waits (at most `timeout`) for the router to finish it.
pub async fn close(mut socket: Socket, timeout: Duration) {
    let _ = tokio::time::timeout(timeout, async {
        if socket.close(None).await.is_ok() {
            while let Some(Ok(_)) = socket.next().await {}
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// A frame as the router writes it: `serde_json::to_string` of
    /// `switchboard_protocol::ws::ServerEvent::CallIncoming`.
    const INCOMING: &str = r#"{"type":"call.incoming","call_id":"wacid.BENCH0000000100000000002A00","user":{"user_id":"US.10293847561029384756","wa_id":"12125550100","name":"Asha \"type\":\"x\" Verma"},"to":"15550783881","sdp":"v=0\r\na=group:BUNDLE audio\r\n"}"#;

    #[test]
    fn reads_the_tag_and_the_call_id_of_a_router_frame() {
        assert_eq!(string_field(INCOMING, "type"), Some("call.incoming"));
        assert_eq!(
            string_field(INCOMING, "call_id"),
            Some("wacid.BENCH0000000100000000002A00")
        );
        assert_eq!(string_field(INCOMING, "to"), Some("15550783881"));
        assert_eq!(
            string_field(r#"{"type":"hello","agent":"bench-agent-7"}"#, "agent"),
            Some("bench-agent-7")
        );
    }

    #[test]
    fn escaped_quotes_inside_strings_are_not_fields() {
        let frame = r#"{"type":"call.claimed","agent":"a\"call_id\":\"wacid.X"}"#;
        assert_eq!(string_field(frame, "call_id"), None);
        assert_eq!(string_field(r#"{"type":"a\"b"}"#, "type"), None);
        assert_eq!(string_field(r#"{"n":1}"#, "type"), None);
    }

    #[test]
    fn numbered_tokens_cycle() {
        let tokens = Tokens::Numbered {
            prefix: "t-".into(),
            count: 3,
        };
        let made: Vec<String> = (0..5).map(|i| tokens.for_socket(i)).collect();
        assert_eq!(made, ["t-0", "t-1", "t-2", "t-0", "t-1"]);
        assert_eq!(Tokens::One("x".into()).for_socket(9), "x");
    }
}
