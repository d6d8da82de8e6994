//! The Graph client against a Meta stand-in that fails on purpose: what is retried, what
//! never is, and how Meta's refusals come back.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{web, App, HttpResponse, HttpServer};
use secrecy::SecretString;
use switchboard::meta::graph::{GraphClient, GraphError};
use switchboard_protocol::graph::CallAction;
use switchboard_protocol::UserRef;

/// Answers each request with the next scripted response (status, body), then 200s.
#[derive(Clone, Default)]
struct Script {
    replies: Arc<Mutex<Vec<(u16, String)>>>,
    seen: Arc<Mutex<Vec<String>>>,
}

async fn answer(body: web::Bytes, script: web::Data<Script>) -> HttpResponse {
    script
        .seen
        .lock()
        .unwrap()
        .push(String::from_utf8_lossy(&body).into_owned());
    let mut replies = script.replies.lock().unwrap();
    let (status, body) = if replies.is_empty() {
        (
            200,
            r#"{"messaging_product":"whatsapp","success":true}"#.to_owned(),
        )
    } else {
        replies.remove(0)
    };
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap())
        .content_type("application/json")
        .body(body)
}

async fn meta(replies: Vec<(u16, &str)>) -> (GraphClient, Script) {
    let script = Script {
        replies: Arc::new(Mutex::new(
            replies
                .into_iter()
                .map(|(s, b)| (s, b.to_owned()))
                .collect(),
        )),
        seen: Arc::default(),
    };
    let data = web::Data::new(script.clone());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .default_service(web::to(answer))
    })
    .workers(1)
    .disable_signals()
    .bind("127.0.0.1:0")
    .unwrap();
    let port = server.addrs()[0].port();
    tokio::spawn(server.run());
    let client = GraphClient::new(
        reqwest::Url::parse(&format!("http://127.0.0.1:{port}")).unwrap(),
        "v23.0".into(),
        "106540352242922".into(),
        SecretString::from("EAAG-test".to_owned()),
        Duration::from_secs(5),
    )
    .unwrap();
    (client, script)
}

const META_DOWN: &str = r#"{"error":{"message":"Service temporarily unavailable","type":"OAuthException","code":2,"fbtrace_id":"x"}}"#;

#[tokio::test]
async fn a_hang_up_is_retried_when_meta_fails_but_a_connect_never_is() {
    let (client, script) = meta(vec![(503, META_DOWN), (500, META_DOWN)]).await;
    client.end(CallAction::Terminate, "wacid.1").await.unwrap();
    assert_eq!(
        script.seen.lock().unwrap().len(),
        3,
        "two failures, then success"
    );

    let (client, script) = meta(vec![(503, META_DOWN)]).await;
    let to = UserRef::parse("12125550100").unwrap();
    let err = client.connect(&to, "v=0".into()).await.unwrap_err();
    assert!(matches!(err, GraphError::Meta { status: 503, .. }), "{err}");
    assert_eq!(
        script.seen.lock().unwrap().len(),
        1,
        "a second connect would ring twice"
    );
}

#[tokio::test]
async fn metas_refusals_are_not_retried_and_keep_metas_code_and_details() {
    let refusal = r#"{"error":{"message":"(#138006) No approved call permission","type":"OAuthException","code":138006,"error_data":{"messaging_product":"whatsapp","details":"No approved call permission from the recipient"},"fbtrace_id":"y"}}"#;
    let (client, script) = meta(vec![(401, refusal)]).await;
    let err = client
        .end(CallAction::Terminate, "wacid.1")
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
    assert_eq!(script.seen.lock().unwrap().len(), 1);
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
    let seen = script.seen.lock().unwrap().clone();
    let first: serde_json::Value = serde_json::from_str(&seen[0]).unwrap();
    let second: serde_json::Value = serde_json::from_str(&seen[1]).unwrap();
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
    let err = client.end(CallAction::Reject, "wacid.1").await.unwrap_err();
    assert!(
        matches!(err, GraphError::Unexpected { status: 502, .. }),
        "{err}"
    );
}
