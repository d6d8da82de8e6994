//! Webhook delivery: signed, in Meta's envelope, retried when not answered 200.

use serde_json::json;
use switchboard_testkit::wait::PATIENCE;

use crate::helpers::*;

#[tokio::test]
async fn webhooks_not_answered_200_are_retried_and_every_attempt_is_recorded() {
    let sim = spawn_sim().await;
    sim.hooks.fail_next(&[500, 503]);
    let (_, placed) = sim
        .post_sim(
            "calls",
            &json!({"from": "12125550100", "name": "Ravi Kümar"}),
        )
        .await;
    let call_id = placed["call_id"].as_str().unwrap().to_owned();
    sim.hooks.event("call:connect", &call_id).await;

    let records = sim.records_once_delivered().await;
    let record = records
        .iter()
        .find(|r| r.events == ["call:connect"])
        .unwrap();
    let statuses: Vec<Option<u16>> = record.attempts.iter().map(|a| a.status).collect();
    assert_eq!(statuses, [Some(500), Some(503), Some(200)]);
    assert!(record.delivered);
    // Each attempt carried the same signed bytes.
    let copies: Vec<_> = sim
        .hooks
        .deliveries()
        .into_iter()
        .filter(|d| d.signature == record.signature)
        .collect();
    assert_eq!(copies.len(), 3);
    sim.assert_every_webhook_verified_and_split_as_sent().await;
    sim.stop().await;
}

#[tokio::test]
async fn webhook_bodies_escape_like_metas_and_still_verify() {
    let sim = spawn_sim().await;
    let (_, placed) = sim
        .post_sim(
            "calls",
            &json!({"from": "12125550100", "name": "Ravi Kümar 📞"}),
        )
        .await;
    let call_id = placed["call_id"].as_str().unwrap().to_owned();
    let connect = sim.hooks.event("call:connect", &call_id).await;
    assert_eq!(
        connect["entry"][0]["changes"][0]["value"]["contacts"][0]["profile"]["name"],
        "Ravi Kümar 📞"
    );
    let raw = sim
        .webhook_records()
        .await
        .into_iter()
        .find(|r| r.events == ["call:connect"])
        .unwrap();
    // The record shows the parsed body; the bytes on the wire were escaped, and the
    // receiver verified them (checked below).
    assert_eq!(
        raw.body["entry"][0]["changes"][0]["value"]["contacts"][0]["profile"]["name"],
        "Ravi Kümar 📞"
    );
    sim.assert_every_webhook_verified_and_split_as_sent().await;
    sim.stop().await;
}

#[tokio::test]
async fn an_unreachable_router_is_recorded_as_failed_attempts() {
    let sim = spawn_sim_with(|config| {
        // Nothing listens on port 9 of loopback.
        config.webhook_url = "http://127.0.0.1:9/webhook".into();
        config.webhook_retries = vec![std::time::Duration::from_millis(10)];
    })
    .await;
    sim.post_sim("calls", &json!({"from": "12125550100"})).await;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let records = sim.webhook_records().await;
        if let Some(record) = records.first().filter(|r| r.attempts.len() == 2) {
            assert!(!record.delivered);
            assert!(record
                .attempts
                .iter()
                .all(|a| a.status.is_none() && a.error.is_some()));
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{records:?}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    sim.stop().await;
}
