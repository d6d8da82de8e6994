//! Agents' sessions through the real server: signing out and a rotated token end a session
//! for its cookie and its open sockets, across restarts; a socket closes when its session
//! expires; a cookie is honoured on unsafe methods and the WebSocket only from an allowed
//! `Origin`; failed sign-ins are throttled per client address, which `X-Forwarded-For`
//! names only through a trusted proxy.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use switchboard::config::Settings;
use switchboard::startup::Application;
use switchboard_protocol::ws::ServerEvent;
use switchboard_testkit::agent::{AgentSocket, Refused};
use switchboard_testkit::router::{Agent, RouterConfig};
use switchboard_testkit::server::Running;
use switchboard_testkit::wait::poll;
use tempfile::TempDir;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

use crate::binary::Server;
use crate::helpers::{fixture, ADMIN_TOKEN, AGENT_TOKEN};

/// The test servers' `public_url` origin: the one origin their dialer pages come from.
pub(crate) const ORIGIN: &str = "http://127.0.0.1:8080";
pub(crate) const EVIL: &str = "https://evil.example";

/// A router with `server_keys` added to its `[server]` table, on a data directory that
/// outlives it (for restarts).
pub(crate) struct App {
    pub(crate) address: String,
    router: Running<Application>,
    pub(crate) client: reqwest::Client,
    data_dir: PathBuf,
    _dir: Option<TempDir>,
}

/// The agents of every test server here: `root` (admin) and `asha`.
fn agents(asha_token: &'static str) -> Vec<Agent> {
    vec![
        Agent::admin("root", ADMIN_TOKEN),
        Agent::new("asha", asha_token),
    ]
}

pub(crate) fn toml(data_dir: &Path, server_keys: &str, asha_token: &'static str) -> String {
    let config = RouterConfig {
        agents: agents(asha_token),
        ..RouterConfig::new(data_dir)
    };
    config
        .toml()
        .replacen("[server]\n", &format!("[server]\n{server_keys}\n"), 1)
}

pub(crate) async fn spawn_with(server_keys: &str) -> App {
    let dir = TempDir::new().expect("temp dir");
    let mut app = spawn_in(&dir.path().join("data"), server_keys, AGENT_TOKEN).await;
    app._dir = Some(dir);
    app
}

async fn spawn_in(data_dir: &Path, server_keys: &str, asha_token: &'static str) -> App {
    let settings =
        Settings::from_toml(&toml(data_dir, server_keys, asha_token)).expect("the config loads");
    let router = Running::spawn(Application::build(settings).await.expect("the app builds"));
    App {
        address: router.url.clone(),
        router,
        client: reqwest::Client::new(),
        data_dir: data_dir.to_owned(),
        _dir: None,
    }
}

impl App {
    /// Stops the server and starts another on the same data directory, `asha` now holding
    /// `asha_token`.
    async fn restart(self, asha_token: &'static str) -> App {
        let App {
            router,
            data_dir,
            _dir,
            ..
        } = self;
        router.stop().await;
        let mut app = spawn_in(&data_dir, "", asha_token).await;
        app._dir = _dir;
        app
    }

    /// `POST /api/login` with `token` and these headers.
    pub(crate) async fn sign_in(&self, token: &str, headers: &[(&str, &str)]) -> reqwest::Response {
        let mut request = self
            .client
            .post(format!("{}/api/login", self.address))
            .json(&json!({ "token": token }));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.expect("the server answers")
    }

    /// Signs in as a browser on the dialer's page would; the session cookie's value.
    pub(crate) async fn session(&self, token: &str) -> String {
        let response = self.sign_in(token, &[("origin", ORIGIN)]).await;
        assert_eq!(response.status(), 200, "signing in");
        let cookie = response
            .cookies()
            .find(|c| c.name() == "switchboard_session")
            .expect("a session cookie");
        cookie.value().to_owned()
    }

    /// A request riding the session cookie, with `origin` if given.
    pub(crate) async fn with_cookie(
        &self,
        method: reqwest::Method,
        path: &str,
        session: &str,
        origin: Option<&str>,
    ) -> reqwest::Response {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.address))
            .header("cookie", format!("switchboard_session={session}"));
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        request.send().await.expect("the server answers")
    }

    async fn me(&self, session: &str) -> u16 {
        let me = self
            .with_cookie(reqwest::Method::GET, "/api/me", session, None)
            .await;
        me.status().as_u16()
    }

    async fn sign_out(&self, session: &str, origin: Option<&str>) -> reqwest::Response {
        self.with_cookie(reqwest::Method::POST, "/api/logout", session, origin)
            .await
    }
}

