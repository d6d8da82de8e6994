//! A delivery Meta dated before the store's memory: answered, not taken again.

use switchboard_testkit::receiver::Receiver;

use crate::helpers::{route, spawn_app_with};

const DAY: i64 = 24 * 3600;

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A text message per `(wamid, timestamp)`, all in one delivery.
fn messages(items: &[(&str, i64)]) -> Vec<u8> {
    let items: Vec<String> = items
        .iter()
        .map(|(id, at)| {
            format!(
                r#"{{"from":"12125550100","id":"{id}","timestamp":"{at}","text":{{"body":"hi"}},"type":"text"}}"#
            )
        })
        .collect();
    format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"102290129340398","changes":[{{"field":"messages","value":{{"messaging_product":"whatsapp","metadata":{{"display_phone_number":"15550783881","phone_number_id":"106540352242922"}},"messages":[{}]}}}}]}}]}}"#,
        items.join(",")
    )
    .into_bytes()
}

#[tokio::test]
async fn a_delivery_dated_past_the_stores_memory_is_answered_and_not_taken_again() {
    let consumer = Receiver::start().await;
    let routes = route("crm", r#"["message"]"#, &consumer.url, "");
    // The default retention, 30 days: a delivery counts as a replay past 29.
    let app = spawn_app_with(&routes, |config| config.ignore_replays = true).await;
    let now = now_secs();

    let old = app
        .post_signed(messages(&[("wamid.old", now - 30 * DAY)]))
        .await;
    assert_eq!(old["replay"], true, "{old}");
    assert_eq!(old["delivery_id"], 0);
    assert_eq!(app.count_rows("deliveries"), 0, "nothing stored");
    assert_eq!(app.count_rows("events"), 0);

    // Meta retries for 7 days: a week-old delivery is taken, and so is one that is old
    // in part.
    let late = app
        .post_signed(messages(&[("wamid.late", now - 8 * DAY)]))
        .await;
    assert!(late.get("replay").is_none(), "{late}");
    let mixed = app
        .post_signed(messages(&[
            ("wamid.mixed-old", now - 40 * DAY),
            ("wamid.mixed-new", now),
        ]))
        .await;
    assert_eq!(mixed["events"].as_array().unwrap().len(), 2, "{mixed}");
    assert_eq!(app.count_rows("deliveries"), 2);

    let received = consumer.wait_for(3).await;
    let mut ids: Vec<String> = received
        .iter()
        .map(|r| {
            r.json()["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    ids.sort();
    assert_eq!(ids, ["wamid.late", "wamid.mixed-new", "wamid.mixed-old"]);

    let metrics = app.metrics().await;
    assert!(
        metrics.contains(r#"switchboard_webhook_deliveries_total{outcome="replay"} 1"#),
        "{metrics}"
    );
}
