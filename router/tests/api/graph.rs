//! The Graph client against a Meta stand-in that fails on purpose: what is retried, what
//! never is, and how Meta's refusals come back.

use std::time::Duration;

use secrecy::SecretString;
use switchboard::meta::graph::{GraphClient, GraphError};
use switchboard_protocol::graph::CallAction;
use switchboard_protocol::UserRef;
use switchboard_testkit::meta::{ACCESS_TOKEN, PHONE_NUMBER_ID};
use switchboard_testkit::receiver::{Receiver, Reply};

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
    let client = GraphClient::new(
        reqwest::Url::parse(&format!("http://127.0.0.1:{}", meta.port())).unwrap(),
        "v23.0".into(),
        PHONE_NUMBER_ID.into(),
        SecretString::from(ACCESS_TOKEN.to_owned()),
        Duration::from_secs(5),
    )
    .unwrap();
    (client, meta)
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