/// A cookie socket from the dialer's page, past its hello.
pub(crate) async fn cookie_socket(app: &App, session: &str) -> AgentSocket {
    let mut socket = AgentSocket::open_with_cookie(&app.address, session, Some(ORIGIN))
        .await
        .expect("the socket opens");
    assert!(matches!(socket.next().await, ServerEvent::Hello { .. }));
    socket
}

/// The socket is still served: a ping is answered.
pub(crate) async fn answers_a_ping(socket: &mut AgentSocket) {
    socket
        .send(Message::Ping(b"still there?".to_vec().into()))
        .await;
    assert_eq!(socket.pong().await, b"still there?");
}

async fn error_of(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn signing_out_ends_that_session_for_its_cookie_and_its_socket_even_after_a_restart() {
    let app = spawn_with("").await;
    let ended = app.session(AGENT_TOKEN).await;
    let other = app.session(AGENT_TOKEN).await;
    let mut ended_socket = cookie_socket(&app, &ended).await;
    let mut other_socket = cookie_socket(&app, &other).await;

    let out = app.sign_out(&ended, Some(ORIGIN)).await;
    assert_eq!(out.status(), 204);
    let removal = out.headers().get("set-cookie").unwrap().to_str().unwrap();
    assert!(removal.starts_with("switchboard_session=;"), "{removal}");

    let close = ended_socket.close_frame().await.expect("a close frame");
    assert_eq!(close.code, CloseCode::Policy);
    assert!(close.reason.contains("signed out"), "{}", close.reason);
    assert_eq!(app.me(&ended).await, 401, "the old cookie is refused");
    let reopened = AgentSocket::open_with_cookie(&app.address, &ended, Some(ORIGIN)).await;
    assert_eq!(reopened.err().map(|r| r.status), Some(401));
    // Only that session ended: the agent's other one goes on, socket and all.
    assert_eq!(app.me(&other).await, 200);
    answers_a_ping(&mut other_socket).await;
    drop(other_socket);

    let app = app.restart(AGENT_TOKEN).await;
    assert_eq!(app.me(&ended).await, 401, "still refused after a restart");
    assert_eq!(app.me(&other).await, 200);
    assert_eq!(app.sign_out(&other, Some(ORIGIN)).await.status(), 204);
    assert_eq!(app.me(&other).await, 401);
}

#[tokio::test]
async fn a_session_made_with_a_token_the_configuration_no_longer_holds_stops_working() {
    let app = spawn_with("").await;
    let session = app.session(AGENT_TOKEN).await;
    assert_eq!(app.me(&session).await, 200);

    let app = app.restart("asha-rotated-token").await;
    assert_eq!(app.me(&session).await, 401, "the old token's session ended");
    let socket = AgentSocket::open_with_cookie(&app.address, &session, Some(ORIGIN)).await;
    assert_eq!(socket.err().map(|r| r.status), Some(401));
    let old = app
        .client
        .get(format!("{}/api/me", app.address))
        .bearer_auth(AGENT_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(old.status(), 401);
    let renewed = app.session("asha-rotated-token").await;
    assert_eq!(app.me(&renewed).await, 200);
}

#[tokio::test]
async fn a_socket_is_closed_when_its_session_expires() {
    let app = spawn_with("session_lifetime = \"2s\"").await;
    // Signing in and opening the socket must fit in the session's two seconds; on a busy
    // machine they may not, and then it is tried again.
    let opened = poll(std::time::Duration::from_millis(10), async || {
        let session = app.session(AGENT_TOKEN).await;
        let socket = AgentSocket::open_with_cookie(&app.address, &session, Some(ORIGIN)).await;
        socket.ok().map(|socket| (session, socket))
    })
    .await;
    let (session, mut socket) = opened.expect("a socket within its session");
    let close = socket.close_frame().await.expect("a close frame");
    assert_eq!(close.code, CloseCode::Policy);
    assert!(close.reason.contains("session expired"), "{}", close.reason);
    assert_eq!(app.me(&session).await, 401);
}

#[tokio::test]
async fn a_cookie_request_with_an_unsafe_method_needs_an_allowed_origin_and_changes_nothing_without(
) {
    let app = spawn_with("").await;
    let asha = app.session(AGENT_TOKEN).await;
    let root = app.session(ADMIN_TOKEN).await;
    let webhook = fixture("06-call-connect-user-initiated-offer.json");
    let receipt = app
        .client
        .post(format!("{}/webhook", app.address))
        .header(
            "X-Hub-Signature-256",
            switchboard_testkit::meta::sign(&webhook),
        )
        .body(webhook)
        .send()
        .await
        .unwrap();
    assert_eq!(receipt.status(), 200);
    let ringing = poll(std::time::Duration::from_millis(20), async || {
        let log: Value = app
            .with_cookie(reqwest::Method::GET, "/api/calls", &asha, None)
            .await
            .json()
            .await
            .unwrap();
        log["calls"][0]["call_id"].as_str().map(str::to_owned)
    })
    .await
    .expect("the call is ringing");
    let reject = format!("/api/calls/{ringing}/reject");

    let post = reqwest::Method::POST;
    for origin in [
        None,
        Some(EVIL),
        Some("http://127.0.0.1:8081"),
        Some("null"),
    ] {
        for (session, path) in [
            (&asha, reject.as_str()),
            (&asha, "/api/logout"),
            (&root, "/api/deliveries/1/retry"),
            (&root, "/api/events/evt_0/replay"),
        ] {
            let (status, body) =
                error_of(app.with_cookie(post.clone(), path, session, origin).await).await;
            assert_eq!(status, 403, "{path} from {origin:?}");
            assert_eq!(body["error"]["code"], "forbidden_origin", "{body}");
            let message = body["error"]["message"].as_str().unwrap();
            match origin {
                None => assert!(message.contains("no Origin header"), "{message}"),
                Some(origin) => assert!(message.contains(origin), "{message}"),
            }
        }
    }
    // Nothing happened: the call still rings and both sessions still work.
    let call: Value = app
        .with_cookie(
            reqwest::Method::GET,
            &format!("/api/calls/{ringing}"),
            &asha,
            Some(EVIL),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(call["state"], "ringing", "{call}");
    assert_eq!((app.me(&asha).await, app.me(&root).await), (200, 200));

    // From the dialer's own origin the same cookie gets through (to an unknown call); a
    // bearer token is no ambient credential, so it needs no Origin.
    let unknown = "/api/calls/wacid.unknown/terminate";
    let from_dialer = app
        .with_cookie(post.clone(), unknown, &asha, Some(ORIGIN))
        .await;
    assert_eq!(from_dialer.status(), 404);
    let by_token = app
        .client
        .post(format!("{}{unknown}", app.address))
        .bearer_auth(AGENT_TOKEN)
        .header("origin", EVIL)
        .send()
        .await
        .unwrap();
    assert_eq!(by_token.status(), 404);
}

#[tokio::test]
async fn a_page_of_another_origin_cannot_sign_the_browser_in() {
    let app = spawn_with("").await;
    let response = app.sign_in(AGENT_TOKEN, &[("origin", EVIL)]).await;
    assert!(response.headers().get("set-cookie").is_none());
    let (status, body) = error_of(response).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("forbidden_origin"))
    );
    // Clients that are not browsers send no Origin.
    assert_eq!(app.sign_in(AGENT_TOKEN, &[]).await.status(), 200);
}

#[tokio::test]
async fn a_cookie_websocket_needs_an_allowed_origin_and_a_refused_one_takes_no_place() {
    let app = spawn_with("max_websockets_per_agent = 1").await;
    let session = app.session(AGENT_TOKEN).await;
    for origin in [None, Some(EVIL), Some("http://127.0.0.1:8081")] {
        let refused = AgentSocket::open_with_cookie(&app.address, &session, origin).await;
        let Err(Refused { status, body }) = refused else {
            panic!("a cookie socket from {origin:?} was accepted");
        };
        assert_eq!(status, 403, "{origin:?}");
        assert!(body.contains("forbidden_origin"), "{body}");
    }
    // The one place this agent has is still free.
    let mut socket = cookie_socket(&app, &session).await;
    answers_a_ping(&mut socket).await;
    drop(socket);
    // A bearer token may come without an Origin, never with a foreign one.
    let by_token = poll(std::time::Duration::from_millis(20), async || {
        AgentSocket::open(&app.address, AGENT_TOKEN, None)
            .await
            .ok()
    })
    .await;
    assert!(by_token.is_some());
    assert_eq!(
        AgentSocket::open(&app.address, ADMIN_TOKEN, Some(EVIL))
            .await
            .err(),
        Some(403)
    );
}

#[tokio::test]
async fn the_failed_sign_in_past_the_limit_gets_429_with_retry_after_and_no_token_is_checked() {
    let app = spawn_with("max_failed_logins = 3\nfailed_login_window = \"1h\"").await;
    for n in 1..=3 {
        let response = app.sign_in(&format!("guess-{n}"), &[]).await;
        assert_eq!(response.status(), 401, "failure {n}");
    }
    let throttled = app.sign_in("guess-4", &[]).await;
    let retry_after: u64 = throttled
        .headers()
        .get("retry-after")
        .expect("Retry-After")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=3600).contains(&retry_after), "{retry_after}");
    let (status, body) = error_of(throttled).await;
    assert_eq!(status, 429);
    assert_eq!(body["error"]["code"], "throttled", "{body}");
    assert!(body["error"]["retry_at"].is_i64(), "{body}");

    // Even the right token is not checked now, from this address: no session is made.
    // `X-Forwarded-For` from a peer that is not a trusted proxy does not change the address.
    for headers in [&[][..], &[("x-forwarded-for", "203.0.113.50")][..]] {
        let response = app.sign_in(AGENT_TOKEN, headers).await;
        assert!(response.headers().get("set-cookie").is_none());
        assert_eq!(response.status(), 429, "{headers:?}");
    }
    // Signing in is throttled, not the API.
    let me = app
        .client
        .get(format!("{}/api/me", app.address))
        .bearer_auth(AGENT_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);
}

