//! An agent's WebSocket to the router (`/ws`), read one call event at a time.

use futures_util::StreamExt;
use switchboard_protocol::ws::ServerEvent;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::wait::PATIENCE;

pub struct AgentSocket {
    stream: WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>,
}

impl AgentSocket {
    /// Opens `/ws` of the router at `router` (`http://…`) as `token`, sending `origin` if
    /// given; the HTTP status if the router refuses.
    pub async fn open(router: &str, token: &str, origin: Option<&str>) -> Result<Self, u16> {
        let url = format!("{}/ws", router.replace("http://", "ws://"));
        let mut request = url.into_client_request().expect("a WebSocket request");
        let headers = request.headers_mut();
        headers.insert(
            "authorization",
            format!("Bearer {token}").parse().expect("a header value"),
        );
        if let Some(origin) = origin {
            headers.insert("origin", origin.parse().expect("a header value"));
        }
        match tokio_tungstenite::connect_async(request).await {
            Ok((stream, _)) => Ok(Self { stream }),
            Err(Error::Http(response)) => Err(response.status().as_u16()),
            Err(e) => panic!("websocket failed: {e}"),
        }
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
