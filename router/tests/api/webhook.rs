use switchboard_testkit::meta::{sign, VERIFY_TOKEN};

use crate::helpers::{fixture, fixtures_dir, spawn_app, text_message, TestApp};

fn receipt_kinds(receipt: &serde_json::Value) -> Vec<String> {
    receipt["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["kind"].as_str().expect("kind").to_owned())
        .collect()
}

#[tokio::test]
async fn every_signed_fixture_is_accepted_and_yields_exactly_its_listed_events_in_order() {
    let app = spawn_app("").await;
    let table = std::fs::read_to_string(fixtures_dir().join("SIGNATURES.tsv")).expect("tsv");
    let mut checked = 0;
    for line in table
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let columns: Vec<&str> = line.split('\t').collect();
        let [file, signature, expected] = columns[..] else {
            panic!("bad line in SIGNATURES.tsv: {line}");
        };
        let response = app.post_webhook(fixture(file), Some(signature)).await;
        assert_eq!(response.status(), 200, "{file}");
        let receipt: serde_json::Value = response.json().await.expect("receipt");
        let expected: Vec<&str> = expected.split_whitespace().collect();
        assert_eq!(receipt_kinds(&receipt), expected, "{file}");
        checked += 1;
    }
    assert_eq!(checked, 13);
    assert_eq!(app.count_rows("deliveries"), 13);
}

