//! What an agent's browser sends on its WebSocket, read the way `agents/socket.rs` reads
//! it: an upgraded `/ws` request handed to `actix_ws`, its message stream limited to the
//! configured `server.websocket_max_frame_bytes` (from `config/switchboard.toml`).
//!
//! Input: the first byte sets how the rest is cut into reads (1 to 64 bytes each, with
//! the stream pending between them, as a network delivers it); the rest is what the
//! client sends, from the first frame.
//!
//! What must hold, besides no panic: no message the socket loop sees carries more than the
//! frame limit (its Ping is answered with the same bytes); a text message is UTF-8; the
//! stream ends after the client's bytes end or at the first error, which is where the
//! socket closes.

#![no_main]

use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};

use actix_web::dev::Payload;
use actix_web::error::PayloadError;
use actix_web::test::TestRequest;
use actix_web::{web, FromRequest};
use actix_ws::{Item, Message};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use libfuzzer_sys::fuzz_target;
use switchboard::config::Settings;

/// The frame limit `make run` serves agents with.
fn max_frame_bytes() -> usize {
    static LIMIT: OnceLock<usize> = OnceLock::new();
    *LIMIT.get_or_init(|| {
        let example = include_str!("../../config/switchboard.toml");
        let settings = Settings::from_toml(example).expect("the example config loads");
        settings.server.websocket_limits.max_frame_bytes
    })
}

/// The client's bytes in reads of `step`, the stream pending (and woken) before each.
struct Trickle {
    data: Bytes,
    step: usize,
    ready: bool,
}

impl Stream for Trickle {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.data.is_empty() {
            return Poll::Ready(None);
        }
        if !self.ready {
            self.ready = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        self.ready = false;
        let n = self.step.min(self.data.len());
        let chunk = self.data.split_to(n);
        Poll::Ready(Some(Ok(chunk)))
    }
}

async fn serve(data: &[u8]) {
    let Some((&first, sent)) = data.split_first() else {
        return;
    };
    let req = TestRequest::get()
        .uri("/ws")
        .insert_header(("upgrade", "websocket"))
        .insert_header(("connection", "upgrade"))
        .insert_header(("sec-websocket-version", "13"))
        .insert_header(("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="))
        .to_http_request();
    let trickle = Trickle {
        data: Bytes::copy_from_slice(sent),
        step: usize::from(first % 64) + 1,
        ready: false,
    };
    let stream: Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>> = Box::pin(trickle);
    let mut payload = Payload::Stream { payload: stream };
    let body = web::Payload::from_request(&req, &mut payload)
        .await
        .expect("a payload");
    let (_response, _session, stream) = actix_ws::handle(&req, body).expect("a handshake");
    let limit = max_frame_bytes();
    let mut stream = stream.max_frame_size(limit);
    let mut seen = 0usize;
    while let Some(message) = stream.next().await {
        let Ok(message) = message else {
            // The socket loop closes here (1009 for an oversize frame, 1002 otherwise).
            return;
        };
        seen += 1;
        assert!(seen <= sent.len(), "more messages than bytes sent");
        let carried = match &message {
            Message::Text(text) => text.len(),
            Message::Binary(bytes) | Message::Ping(bytes) | Message::Pong(bytes) => bytes.len(),
            Message::Continuation(
                Item::FirstText(bytes)
                | Item::FirstBinary(bytes)
                | Item::Continue(bytes)
                | Item::Last(bytes),
            ) => bytes.len(),
            Message::Close(_) | Message::Nop => 0,
        };
        assert!(
            carried <= limit,
            "a {carried}-byte message past the {limit}-byte limit"
        );
        if let Message::Close(_) = message {
            return;
        }
    }
}

fuzz_target!(|data: &[u8]| {
    futures::executor::block_on(serve(data));
});
