//! An agent's WebSocket to the router (`/ws`), read one call event at a time.

use futures_util::{SinkExt, StreamExt};
use switchboard_protocol::ws::ServerEvent;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderName;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::wait::PATIENCE;

pub struct AgentSocket {
    stream: WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>,
}

/// The router's answer to a WebSocket upgrade it refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub status: u16,
    pub body: String,
}

impl AgentSocket {
    /// Opens `/ws` of the router at `router` (`http://…`) as `token`, sending `origin` if
    /// given; the HTTP status if the router refuses.
    pub async fn open(router: &str, token: &str, origin: Option<&str>) -> Result<Self, u16> {
        let authorization = format!("Bearer {token}");
        let mut headers = vec![("authorization", authorization.as_str())];
        headers.extend(origin.map(|origin| ("origin", origin)));
        Self::open_with(router, &headers)
            .await
            .map_err(|refused| refused.status)
    }

    /// Opens `/ws` with the session cookie's value (as a browser would, with the cookie and
    /// its page's `origin`, if given); the router's refusal if it refuses.
    pub async fn open_with_cookie(
        router: &str,
        session: &str,
        origin: Option<&str>,
    ) -> Result<Self, Refused> {
        let cookie = format!("switchboard_session={session}");
        let mut headers = vec![("cookie", cookie.as_str())];
        headers.extend(origin.map(|origin| ("origin", origin)));
        Self::open_with(router, &headers).await
    }

    /// Opens `/ws` with these request headers; the router's refusal if it refuses.
    pub async fn open_with(router: &str, headers: &[(&str, &str)]) -> Result<Self, Refused> {
        let url = format!("{}/ws", router.replace("http://", "ws://"));
        let mut request = url.into_client_request().expect("a WebSocket request");
        for (name, value) in headers {
            let name: HeaderName = name.parse().expect("a header name");
            request
                .headers_mut()
                .insert(name, value.parse().expect("a header value"));
        }
        match tokio_tungstenite::connect_async(request).await {
            Ok((stream, _)) => Ok(Self { stream }),
            Err(Error::Http(response)) => Err(Refused {
                status: response.status().as_u16(),
                body: response
                    .body()
                    .as_deref()
                    .map(|body| String::from_utf8_lossy(body).into_owned())
                    .unwrap_or_default(),
            }),
            Err(e) => panic!("websocket failed: {e}"),
        }
    }

    /// Sends one message as it is (a ping, a text, a frame too large).
    pub async fn send(&mut self, message: Message) {
        self.stream
            .send(message)
            .await
            .expect("the message is sent");
    }

    /// The payload of the next pong, within [`PATIENCE`] (other messages skipped).
    pub async fn pong(&mut self) -> Vec<u8> {
        let pong = tokio::time::timeout(PATIENCE, async {
            loop {
                match self.stream.next().await {
                    Some(Ok(Message::Pong(payload))) => return payload.to_vec(),
                    Some(Ok(_)) => continue,
                    other => panic!("the socket ended before a pong: {other:?}"),
                }
            }
        })
        .await;
        pong.expect("a pong within the patience")
    }

    /// The next call event (pings and pongs skipped), within [`PATIENCE`].
    pub async fn next(&mut self) -> ServerEvent {
        let event = tokio::time::timeout(PATIENCE, async {
            loop {
                match self.stream.next().await {
                    Some(Ok(Message::Text(text))) => {
                        return serde_json::from_str::<ServerEvent>(&text).expect("a server event");
                    }
                    Some(Ok(_)) => continue,
                    other => panic!("the socket ended: {other:?}"),
                }
            }
        })
        .await;
        event.expect("an event within the patience")
    }

    /// Skips events until one matches, within [`PATIENCE`].
    pub async fn until(&mut self, wanted: impl Fn(&ServerEvent) -> bool) -> ServerEvent {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let event = tokio::time::timeout_at(deadline, self.next())
                .await
                .expect("the awaited event arrives");
            if wanted(&event) {
                return event;
            }
        }
    }

    /// Skips messages until the router closes the socket, within [`PATIENCE`]; the close
    /// frame it sent. A socket that ends without one fails the test.
    pub async fn close_frame(&mut self) -> Option<CloseFrame> {
        let close = tokio::time::timeout(PATIENCE, async {
            loop {
                match self.stream.next().await {
                    Some(Ok(Message::Close(frame))) => return frame,
                    Some(Ok(_)) => continue,
                    other => panic!("the socket ended without a close frame: {other:?}"),
                }
            }
        })
        .await;
        close.expect("a close frame")
    }
}