/// One malformed request and the status it must get.
struct BadRequest {
    name: &'static str,
    body: Vec<u8>,
    headers: Vec<(&'static str, String)>,
    status: u16,
}

// A table of cases, one entry each: long because there are many, not because it does much.
#[allow(clippy::too_many_lines)]
fn bad_requests() -> Vec<BadRequest> {
    let body = fixture("01-text-message.json");
    let good = sign(&body);
    let hex = good.trim_start_matches("sha256=").to_owned();
    let mut tampered = body.clone();
    let last = tampered.len() - 3;
    tampered[last] ^= 0x01;
    let sha1 = format!("sha1={}", &hex[..40]);
    let other_secret = switchboard::meta::signature::AppSecret::parse(secrecy::SecretString::from(
        "someone-else".to_owned(),
    ))
    .expect("secret")
    .sign(&body);
    vec![
        BadRequest {
            name: "wrong secret",
            body: body.clone(),
            headers: vec![("X-Hub-Signature-256", other_secret)],
            status: 401,
        },
        BadRequest {
            name: "missing signature",
            body: body.clone(),
            headers: vec![],
            status: 401,
        },
        BadRequest {
            name: "no sha256= prefix",
            body: body.clone(),
            headers: vec![("X-Hub-Signature-256", hex.clone())],
            status: 401,
        },
        BadRequest {
            name: "not hex",
            body: body.clone(),
            headers: vec![("X-Hub-Signature-256", format!("sha256={}", "zz".repeat(32)))],
            status: 401,
        },
        BadRequest {
            name: "too short",
            body: body.clone(),
            headers: vec![("X-Hub-Signature-256", format!("sha256={}", &hex[..62]))],
            status: 401,
        },
        BadRequest {
            name: "too long",
            body: body.clone(),
            headers: vec![("X-Hub-Signature-256", format!("sha256={hex}00"))],
            status: 401,
        },
        BadRequest {
            name: "sha1 only",
            body: body.clone(),
            headers: vec![("X-Hub-Signature", sha1.clone())],
            status: 401,
        },
        BadRequest {
            name: "sha1 in the sha256 header",
            body: body.clone(),
            headers: vec![("X-Hub-Signature-256", sha1)],
            status: 401,
        },
        BadRequest {
            name: "tampered body",
            body: tampered,
            headers: vec![("X-Hub-Signature-256", good)],
            status: 401,
        },
        BadRequest {
            name: "empty body, unsigned",
            body: vec![],
            headers: vec![],
            status: 401,
        },
        BadRequest {
            name: "empty signature header",
            body: body.clone(),
            headers: vec![("X-Hub-Signature-256", String::new())],
            status: 401,
        },
        BadRequest {
            name: "oversize",
            body: vec![b' '; 4 * 1024 * 1024 + 1],
            headers: vec![(
                "X-Hub-Signature-256",
                sign(&vec![b' '; 4 * 1024 * 1024 + 1]),
            )],
            status: 413,
        },
    ]
}

#[tokio::test]
async fn bad_webhooks_are_refused_with_a_clear_error_and_store_nothing() {
    let app = spawn_app("").await;
    for case in bad_requests() {
        let mut request = app
            .client
            .post(format!("{}/webhook", app.address))
            .body(case.body);
        for (name, value) in &case.headers {
            request = request.header(*name, value);
        }
        let response = request.send().await.expect("sent");
        assert_eq!(response.status(), case.status, "{}", case.name);
        let error: serde_json::Value = response.json().await.expect("json error");
        assert!(
            error["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{}",
            case.name
        );
    }
    assert_eq!(app.count_rows("deliveries"), 0);
    assert_eq!(app.count_rows("events"), 0);
    assert_eq!(app.count_rows("jobs"), 0);
}

#[tokio::test]
async fn an_oversize_body_sent_in_chunks_is_refused_with_413() {
    let app = spawn_app("").await;
    let chunk = bytes::Bytes::from(vec![b' '; 1024 * 1024]);
    let chunks = futures::stream::iter((0..5).map(move |_| Ok::<_, std::io::Error>(chunk.clone())));
    let response = app
        .client
        .post(format!("{}/webhook", app.address))
        .header("X-Hub-Signature-256", sign(b"whatever"))
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 413);
    assert_eq!(app.count_rows("deliveries"), 0);
}

#[tokio::test]
async fn upper_case_hex_signatures_are_accepted() {
    let app = spawn_app("").await;
    let body = fixture("02-message-status-delivered.json");
    let upper = format!(
        "sha256={}",
        sign(&body).trim_start_matches("sha256=").to_uppercase()
    );
    let response = app.post_webhook(body, Some(&upper)).await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn signed_bytes_that_are_not_json_are_kept_as_one_unparsed_event() {
    let app = spawn_app("").await;
    for body in [
        b"this is not json".to_vec(),
        Vec::new(),
        b"{\"object\":1".to_vec(),
    ] {
        let receipt = app.post_signed(body).await;
        assert_eq!(receipt_kinds(&receipt), ["other:unparsed"]);
    }
    assert_eq!(app.count_rows("deliveries"), 3);
}

#[tokio::test]
async fn a_repeated_delivery_is_recorded_but_its_events_are_marked_duplicates() {
    let app = spawn_app("").await;
    let first = app.post_signed(fixture("12-mixed-batch.json")).await;
    let again = app.post_signed(fixture("12-mixed-batch.json")).await;
    for (a, b) in first["events"]
        .as_array()
        .unwrap()
        .iter()
        .zip(again["events"].as_array().unwrap())
    {
        assert_eq!(a["id"], b["id"]);
        assert_eq!(a["duplicate"], false);
        assert_eq!(b["duplicate"], true);
    }
    assert_eq!(app.count_rows("deliveries"), 2);
    assert_eq!(app.count_rows("events"), 3);
}

async fn handshake(app: &TestApp, query: &str) -> (u16, String) {
    let response = app
        .client
        .get(format!("{}/webhook?{query}", app.address))
        .send()
        .await
        .expect("sent");
    (
        response.status().as_u16(),
        response.text().await.unwrap_or_default(),
    )
}

#[tokio::test]
async fn the_verification_handshake_echoes_the_challenge_only_for_the_right_token() {
    let app = spawn_app("").await;
    let ok = format!("hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=1158201444");
    assert_eq!(handshake(&app, &ok).await, (200, "1158201444".to_owned()));
    for bad in [
        "hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1".to_owned(),
        format!("hub.mode=unsubscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=1"),
        "hub.mode=subscribe&hub.challenge=1".to_owned(),
        format!("hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}"),
        String::new(),
    ] {
        assert_eq!(handshake(&app, &bad).await.0, 403, "{bad}");
    }
}

#[tokio::test]
async fn unique_messages_each_become_a_new_event() {
    let app = spawn_app("").await;
    for n in 0..5 {
        let receipt = app.post_signed(text_message(n)).await;
        assert_eq!(receipt["events"][0]["duplicate"], false);
    }
    assert_eq!(app.count_rows("events"), 5);
}
