//! The calling plane driven by Meta's webhooks alone: what agents' sockets hear, the call
//! log and permission state. (Calls placed and answered through Meta are in `e2e`.)

use switchboard_protocol::api::{CallLog, CallState, PermissionState, PermissionStatus};
use switchboard_protocol::ws::{EndStatus, PermissionResponse, ServerEvent};

use switchboard_testkit::wait::{poll, PATIENCE};

use crate::helpers::{fixture, spawn_app, ADMIN_TOKEN, AGENT_TOKEN};

const ORIGIN: &str = "http://127.0.0.1:8080";

#[tokio::test]
async fn an_incoming_call_rings_every_agent_and_its_end_reaches_them_all() {
    let app = spawn_app("").await;
    let mut asha = app.socket(AGENT_TOKEN, Some(ORIGIN)).await.unwrap();
    let mut root = app.socket(ADMIN_TOKEN, None).await.unwrap();
    for socket in [&mut asha, &mut root] {
        assert!(matches!(socket.next().await, ServerEvent::Hello { .. }));
    }
    app.post_signed(fixture("06-call-connect-user-initiated-offer.json"))
        .await;
    for socket in [&mut asha, &mut root] {
        let ServerEvent::CallIncoming {
            call_id,
            user,
            to,
            sdp,
        } = socket.next().await
        else {
            panic!("expected call.incoming");
        };
        assert!(call_id.starts_with("wacid."));
        assert_eq!(user.user_id.as_deref(), Some("US.10293847561029384756"));
        assert_eq!(user.name.as_deref(), Some("Asha Verma"));
        assert_eq!(to, "15550783881");
        assert!(sdp.contains("a=ice-lite"));
    }
    // Meta's retry of the same webhook rings nobody again; the terminate ends the call.
    app.post_signed(fixture("06-call-connect-user-initiated-offer.json"))
        .await;
    app.post_signed(fixture("11-call-terminate-completed.json"))
        .await;
    for socket in [&mut asha, &mut root] {
        let ServerEvent::CallEnded {
            status, duration, ..
        } = socket.next().await
        else {
            panic!("expected call.ended, not a second call.incoming");
        };
        assert_eq!(status, EndStatus::Completed);
        assert_eq!(duration, Some(95));
    }

    let log: CallLog = app
        .agent_get(AGENT_TOKEN, "/api/calls")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(log.calls.len(), 1);
    assert_eq!(log.calls[0].state, CallState::Ended);
    assert_eq!(log.calls[0].duration, Some(95));
    assert_eq!(log.calls[0].user.wa_id.as_deref(), Some("12125550100"));
}

