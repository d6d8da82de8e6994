//! Agents' WebSockets within their limits, through the real server: a cap per agent beside
//! the global one, a frame size limit and a message rate limit that close the socket with a
//! reason, and a send timeout that drops a socket whose client does not drain.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use switchboard::config::Settings;
use switchboard_protocol::ws::ServerEvent;
use switchboard_testkit::agent::{AgentSocket, Refused};
use switchboard_testkit::wait::{poll, PATIENCE};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{ADMIN_TOKEN, AGENT_TOKEN};
use crate::sessions::{answers_a_ping, spawn_with, toml};

async fn open(address: &str, token: &str) -> Result<AgentSocket, Refused> {
    let authorization = format!("Bearer {token}");
    let mut socket = AgentSocket::open_with(address, &[("authorization", &authorization)]).await?;
    assert!(matches!(socket.next().await, ServerEvent::Hello { .. }));
    Ok(socket)
}

#[tokio::test]
async fn an_agents_sixth_socket_is_refused_under_the_default_cap_of_five() {
    let app = spawn_with("").await;
    let mut sockets = Vec::new();
    for n in 1..=5 {
        let socket = open(&app.address, AGENT_TOKEN).await;
        sockets.push(socket.unwrap_or_else(|r| panic!("socket {n} refused: {r:?}")));
    }
    let Err(Refused { status, body }) = open(&app.address, AGENT_TOKEN).await else {
        panic!("a sixth socket was accepted");
    };
    assert_eq!(status, 429);
    assert!(body.contains("too_many_sockets"), "{body}");
    assert!(body.contains("already has 5 sockets open"), "{body}");
    // Another agent is not held back, and the five are still served.
    assert!(open(&app.address, ADMIN_TOKEN).await.is_ok());
    for socket in &mut sockets {
        answers_a_ping(socket).await;
    }
    // Once one closes, its place is free again.
    drop(sockets.pop());
    let reopened = poll(Duration::from_millis(20), async || {
        open(&app.address, AGENT_TOKEN).await.ok()
    })
    .await;
    assert!(reopened.is_some(), "a freed place is taken again");
}

#[tokio::test]
async fn a_frame_over_the_size_limit_closes_the_socket_with_1009() {
    let app = spawn_with("websocket_max_frame_bytes = 1024").await;
    let mut socket = open(&app.address, AGENT_TOKEN).await.unwrap();
    socket.send(Message::Text("x".repeat(1024).into())).await;
    answers_a_ping(&mut socket).await;
    socket.send(Message::Text("x".repeat(1025).into())).await;
    let close = socket.close_frame().await.expect("a close frame");
    assert_eq!(close.code, CloseCode::Size);
    assert!(close.reason.contains("1024 bytes"), "{}", close.reason);
}

#[tokio::test]
async fn the_message_past_the_rate_limit_closes_the_socket_with_1008() {
    let app = spawn_with("websocket_max_messages = 5\nwebsocket_message_window = \"1h\"").await;
    let mut socket = open(&app.address, AGENT_TOKEN).await.unwrap();
    for n in 1..=5u8 {
        socket.send(Message::Ping(vec![n].into())).await;
        assert_eq!(socket.pong().await, vec![n]);
    }
    socket.send(Message::Ping(vec![6].into())).await;
    let close = socket.close_frame().await.expect("a close frame");
    assert_eq!(close.code, CloseCode::Policy);
    assert_eq!(close.reason.as_str(), "too many messages: at most 5 per 1h");
}

/// A client that reads nothing: its receive buffer as small as the system allows.
async fn stalled_client(
    address: &str,
) -> tokio_tungstenite::WebSocketStream<tokio::net::TcpStream> {
    let authority = address.trim_start_matches("http://");
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(authority.parse().unwrap()).await.unwrap();
    let mut request = format!("ws://{authority}/ws")
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {AGENT_TOKEN}").parse().unwrap(),
    );
    let (client, _) = tokio_tungstenite::client_async(request, stream)
        .await
        .expect("the upgrade");
    client
}

