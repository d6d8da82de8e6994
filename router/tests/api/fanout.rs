use std::time::Duration;

use switchboard_testkit::meta::sign;
use switchboard_testkit::receiver::{Receiver, Reply};
use switchboard_testkit::server::free_port;
use switchboard_testkit::wait::PATIENCE;

use crate::helpers::{fixture, route, spawn_app, spawn_app_in, text_message, ROUTE_SECRET};

const QUICK_RETRIES: &str = "retry_schedule = [\"200ms\", \"200ms\", \"200ms\", \"200ms\", \"200ms\", \"200ms\", \"200ms\", \"200ms\", \"200ms\", \"200ms\"]";

#[tokio::test]
async fn each_route_gets_the_events_it_asked_for_in_the_form_it_asked_for() {
    let crm = Receiver::start().await;
    let calls = Receiver::start().await;
    let legacy = Receiver::start().await;
    let routes = [
        route(
            "crm",
            r#"["message", "message_status"]"#,
            &crm.url,
            &format!("secret = \"{ROUTE_SECRET}\""),
        ),
        route("calls", r#"["call_status:ringing"]"#, &calls.url, ""),
        route(
            "legacy",
            r#"["call", "call_status"]"#,
            &legacy.url,
            "mode = \"original\"",
        ),
    ]
    .concat();
    let app = spawn_app(&routes).await;
    let body = fixture("12-mixed-batch.json");
    let receipt = app.post_signed(body.clone()).await;

    let mut to_crm = crm.wait_for(2).await;
    to_crm.sort_by_key(|r| {
        r.header("x-switchboard-event")
            .unwrap_or_default()
            .to_owned()
    });
    let kinds: Vec<_> = to_crm
        .iter()
        .map(|r| r.header("x-switchboard-event").unwrap())
        .collect();
    assert_eq!(kinds, ["message:text", "message_status:read"]);
    let verifier = standardwebhooks::Webhook::new(ROUTE_SECRET).unwrap();
    for request in &to_crm {
        // Standard Webhooks headers, checked with the specification's own crate.
        let mut headers = reqwest::header::HeaderMap::new();
        for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
            headers.insert(name, request.header(name).unwrap().parse().unwrap());
        }
        verifier
            .verify(&request.body, &headers)
            .expect("valid signature");
        // Meta's envelope, trimmed to one item.
        let json = request.json();
        let value = &json["entry"][0]["changes"][0]["value"];
        assert_eq!(json["object"], "whatsapp_business_account");
        assert_eq!(value["metadata"]["phone_number_id"], "106540352242922");
        let items = value["messages"]
            .as_array()
            .or(value["statuses"].as_array())
            .unwrap();
        assert_eq!(items.len(), 1);
    }
    let ids: Vec<_> = receipt["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&to_crm[0].header("webhook-id").unwrap()));

    let to_calls = calls.wait_for(1).await;
    assert_eq!(
        to_calls[0].header("x-switchboard-event"),
        Some("call_status:ringing")
    );
    assert!(to_calls[0].header("webhook-signature").is_none());

    let to_legacy = legacy.wait_for(1).await;
    assert_eq!(to_legacy[0].body, body, "original mode sends Meta's bytes");
    assert_eq!(
        to_legacy[0].header("x-hub-signature-256"),
        Some(sign(&body).as_str())
    );

    app.wait_until_idle().await;
    assert_eq!(crm.requests().len(), 2);
    assert_eq!(calls.requests().len(), 1);
    assert_eq!(
        legacy.requests().len(),
        1,
        "one original forward per delivery"
    );
}

#[tokio::test]
async fn original_mode_forwards_the_exact_bytes_and_header_meta_sent() {
    let legacy = Receiver::start().await;
    let app = spawn_app(&route(
        "legacy",
        r#"["*"]"#,
        &legacy.url,
        "mode = \"original\"",
    ))
    .await;
    // Odd spacing and escaped unicode: a parser that re-encodes would change these bytes.
    let body = "{ \"object\" : \"whatsapp_business_account\",\n \"entry\":[{\"id\":\"1\",\"changes\":[{\"field\":\"messages\",\"value\":{\"messages\":[{\"id\":\"wamid.\\u00e9x\",\"type\":\"text\",\"text\":{\"body\":\"caf\\u00e9 \\ud83d\\ude00\"}}]}}]}]   }\n"
        .as_bytes()
        .to_vec();
    let signature = sign(&body);
    let upper = format!(
        "sha256={}",
        signature.trim_start_matches("sha256=").to_uppercase()
    );
    assert_eq!(
        app.post_webhook(body.clone(), Some(&upper)).await.status(),
        200
    );
    let received = legacy.wait_for(1).await;
    assert_eq!(received[0].body, body);
    assert_eq!(
        received[0].header("x-hub-signature-256"),
        Some(upper.as_str())
    );
    assert_eq!(received[0].header("content-type"), Some("application/json"));
}

#[tokio::test]
async fn a_duplicate_delivery_is_forwarded_once() {
    let crm = Receiver::start().await;
    let legacy = Receiver::start().await;
    let routes = [
        route("crm", r#"["message"]"#, &crm.url, ""),
        route(
            "legacy",
            r#"["message"]"#,
            &legacy.url,
            "mode = \"original\"",
        ),
    ]
    .concat();
    let app = spawn_app(&routes).await;
    app.post_signed(text_message(1)).await;
    app.post_signed(text_message(1)).await;
    // The same message inside a different delivery is a duplicate too.
    let mut batch: serde_json::Value = serde_json::from_slice(&text_message(1)).unwrap();
    batch["entry"][0]["time"] = 1.into();
    app.post_signed(serde_json::to_vec(&batch).unwrap()).await;
    app.wait_until_idle().await;
    assert_eq!(crm.requests().len(), 1);
    assert_eq!(legacy.requests().len(), 1);
    assert_eq!(app.jobs("").await.len(), 2);
}

#[tokio::test]
async fn a_consumer_that_comes_back_gets_what_it_missed() {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/hook");
    let app = spawn_app(&route("crm", r#"["message"]"#, &url, QUICK_RETRIES)).await;
    let receipt = app.post_signed(text_message(7)).await;
    // Wait until at least one attempt has failed against the closed port.
    tokio::time::timeout(PATIENCE, async {
        loop {
            let jobs = app.jobs("state=pending").await;
            if jobs.first().is_some_and(|j| j["last_error"].is_string()) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("a failed attempt");
    let consumer = Receiver::start_on(port).await;
    let received = consumer.wait_for(1).await;
    assert_eq!(
        received[0].header("webhook-id"),
        receipt["events"][0]["id"].as_str()
    );
    app.wait_until_idle().await;
    let jobs = app.jobs("").await;
    assert_eq!(jobs[0]["state"], "delivered");
    assert!(jobs[0]["attempts"].as_u64().unwrap() >= 2);
}

#[tokio::test]
async fn retry_after_from_the_consumer_is_honoured() {
    let consumer = Receiver::start().await;
    consumer.answer(Reply::status(503).header("Retry-After", "2"));
    let app = spawn_app(&route(
        "crm",
        r#"["message"]"#,
        &consumer.url,
        QUICK_RETRIES,
    ))
    .await;
    app.post_signed(text_message(1)).await;
    consumer.wait_for(1).await;
    consumer.answer(Reply::ok());
    let received = consumer.wait_for(2).await;
    let gap = received[1].at - received[0].at;
    // The schedule alone would retry after ~200 ms; the consumer asked for 2 s.
    assert!(gap >= Duration::from_millis(1900), "retried after {gap:?}");
    assert_eq!(
        received[0].header("webhook-id"),
        received[1].header("webhook-id")
    );
}

#[tokio::test]
async fn a_dead_or_slow_consumer_does_not_hold_up_the_others() {
    let slow = Receiver::start().await;
    slow.answer(Reply::ok().after(Duration::from_secs(30)));
    let healthy = Receiver::start().await;
    let dead_url = format!("http://127.0.0.1:{}/hook", free_port());
    let routes = [
        route(
            "slow",
            r#"["message"]"#,
            &slow.url,
            "timeout = \"25s\"\nconcurrency = 2",
        ),
        route("dead", r#"["message"]"#, &dead_url, ""),
        route("healthy", r#"["message"]"#, &healthy.url, ""),
    ]
    .concat();
    let app = spawn_app(&routes).await;
    for n in 0..30 {
        app.post_signed(text_message(n)).await;
    }
    // All 30 reach the healthy consumer while the slow one holds two requests open.
    let received = healthy.wait_for(30).await;
    assert_eq!(received.len(), 30);
    assert!(slow.requests().len() <= 2);
}

#[tokio::test]
async fn a_job_that_runs_out_of_retries_is_kept_and_can_be_retried_or_replayed() {
    let consumer = Receiver::start().await;
    consumer.answer(Reply::status(500));
    let app = spawn_app(&route(
        "crm",
        r#"["message"]"#,
        &consumer.url,
        "retry_schedule = [\"50ms\"]",
    ))
    .await;
    let receipt = app.post_signed(text_message(3)).await;
    let event_id = receipt["events"][0]["id"].as_str().unwrap().to_owned();
    consumer.wait_for(2).await;
    app.wait_until_idle().await;
    let failed = app.jobs("state=failed").await;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["attempts"], 2);
    assert_eq!(failed[0]["last_status"], 500);
    assert_eq!(failed[0]["event_id"], event_id.as_str());

    consumer.answer(Reply::ok());
    let job = failed[0]["id"].as_i64().unwrap();
    let response = app
        .admin_post(&format!("/api/deliveries/{job}/retry"))
        .await;
    assert_eq!(response.status(), 200);
    consumer.wait_for(3).await;
    app.wait_until_idle().await;
    assert!(app.jobs("state=failed").await.is_empty());
    // A delivered job cannot be retried, but its event can be replayed.
    let again = app
        .admin_post(&format!("/api/deliveries/{job}/retry"))
        .await;
    assert_eq!(again.status(), 409);
    let replay = app
        .admin_post(&format!("/api/events/{event_id}/replay"))
        .await;
    assert_eq!(replay.status(), 202);
    let received = consumer.wait_for(4).await;
    assert_eq!(received[3].header("webhook-id"), Some(event_id.as_str()));
}

#[tokio::test]
async fn pending_jobs_survive_a_restart() {
    let dir = tempfile::TempDir::new().unwrap();
    let data_dir = dir.path().join("data");
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/hook");
    let routes = route("crm", r#"["message"]"#, &url, QUICK_RETRIES);
    {
        let app = spawn_app_in(&data_dir, &routes).await;
        for n in 0..5 {
            app.post_signed(text_message(n)).await;
        }
        app.stop().await;
    }
    let consumer = Receiver::start_on(port).await;
    let _app = spawn_app_in(&data_dir, &routes).await;
    let received = consumer.wait_for(5).await;
    assert_eq!(received.len(), 5);
}
