use std::time::Duration;

use switchboard_testkit::receiver::Receiver;
use switchboard_testkit::wait::poll;

use crate::helpers::{route, spawn_app, text_message};

#[tokio::test]
async fn liveness_and_readiness_answer_ok() {
    let app = spawn_app("").await;
    for path in ["/healthz", "/readyz"] {
        let response = app
            .client
            .get(format!("{}{path}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
}

#[tokio::test]
async fn metrics_count_deliveries_events_and_forwards() {
    let consumer = Receiver::start().await;
    let app = spawn_app(&route("crm", r#"["message"]"#, &consumer.url, "")).await;
    app.post_signed(text_message(1)).await;
    app.post_signed(text_message(1)).await;
    let refused = app.post_webhook(text_message(2), None).await;
    assert_eq!(refused.status(), 401);
    consumer.wait_for(1).await;
    app.wait_until_idle().await;
    // The queue depth is read in the background, not per scrape: it shows the empty
    // queue at the next read.
    let text = poll(Duration::from_millis(100), async || {
        let text = app.metrics().await;
        text.contains("switchboard_queue_depth{route=\"crm\"} 0")
            .then_some(text)
    })
    .await
    .expect("the queue depth is read again");
    for line in [
        "switchboard_webhook_deliveries_total{outcome=\"accepted\"} 2",
        "switchboard_webhook_deliveries_total{outcome=\"bad_signature\"} 1",
        "switchboard_events_total{kind=\"message:text\"} 2",
        "switchboard_duplicate_events_total 1",
        "switchboard_forwards_total{outcome=\"delivered\",route=\"crm\"} 1",
        "switchboard_forward_duration_seconds_count{route=\"crm\"} 1",
        "switchboard_queue_depth{route=\"crm\"} 0",
    ] {
        assert!(text.contains(line), "missing `{line}` in:\n{text}");
    }
}