#[tokio::test]
async fn a_socket_that_does_not_drain_is_dropped_after_the_send_timeout_and_frees_its_place() {
    let keys = "max_websockets_per_agent = 1\nwebsocket_send_timeout = \"1s\"\n\
                websocket_max_messages = 100000000";
    let app = spawn_with(keys).await;
    let (mut sink, mut stream) = stalled_client(&app.address).await.split();
    // Each ping is answered with a pong that the client never reads, until the server's
    // buffers are full and a pong cannot be sent.
    let flooding = Arc::new(AtomicBool::new(true));
    let still = flooding.clone();
    let flood = tokio::spawn(async move {
        let payload = vec![7u8; 125];
        for _ in 0..1_000_000 {
            if !still.load(Ordering::Relaxed) {
                break;
            }
            if sink
                .send(Message::Ping(payload.clone().into()))
                .await
                .is_err()
            {
                break;
            }
        }
    });
    // The agent's one place is held until the stalled socket is dropped.
    let freed = poll(Duration::from_millis(50), async || {
        match open(&app.address, AGENT_TOKEN).await {
            Ok(socket) => Some(socket),
            Err(Refused { status: 429, .. }) => None,
            Err(other) => panic!("unexpected refusal: {other:?}"),
        }
    })
    .await;
    let mut replacement = freed.expect("the stalled socket's place is freed");
    flooding.store(false, Ordering::Relaxed);
    flood.abort();
    answers_a_ping(&mut replacement).await;
    // The stalled client, reading at last, finds its socket ended after what was queued.
    let ended = tokio::time::timeout(PATIENCE, async {
        loop {
            match stream.next().await {
                Some(Ok(Message::Pong(_) | Message::Text(_))) => continue,
                _ => return,
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the stalled socket ends");
}

#[test]
fn agent_and_socket_limits_outside_their_range_stop_start_up_naming_the_key() {
    let dir = tempfile::TempDir::new().unwrap();
    for (keys, key) in [
        ("session_lifetime = \"0s\"", "server.session_lifetime"),
        ("session_lifetime = \"31days\"", "server.session_lifetime"),
        ("max_failed_logins = 0", "server.max_failed_logins"),
        ("failed_login_window = \"0s\"", "server.failed_login_window"),
        (
            "max_websockets_per_agent = 0",
            "server.max_websockets_per_agent",
        ),
        (
            "websocket_max_frame_bytes = 0",
            "server.websocket_max_frame_bytes",
        ),
        (
            "websocket_max_messages = 0",
            "server.websocket_max_messages",
        ),
        (
            "websocket_message_window = \"0s\"",
            "server.websocket_message_window",
        ),
        (
            "websocket_send_timeout = \"0s\"",
            "server.websocket_send_timeout",
        ),
        (
            "trusted_proxies = [\"proxy.example\"]",
            "server.trusted_proxies[0]",
        ),
        (
            "trusted_proxies = [\"10.0.0.1\", \"10.0.0.0/33\"]",
            "server.trusted_proxies[1]",
        ),
    ] {
        let error = Settings::from_toml(&toml(dir.path(), keys, AGENT_TOKEN))
            .expect_err(keys)
            .to_string();
        assert!(error.contains(&format!("`{key}`")), "{keys}: {error}");
    }
    let defaults = Settings::from_toml(&toml(dir.path(), "", AGENT_TOKEN)).unwrap();
    let server = defaults.server;
    assert_eq!(server.max_websockets_per_agent, 5);
    assert_eq!(server.session_lifetime, Duration::from_secs(12 * 3600));
    assert_eq!(server.login_throttle.max_failures, 10);
    let proxies = Settings::from_toml(&toml(
        dir.path(),
        "trusted_proxies = [\"10.0.0.0/8\", \"::1\"]",
        AGENT_TOKEN,
    ));
    assert!(proxies.is_ok());
}
