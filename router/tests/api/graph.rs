//! The Graph client against a Meta stand-in that fails on purpose: what is retried, what
//! never is, and how Meta's refusals come back; redirects not followed, answers read only
//! up to their limit, and the access token sent in clear to no one.

use std::time::Duration;

use secrecy::SecretString;
use switchboard::meta::graph::{GraphClient, GraphError, MAX_ANSWER_BYTES};
use switchboard_protocol::graph::CallAction;
use switchboard_protocol::UserRef;
use switchboard_testkit::meta::{ACCESS_TOKEN, PHONE_NUMBER_ID};
use switchboard_testkit::receiver::{Receiver, Reply};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{config, AGENT_TOKEN};

/// A Meta that answers each request with the next scripted response (status, body), then
/// 200s; and a Graph client pointed at it.
async fn meta(replies: Vec<(u16, &str)>) -> (GraphClient, Receiver) {
    let meta = Receiver::start().await;
    meta.answer(Reply::json(
        200,
        r#"{"messaging_product":"whatsapp","success":true}"#,
    ));
    meta.answer_next(
        replies
            .into_iter()
            .map(|(status, body)| Reply::json(status, body)),
    );
    (
        client_for(&format!("http://127.0.0.1:{}", meta.port())).unwrap(),
        meta,
    )
}

fn client_for(base: &str) -> anyhow::Result<GraphClient> {
    GraphClient::new(
        reqwest::Url::parse(base).unwrap(),
        "v23.0".into(),
        PHONE_NUMBER_ID.into(),
        SecretString::from(ACCESS_TOKEN.to_owned()),
        Duration::from_secs(5),
    )
}

const META_DOWN: &str = r#"{"error":{"message":"Service temporarily unavailable","type":"OAuthException","code":2,"fbtrace_id":"x"}}"#;

#[tokio::test]
async fn a_hang_up_is_retried_when_meta_fails_but_a_connect_never_is() {
    let (client, script) = meta(vec![(503, META_DOWN), (500, META_DOWN)]).await;
    client
        .end(CallAction::Terminate, &"wacid.1".into())
        .await
        .unwrap();
    assert_eq!(script.requests().len(), 3, "two failures, then success");

    let (client, script) = meta(vec![(503, META_DOWN)]).await;
    let to = UserRef::parse("12125550100").unwrap();
    let err = client.connect(&to, "v=0".into()).await.unwrap_err();
    assert!(matches!(err, GraphError::Meta { status: 503, .. }), "{err}");
    assert_eq!(
        script.requests().len(),
        1,
        "a second connect would ring twice"
    );
}

#[tokio::test]
async fn metas_refusals_are_not_retried_and_keep_metas_code_and_details() {
    let refusal = r#"{"error":{"message":"(#138006) No approved call permission","type":"OAuthException","code":138006,"error_data":{"messaging_product":"whatsapp","details":"No approved call permission from the recipient"},"fbtrace_id":"y"}}"#;
    let (client, script) = meta(vec![(401, refusal)]).await;
    let err = client
        .end(CallAction::Terminate, &"wacid.1".into())
        .await
        .unwrap_err();
    let GraphError::Meta { code, details, .. } = &err else {
        panic!("{err}");
    };
    assert_eq!(*code, 138006);
    assert_eq!(
        details.as_deref(),
        Some("No approved call permission from the recipient")
    );
    assert_eq!(err.meta_code(), Some(138006));
    assert_eq!(script.requests().len(), 1);
}

#[tokio::test]
async fn a_connect_to_a_bsuid_goes_as_recipient_and_to_a_number_as_to() {
    let connected = r#"{"messaging_product":"whatsapp","calls":[{"id":"wacid.X"}]}"#;
    let (client, script) = meta(vec![(200, connected), (200, connected)]).await;
    let bsuid = UserRef::parse("US.13491208655302741918").unwrap();
    assert_eq!(
        client.connect(&bsuid, "v=0".into()).await.unwrap(),
        "wacid.X"
    );
    let phone = UserRef::parse("+12125550100").unwrap();
    client.connect(&phone, "v=0".into()).await.unwrap();
    let seen = script.requests();
    let (first, second) = (seen[0].json(), seen[1].json());
    assert_eq!(first["recipient"], "US.13491208655302741918");
    assert!(first.get("to").is_none());
    assert_eq!(second["to"], "12125550100");
    assert!(second.get("recipient").is_none());
}