#[tokio::test]
async fn forwarded_for_names_the_client_only_through_a_trusted_proxy_and_is_read_from_the_right() {
    let app = spawn_with("trusted_proxies = [\"127.0.0.1\"]\nmax_failed_logins = 2").await;
    let from = |client: &'static str| [("x-forwarded-for", client)];
    for n in 1..=2 {
        let response = app.sign_in("guess", &from("203.0.113.7")).await;
        assert_eq!(response.status(), 401, "failure {n}");
    }
    assert_eq!(
        app.sign_in("guess", &from("203.0.113.7")).await.status(),
        429
    );
    // A client that writes its own header in front of the proxy's cannot change who it is.
    let spoofed = app
        .sign_in(AGENT_TOKEN, &from("198.51.100.1, 203.0.113.7"))
        .await;
    assert_eq!(spoofed.status(), 429);
    // Another client behind the proxy, and the proxy itself, are counted apart.
    assert_eq!(
        app.sign_in("guess", &from("203.0.113.8")).await.status(),
        401
    );
    assert_eq!(
        app.sign_in(AGENT_TOKEN, &from("203.0.113.8"))
            .await
            .status(),
        200
    );
    assert_eq!(app.sign_in("guess", &[]).await.status(), 401);
    assert_eq!(app.sign_in(AGENT_TOKEN, &[]).await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_sign_ins_are_logged_with_the_client_address_and_never_the_token() {
    let dir = TempDir::new().unwrap();
    let config = dir.path().join("switchboard.toml");
    std::fs::write(&config, toml(&dir.path().join("data"), "", AGENT_TOKEN)).unwrap();
    let server = Server::start(&config);
    let client = reqwest::Client::new();
    let failed = client
        .post(format!("{}/api/login", server.address))
        .header("x-forwarded-for", "203.0.113.99")
        .json(&json!({ "token": "guessed-agent-token-secret" }))
        .send()
        .await
        .unwrap();
    assert_eq!(failed.status(), 401);
    let logged = poll(std::time::Duration::from_millis(50), async || {
        let logs = server.logs.lock().unwrap();
        logs.iter().find(|l| l.contains("sign-in failed")).cloned()
    })
    .await
    .expect("the failure is logged within the patience");
    assert!(logged.contains("client=127.0.0.1"), "{logged}");
    let logs = server.logs.lock().unwrap().join("\n");
    assert!(!logs.contains("guessed-agent-token-secret"), "{logs}");
    assert!(
        !logs.contains("203.0.113.99"),
        "a forwarded address from an untrusted peer is nobody's address:\n{logs}"
    );
}
