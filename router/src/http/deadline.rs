//! The deadline every request body must arrive within (`server.body_timeout`). A client
//! that sends part of a body and stalls, or trickles it, is answered `408` once the deadline
//! passes, and its connection is closed: it cannot hold a connection and a buffer for ever.
//! WebSocket upgrades are left alone: their "body" is the socket's frames.

use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::{BodySize, EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage, HttpResponse};
use bytes::Bytes;
use futures::Stream;
use serde_json::json;
use tokio::time::Sleep;

/// Middleware (through `actix_web::middleware::from_fn`): the request's body, if it has
/// one, must arrive within `limit` of its head; else the answer is `408`.
pub async fn enforce<B: MessageBody>(
    limit: Duration,
    mut req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, Error> {
    let payload = req.take_payload();
    if req.head().upgrade() || matches!(payload, Payload::None) {
        req.set_payload(payload);
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body);
    }
    let expired = Rc::new(RefCell::new(None));
    let bounded = Deadline {
        inner: payload,
        timer: Box::pin(tokio::time::sleep(limit)),
        expired: expired.clone(),
        finished: false,
    };
    req.set_payload(Payload::Stream {
        payload: Box::pin(bounded),
    });
    let response = next.call(req).await?;
    let Some(unread) = expired.borrow_mut().take() else {
        return Ok(response.map_into_left_body());
    };
    // Whatever the handler made of its cut-off body, the client is told why. The unread
    // rest goes out inside the answer's body: while it is alive, actix closes the
    // connection once the answer is sent, where it would otherwise wait to drain a chunked
    // body that may never end.
    let answer = HttpResponse::RequestTimeout()
        .content_type("application/json")
        .body(Closing {
            answer: Some(timed_out_body(limit)),
            _unread: unread,
        });
    Ok(response.into_response(answer).map_into_right_body())
}

/// Whether a body read failed because its deadline passed.
pub fn is_deadline(error: &PayloadError) -> bool {
    matches!(error, PayloadError::Io(e) if e.kind() == io::ErrorKind::TimedOut)
}

/// The JSON error of a body too slow to arrive.
fn timed_out_body(limit: Duration) -> Bytes {
    let error = json!({"error": {
        "code": "request_timeout",
        "message": format!("the request body did not arrive within {} s", limit.as_secs_f64()),
    }});
    Bytes::from(error.to_string())
}

/// A `408`'s JSON body, holding the request's unread rest until it has been sent.
struct Closing {
    answer: Option<Bytes>,
    _unread: Payload,
}

impl MessageBody for Closing {
    type Error = std::convert::Infallible;

    fn size(&self) -> BodySize {
        BodySize::Sized(self.answer.as_ref().map_or(0, |b| b.len() as u64))
    }

    fn poll_next(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        Poll::Ready(self.answer.take().map(Ok))
    }
}

/// A body that ends in an error once its deadline passes, even while bytes still trickle in.
struct Deadline {
    inner: Payload,
    timer: Pin<Box<Sleep>>,
    /// Set when the deadline passes, to the body's unread rest.
    expired: Rc<RefCell<Option<Payload>>>,
    /// The whole body arrived in time: the deadline no longer applies.
    finished: bool,
}

impl Stream for Deadline {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.finished {
            return Poll::Ready(None);
        }
        // The timer first: a body sent a byte at a time is always ready with a little more.
        if self.timer.as_mut().poll(cx).is_ready() {
            self.finished = true;
            let unread = std::mem::replace(&mut self.inner, Payload::None);
            *self.expired.borrow_mut() = Some(unread);
            let error = io::Error::new(io::ErrorKind::TimedOut, "the body deadline passed");
            return Poll::Ready(Some(Err(PayloadError::Io(error))));
        }
        let next = Pin::new(&mut self.inner).poll_next(cx);
        if matches!(next, Poll::Ready(None)) {
            self.finished = true;
        }
        next
    }
}