#[tokio::test]
async fn a_reconnecting_agent_is_told_about_calls_still_ringing() {
    let app = spawn_app("").await;
    app.post_signed(fixture("06-call-connect-user-initiated-offer.json"))
        .await;
    // The webhook is stored before the 200; the calling plane acts on it just after.
    tokio::time::timeout(PATIENCE, async {
        loop {
            let live: CallLog = app
                .agent_get(AGENT_TOKEN, "/api/calls")
                .await
                .json()
                .await
                .unwrap();
            if !live.calls.is_empty() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the call is recorded");
    let mut socket = app.socket(AGENT_TOKEN, None).await.unwrap();
    assert!(matches!(socket.next().await, ServerEvent::Hello { .. }));
    assert!(matches!(
        socket.next().await,
        ServerEvent::CallIncoming { .. }
    ));
}

#[tokio::test]
async fn a_permission_reply_updates_the_state_and_the_agents() {
    let app = spawn_app("").await;
    let mut socket = app.socket(AGENT_TOKEN, None).await.unwrap();
    socket.next().await;
    app.post_signed(fixture("04-call-permission-reply-accept.json"))
        .await;
    let ServerEvent::PermissionUpdated {
        user,
        response,
        permanent,
        ..
    } = socket.next().await
    else {
        panic!("expected permission.updated");
    };
    assert_eq!(response, PermissionResponse::Accept);
    assert!(permanent);
    assert_eq!(user.wa_id.as_deref(), Some("12125550100"));
    // Meta is unreachable in this test, so the router answers from what it was told;
    // the user is found by number and by BSUID alike.
    for who in ["12125550100", "US.10293847561029384756"] {
        let state: PermissionState = app
            .agent_get(AGENT_TOKEN, &format!("/api/permissions/{who}"))
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(state.status, PermissionStatus::Permanent, "{who}");
        assert!(state.can_call);
    }
    app.post_signed(fixture("05-call-permission-reply-reject.json"))
        .await;
    let ServerEvent::PermissionUpdated { response, .. } = socket.next().await else {
        panic!("expected permission.updated");
    };
    assert_eq!(response, PermissionResponse::Reject);
}

#[tokio::test]
async fn the_api_and_the_socket_need_an_agent_and_the_socket_a_known_origin() {
    let app = spawn_app("").await;
    for path in [
        "/api/calls",
        "/api/config",
        "/api/me",
        "/api/permissions/12125550100",
    ] {
        let anonymous = app
            .client
            .get(format!("{}{path}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(anonymous.status(), 401, "{path}");
        assert_eq!(
            app.agent_get("wrong-token", path).await.status(),
            401,
            "{path}"
        );
    }
    let placed = app
        .client
        .post(format!("{}/api/calls", app.address))
        .json(&serde_json::json!({"to": "12125550100", "sdp": "v=0"}))
        .send()
        .await
        .unwrap();
    assert_eq!(placed.status(), 401);
    assert_eq!(app.socket("wrong-token", None).await.err(), Some(401));
    assert_eq!(
        app.socket(AGENT_TOKEN, Some("https://evil.example"))
            .await
            .err(),
        Some(403)
    );
    assert!(app.socket(AGENT_TOKEN, Some(ORIGIN)).await.is_ok());
    assert_eq!(
        app.agent_get(AGENT_TOKEN, "/api/deliveries").await.status(),
        403
    );
}

#[tokio::test]
async fn signing_in_gives_a_session_cookie_that_works_until_signing_out() {
    let app = spawn_app("").await;
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let refused = client
        .post(format!("{}/api/login", app.address))
        .json(&serde_json::json!({"token": "nope"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let login = client
        .post(format!("{}/api/login", app.address))
        .json(&serde_json::json!({"token": AGENT_TOKEN}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let cookie = login
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(
        !cookie.contains(AGENT_TOKEN),
        "the token itself is never the cookie"
    );
    let me: serde_json::Value = client
        .get(format!("{}/api/me", app.address))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["agent"], "asha");
    // A browser sends its page's Origin with every POST; one without is refused.
    let out = client
        .post(format!("{}/api/logout", app.address))
        .header("origin", ORIGIN)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 204);
    let after = client
        .get(format!("{}/api/me", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 401);
}

#[tokio::test]
async fn the_dialer_config_carries_ice_servers_and_short_lived_turn_credentials_but_no_secrets() {
    let calls = r#"
[calls]
ice_servers = [ { urls = ["stun:stun.example.org:3478"] } ]
turn = { urls = ["turn:turn.example.org:3478?transport=udp"], shared_secret = "turn-shared-secret", ttl = "1h" }
"#;
    let app = spawn_app(calls).await;
    let response = app.agent_get(AGENT_TOKEN, "/api/config").await;
    assert_eq!(response.headers().get("cache-control").unwrap(), "no-store");
    let text = response.text().await.unwrap();
    for secret in ["turn-shared-secret", "EAAG-test", "test-app-secret"] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
    let config: switchboard_protocol::api::DialerConfig = serde_json::from_str(&text).unwrap();
    assert_eq!(config.agent, "asha");
    assert_eq!(config.ice_servers.len(), 2);
    let turn = &config.ice_servers[1];
    let username = turn.username.as_deref().unwrap();
    let (expiry, agent) = username.split_once(':').unwrap();
    assert_eq!(agent, "asha");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let expiry: i64 = expiry.parse().unwrap();
    assert!(expiry > now && expiry <= now + 3600 + 5);
    assert!(turn.credential.as_deref().is_some_and(|c| c.len() == 28));
}

#[tokio::test]
async fn call_ids_with_slashes_and_plus_signs_work_in_api_paths() {
    // Meta's call ids are standard base64: `/`, `+` and `=` occur.
    let app = spawn_app("").await;
    let body = String::from_utf8(fixture("06-call-connect-user-initiated-offer.json")).unwrap();
    let original = "wacid.HBgLMTIxMjU1NTAxMDAVAgARGCAyQkE1RTNGNUM4QjFBOTk2MTY1RTJCMDg4RkRCNTcyMBwYCzE1NTUwNzgzODgxFQIAAA==";
    let odd = "wacid.HBgL/MTIx+MjU1NTAxMDA=";
    app.post_signed(body.replace(original, odd).into_bytes())
        .await;
    let path = "/api/calls/wacid.HBgL%2FMTIx%2BMjU1NTAxMDA%3D";
    let found = tokio::time::timeout(PATIENCE, async {
        loop {
            let response = app.agent_get(AGENT_TOKEN, path).await;
            if response.status() == 200 {
                return response.json::<serde_json::Value>().await.unwrap();
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the call is found by its encoded id");
    assert_eq!(found["call_id"], odd);
}

#[tokio::test]
async fn stopping_the_server_closes_agents_sockets_at_once_so_they_reconnect() {
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
    let app = spawn_app("").await;
    let mut socket = app.socket(AGENT_TOKEN, None).await.unwrap();
    socket.next().await;
    let stopping = tokio::spawn(app.stop());
    let close = socket.close_frame().await;
    assert_eq!(close.map(|f| f.code), Some(CloseCode::Restart));
    stopping.await.unwrap();
}

#[tokio::test]
async fn a_call_left_live_by_a_crash_is_ended_and_no_longer_blocks_its_user() {
    use switchboard::domain::call::Call;
    use switchboard::store::sqlite::OpenMode;
    use switchboard::store::{CallStore, Durability, SqliteStore};
    let dir = tempfile::TempDir::new().unwrap();
    let data_dir = dir.path().join("data");
    {
        // What a router killed while Meta was placing a call leaves behind.
        let store = SqliteStore::open(&data_dir, OpenMode::Tool).unwrap();
        let user = switchboard_protocol::User {
            wa_id: Some("12125550100".into()),
            ..Default::default()
        };
        let an_hour_ago = switchboard::domain::clock::now_millis() / 1000 - 3600;
        let placeholder = Call::dialing("local:crashed".into(), user, "asha".into(), an_hour_ago);
        store
            .insert_call(&placeholder, true, Durability::Synced)
            .await
            .unwrap();
    }
    let app = crate::helpers::spawn_app_in(&data_dir, "").await;
    let ended = tokio::time::timeout(PATIENCE, async {
        loop {
            let log: CallLog = app
                .agent_get(AGENT_TOKEN, "/api/calls")
                .await
                .json()
                .await
                .unwrap();
            if log
                .calls
                .first()
                .is_some_and(|c| c.state == CallState::Ended)
            {
                return log.calls[0].clone();
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the stale call is ended at start-up");
    assert_eq!(ended.end_status, Some(EndStatus::Failed));
    assert!(ended
        .error
        .unwrap()
        .message
        .contains("before Meta answered"));
    // A new call to the user is no longer refused as a duplicate (Meta is unreachable here).
    let placed = app
        .client
        .post(format!("{}/api/calls", app.address))
        .bearer_auth(AGENT_TOKEN)
        .json(&serde_json::json!({"to": "12125550100", "sdp": "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"}))
        .send()
        .await
        .unwrap();
    assert_eq!(placed.status(), 502);
}

#[tokio::test]
async fn malformed_api_requests_get_json_errors() {
    let app = spawn_app("").await;
    let cases = [
        (r#"{"to": 12}"#, "application/json"),
        ("not json", "application/json"),
        (r#"{"to": "1", "sdp": "v=0"}"#, "text/plain"),
    ];
    for (body, content_type) in cases {
        let response = app
            .client
            .post(format!("{}/api/calls", app.address))
            .bearer_auth(AGENT_TOKEN)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{body}");
        let error: serde_json::Value = response.json().await.expect("a JSON error");
        assert_eq!(error["error"]["code"], "bad_request", "{body}");
    }
}

#[tokio::test]
async fn a_call_for_another_business_number_rings_no_one_but_is_stored_and_forwarded() {
    let consumer = switchboard_testkit::receiver::Receiver::start().await;
    let routes = crate::helpers::route("calls", r#"["call"]"#, &consumer.url, "");
    let app = spawn_app(&routes).await;
    let mut asha = app.socket(AGENT_TOKEN, Some(ORIGIN)).await.unwrap();
    assert!(matches!(asha.next().await, ServerEvent::Hello { .. }));
    // Another number's call: its own id, and the number's own metadata.
    let theirs = String::from_utf8(fixture("06-call-connect-user-initiated-offer.json"))
        .unwrap()
        .replace("106540352242922", "999999999999999")
        .replace("\"id\":\"wacid.", "\"id\":\"wacid.THEIRS");
    app.post_signed(theirs.into_bytes()).await;
    let forwarded = consumer.wait_for(1).await;
    assert_eq!(
        forwarded[0].json()["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"],
        "999999999999999"
    );

    // A call for our number afterwards rings: the socket's next event is about it, so
    // nothing about the other number's call came before it.
    app.post_signed(fixture("06-call-connect-user-initiated-offer.json"))
        .await;
    let ServerEvent::CallIncoming { call_id, .. } = asha.next().await else {
        panic!("expected the call for our number to ring");
    };
    assert!(!call_id.contains("THEIRS"), "{call_id}");
    let log: CallLog = app
        .agent_get(AGENT_TOKEN, "/api/calls")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(log.calls.len(), 1, "only our number's call is in the log");
}

/// A fixture with its Meta timestamps replaced.
fn fixture_at(name: &str, timestamp: i64) -> Vec<u8> {
    let text = String::from_utf8(fixture(name)).unwrap();
    let stamped = with_timestamps(&text, timestamp);
    assert_ne!(stamped, text, "{name} has a timestamp");
    stamped.into_bytes()
}

fn with_timestamps(text: &str, timestamp: i64) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("\"timestamp\":\"") {
        let start = at + "\"timestamp\":\"".len();
        out.push_str(&rest[..start]);
        let digits = rest[start..].find('"').unwrap();
        out.push_str(&timestamp.to_string());
        rest = &rest[start + digits..];
    }
    out.push_str(rest);
    out
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test]
async fn a_clock_ahead_of_ours_cannot_date_a_call_in_the_future_or_pin_a_permission() {
    let app = spawn_app("").await;
    let mut socket = app.socket(AGENT_TOKEN, None).await.unwrap();
    socket.next().await;
    let year_2100 = 4_102_444_800;

    app.post_signed(fixture_at(
        "06-call-connect-user-initiated-offer.json",
        year_2100,
    ))
    .await;
    assert!(matches!(
        socket.next().await,
        ServerEvent::CallIncoming { .. }
    ));
    let log: CallLog = app
        .agent_get(AGENT_TOKEN, "/api/calls")
        .await
        .json()
        .await
        .unwrap();
    assert!(
        log.calls[0].created_at <= now_secs(),
        "dated at its receipt, not in 2100: {}",
        log.calls[0].created_at
    );

    // The user's accept stamped in 2100, then their reject stamped now: the reject is the
    // later one.
    app.post_signed(fixture_at(
        "04-call-permission-reply-accept.json",
        year_2100,
    ))
    .await;
    let ServerEvent::PermissionUpdated { response, .. } = socket.next().await else {
        panic!("expected permission.updated");
    };
    assert_eq!(response, PermissionResponse::Accept);
    let reject = String::from_utf8(fixture_at(
        "04-call-permission-reply-accept.json",
        now_secs(),
    ))
    .unwrap()
    .replace(
        r#""response":"accept","is_permanent":true"#,
        r#""response":"reject","is_permanent":false"#,
    )
    .replace("wamid.HBgLMTIxMjU1NTAxMDAV", "wamid.REJECT");
    app.post_signed(reject.into_bytes()).await;
    let ServerEvent::PermissionUpdated { response, .. } = socket.next().await else {
        panic!("expected the reject to count");
    };
    assert_eq!(response, PermissionResponse::Reject);
    // Agents hear first; the state is saved just after.
    let saved = poll(std::time::Duration::from_millis(20), async || {
        let state: PermissionState = app
            .agent_get(AGENT_TOKEN, "/api/permissions/12125550100")
            .await
            .json()
            .await
            .unwrap();
        (state.status == PermissionStatus::Rejected).then_some(())
    })
    .await;
    assert!(saved.is_some(), "the reject is saved");
}