#[tokio::test]
async fn an_answer_that_is_not_metas_envelope_is_reported_as_such() {
    let (client, _) = meta(vec![
        (502, "<html>bad gateway</html>"),
        (502, "x"),
        (502, "y"),
    ])
    .await;
    let err = client
        .end(CallAction::Reject, &"wacid.1".into())
        .await
        .unwrap_err();
    assert!(
        matches!(err, GraphError::Unexpected { status: 502, .. }),
        "{err}"
    );
}

#[tokio::test]
async fn a_redirect_is_not_followed_so_the_token_goes_nowhere_else() {
    let elsewhere = Receiver::start().await;
    let (client, script) = meta(vec![]).await;
    script.answer(Reply::status(307).header("location", &elsewhere.url));
    let err = client
        .end(CallAction::Terminate, &"wacid.1".into())
        .await
        .unwrap_err();
    assert!(matches!(err, GraphError::Redirect { status: 307 }), "{err}");
    assert!(err.to_string().contains("redirect"), "{err}");
    assert_eq!(script.requests().len(), 1, "a redirect is not retried");
    assert!(elsewhere.requests().is_empty(), "the redirect was followed");
}

/// A `success` answer padded with spaces to exactly `size` bytes.
fn success_of_size(size: usize) -> String {
    let body = r#"{"messaging_product":"whatsapp","success":true}"#;
    format!("{body}{}", " ".repeat(size - body.len()))
}

#[tokio::test]
async fn an_answer_longer_than_the_limit_is_refused_and_one_at_the_limit_is_read() {
    let (client, script) = meta(vec![]).await;
    script.answer(Reply::json(200, &success_of_size(MAX_ANSWER_BYTES)));
    client
        .end(CallAction::Terminate, &"wacid.1".into())
        .await
        .unwrap();

    script.answer(Reply::json(200, &success_of_size(MAX_ANSWER_BYTES + 1)));
    let err = client
        .end(CallAction::Terminate, &"wacid.1".into())
        .await
        .unwrap_err();
    assert!(
        matches!(err, GraphError::TooLarge { status: 200, limit } if limit == MAX_ANSWER_BYTES),
        "{err}"
    );
    assert!(
        err.to_string().contains("larger than 1048576 bytes"),
        "{err}"
    );
}

/// A server that answers every connection with `200`, no length, and an endless body
/// until the client goes away.
async fn endless_answers() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _ = socket.read(&mut request).await;
                let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n";
                if socket.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let chunk = vec![b' '; 16 * 1024];
                // At most 1 GiB, should the client never stop reading.
                for _ in 0..64 * 1024 {
                    if socket.write_all(&chunk).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

#[tokio::test]
async fn an_endless_answer_without_a_length_is_cut_off_at_the_limit() {
    let port = endless_answers().await;
    let client = client_for(&format!("http://127.0.0.1:{port}"))
        .unwrap()
        .with_answer_limit(64 * 1024);
    let err = client.settings().await.unwrap_err();
    assert!(
        matches!(
            err,
            GraphError::TooLarge {
                status: 200,
                limit: 65536
            }
        ),
        "{err}"
    );
}

#[test]
fn a_plain_http_graph_api_is_refused_unless_it_is_this_machine() {
    for refused in ["http://graph.facebook.com", "http://192.0.2.7:8090"] {
        let err = client_for(refused).unwrap_err().to_string();
        assert!(err.contains("in clear"), "{refused}: {err}");
    }
    for allowed in [
        "https://graph.facebook.com",
        "http://127.0.0.1:8090",
        "http://localhost:8090",
        "http://[::1]:8090",
    ] {
        client_for(allowed).unwrap();
    }
}

#[tokio::test]
async fn a_permission_request_through_a_redirecting_graph_api_fails_clearly_and_is_not_spent() {
    let elsewhere = Receiver::start().await;
    let meta = Receiver::start().await;
    meta.answer(Reply::status(302).header("location", &elsewhere.url));
    let dir = tempfile::TempDir::new().unwrap();
    let router = switchboard_testkit::router::RouterConfig {
        graph_api_base: format!("http://127.0.0.1:{}", meta.port()),
        ..config(&dir.path().join("data"), "")
    }
    .start()
    .await
    .unwrap();
    let client = reqwest::Client::new();
    // Meta allows one request a day: a second refusal with 502, not 429, shows the first
    // was given back.
    for _ in 0..2 {
        let response = client
            .post(format!("{}/api/permissions", router.url))
            .bearer_auth(AGENT_TOKEN)
            .json(&serde_json::json!({"to": "12125550100"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 502);
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "meta_unreachable", "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("redirect"), "{message}");
    }
    assert_eq!(meta.requests().len(), 2);
    assert!(elsewhere.requests().is_empty(), "the redirect was followed");
    router.stop().await;
}
