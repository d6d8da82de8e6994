//! A stand-in for the router in tests: webhooks in, `call.incoming` out on every agent socket.
#![allow(clippy::unwrap_used)]

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::SinkExt;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::handshake::server::{
    Request as WsRequest, Response as WsResponse,
};
use tokio_tungstenite::tungstenite::Message;

use crate::bodies::parse_id;

/// Which pushes the fake router leaves out: agent `agent` misses every call whose request
/// number is a multiple of `every`.
#[derive(Clone)]
pub struct LeaveOut {
    pub agent: String,
    pub every: u64,
}

/// A stand-in for the router: each webhook's call id becomes a `call.incoming` broadcast
/// to every socket, whose hello names the agent by its token. After the hello, each socket
/// also gets a call from another run and a `call.ended`, as a router replaying live calls
/// might send.
pub async fn fake_router(leave_out: Option<LeaveOut>) -> (String, String) {
    let (calls, _) = broadcast::channel::<(u64, String)>(100_000);
    let ws = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ws_url = format!("ws://{}/ws", ws.local_addr().unwrap());
    let subscribe = calls.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = ws.accept().await {
            let mut receiver = subscribe.subscribe();
            let leave_out = leave_out.clone();
            tokio::spawn(async move {
                let token = Arc::new(std::sync::Mutex::new(String::new()));
                let seen = token.clone();
                // The signature is tungstenite's, large error type and all.
                #[allow(clippy::result_large_err)]
                let callback = move |request: &WsRequest, response: WsResponse| {
                    let bearer = request.headers()["authorization"].to_str().unwrap();
                    *seen.lock().unwrap() = bearer.trim_start_matches("Bearer ").to_owned();
                    Ok(response)
                };
                let mut socket = tokio_tungstenite::accept_hdr_async(stream, callback)
                    .await
                    .unwrap();
                let agent = token.lock().unwrap().clone();
                for frame in [
                    format!(r#"{{"type":"hello","agent":"{agent}"}}"#),
                    r#"{"type":"call.incoming","call_id":"wacid.HBgLMTIx","to":"1"}"#.into(),
                    r#"{"type":"call.ended","call_id":"wacid.HBgLMTIx","status":"missed"}"#.into(),
                ] {
                    socket.send(Message::text(frame)).await.unwrap();
                }
                while let Ok((n, frame)) = receiver.recv().await {
                    let left_out = leave_out
                        .as_ref()
                        .is_some_and(|d| d.agent == agent && n % d.every == 0);
                    if !left_out && socket.send(Message::text(frame)).await.is_err() {
                        return;
                    }
                }
            });
        }
    });

    let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let webhook_url = format!("http://{}/webhook", http.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((stream, _)) = http.accept().await {
            let calls = calls.clone();
            let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                let calls = calls.clone();
                async move {
                    let body = request.into_body().collect().await.unwrap().to_bytes();
                    let body = std::str::from_utf8(&body).unwrap();
                    let at = body.find("wacid.").unwrap();
                    let id = &body[at..at + body[at..].find('"').unwrap()];
                    let (_, n) = parse_id(id).unwrap();
                    let frame = format!(
                        r#"{{"type":"call.incoming","call_id":"{id}","user":{{"user_id":"US.1"}},"to":"15550783881","sdp":"v=0\r\n"}}"#
                    );
                    let _ = calls.send((n, frame));
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::new())))
                }
            });
            tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(stream), service));
        }
    });
    (webhook_url, ws_url)
}
