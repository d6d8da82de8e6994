//! Call-permission requests, the user's replies, and Meta's limits on requests.

use serde_json::{json, Value};
use switchboard_testkit::sim::business_peer;
use wa_sim::media::Audio;

use crate::helpers::*;

fn permission_request(to: &str) -> Value {
    json!({
        "messaging_product": "whatsapp", "recipient_type": "individual", "to": to,
        "type": "interactive",
        "interactive": {"type": "call_permission_request", "action": {"name": "call_permission_request"},
                        "body": {"text": "We would like to call you about order ON-12853."}}
    })
}

#[tokio::test]
async fn a_permission_request_is_accepted_by_the_user_and_then_the_business_may_call() {
    let sim = spawn_sim().await;
    let (status, sent) = sim
        .post_graph("messages", &permission_request("+12125550100"))
        .await;
    assert_eq!(status, 200, "{sent}");
    assert_eq!(sent["contacts"][0]["input"], "+12125550100");
    assert_eq!(sent["contacts"][0]["wa_id"], "12125550100");
    let wamid = sent["messages"][0]["id"].as_str().unwrap().to_owned();
    assert!(wamid.starts_with("wamid."));

    let reply = sim
        .hooks
        .event_matching("call_permission_reply:accept", |v| {
            v.to_string().contains(&wamid)
        })
        .await;
    let value = &reply["entry"][0]["changes"][0]["value"];
    let message = &value["messages"][0];
    assert_eq!(message["context"]["id"], wamid.as_str());
    assert_eq!(message["from"], "12125550100");
    assert_eq!(message["from_user_id"], value["contacts"][0]["user_id"]);
    let answer = &message["interactive"]["call_permission_reply"];
    assert_eq!(answer["is_permanent"], false);
    assert_eq!(answer["response_source"], "user_action");
    assert!(answer["expiration_timestamp"].is_string());
    for status in ["sent", "delivered", "read"] {
        sim.hooks
            .event(&format!("message_status:{status}"), &wamid)
            .await;
    }

    let (status, permissions) = sim
        .get_graph("call_permissions?user_wa_id=12125550100")
        .await;
    assert_eq!(status, 200, "{permissions}");
    assert_eq!(permissions["permission"]["status"], "temporary");
    assert!(permissions["permission"]["expiration_time"].is_i64());
    assert_eq!(
        permissions["actions"][0]["action_name"],
        "send_call_permission_request"
    );
    assert_eq!(permissions["actions"][0]["can_perform_action"], false);
    assert_eq!(permissions["actions"][1]["can_perform_action"], true);

    let offer = business_peer(Audio::Nothing)
        .await
        .create_offer()
        .await
        .unwrap();
    sim.connect("12125550100", &offer).await;
    sim.assert_every_webhook_verified_and_split_as_sent().await;
    sim.stop().await;
}

#[tokio::test]
async fn a_second_request_within_24_hours_is_refused_with_138009() {
    let sim = spawn_sim().await;
    assert_eq!(
        sim.post_graph("messages", &permission_request("12125550101"))
            .await
            .0,
        200
    );
    let (status, body) = sim
        .post_graph("messages", &permission_request("12125550101"))
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], 138009);
    // A template request counts against the same limit.
    let template = json!({"messaging_product": "whatsapp", "to": "12125550101", "type": "template",
                          "template": {"name": "call_permission_utility", "language": {"code": "en_US"}}});
    let (status, body) = sim.post_graph("messages", &template).await;
    assert_eq!(
        (status, body["error"]["code"].as_i64()),
        (400, Some(138009))
    );
    let (_, permissions) = sim
        .get_graph("call_permissions?user_wa_id=12125550101")
        .await;
    let limits = &permissions["actions"][0]["limits"];
    assert_eq!(limits[0]["time_period"], "PT24H");
    assert_eq!(limits[0]["current_usage"], 1);
    assert!(limits[0]["limit_expiration_time"].is_i64());
    sim.stop().await;
}

#[tokio::test]
async fn a_template_request_to_a_bsuid_gets_a_permanent_grant_from_a_user_set_to_give_one() {
    let sim = spawn_sim().await;
    let (_, user) = sim
        .post_sim(
            "users",
            &json!({"username": "@pablomorales", "on_permission_request": "accept_permanent"}),
        )
        .await;
    let bsuid = user["user"]["user_id"].as_str().unwrap().to_owned();
    let template = json!({"messaging_product": "whatsapp", "recipient": bsuid, "type": "template",
                          "template": {"name": "call_permission_utility", "language": {"code": "en_US"}}});
    let (status, sent) = sim.post_graph("messages", &template).await;
    assert_eq!(status, 200, "{sent}");
    assert_eq!(sent["contacts"][0]["user_id"], bsuid.as_str());
    assert!(sent["contacts"][0].get("wa_id").is_none());
    let reply = sim
        .hooks
        .event("call_permission_reply:accept", &bsuid)
        .await;
    let message = &reply["entry"][0]["changes"][0]["value"]["messages"][0];
    assert!(message.get("from").is_none());
    assert_eq!(
        message["interactive"]["call_permission_reply"]["is_permanent"],
        true
    );
    assert!(message["interactive"]["call_permission_reply"]
        .get("expiration_timestamp")
        .is_none());
    let (_, permissions) = sim
        .get_graph(&format!("call_permissions?recipient={bsuid}"))
        .await;
    assert_eq!(permissions["permission"]["status"], "permanent");
    // With a permanent permission, a new request is refused.
    let (status, body) = sim.post_graph("messages", &template).await;
    assert_eq!(
        (status, body["error"]["code"].as_i64()),
        (400, Some(138017))
    );
    sim.stop().await;
}

#[tokio::test]
async fn a_user_set_to_reject_answers_with_a_reject_reply() {
    let sim = spawn_sim().await;
    sim.post_sim(
        "users",
        &json!({"wa_id": "12125550102", "on_permission_request": "reject"}),
    )
    .await;
    let (_, sent) = sim
        .post_graph("messages", &permission_request("12125550102"))
        .await;
    let wamid = sent["messages"][0]["id"].as_str().unwrap().to_owned();
    sim.hooks
        .event_matching("call_permission_reply:reject", |v| {
            v.to_string().contains(&wamid)
        })
        .await;
    let (_, permissions) = sim
        .get_graph("call_permissions?user_wa_id=12125550102")
        .await;
    assert_eq!(permissions["permission"]["status"], "no_permission");
    sim.stop().await;
}

#[tokio::test]
async fn message_requests_are_validated_like_metas() {
    let sim = spawn_sim().await;
    let cases = [
        json!({"to": "12125550100", "type": "text", "text": {"body": "hi"}}),
        json!({"messaging_product": "whatsapp", "to": "12125550100"}),
        json!({"messaging_product": "whatsapp", "type": "interactive", "interactive": {"type": "call_permission_request", "action": {"name": "call_permission_request"}}}),
        json!({"messaging_product": "whatsapp", "to": "12125550100", "type": "interactive", "interactive": {"type": "button", "action": {"name": "x"}}}),
        json!({"messaging_product": "whatsapp", "to": "12125550100", "type": "sticker"}),
        json!({"messaging_product": "whatsapp", "to": "12125550100", "type": "template", "template": {"name": "", "language": {"code": "en"}}}),
    ];
    for body in cases {
        let (status, response) = sim.post_graph("messages", &body).await;
        assert_eq!(
            (status, response["error"]["code"].as_i64()),
            (400, Some(100)),
            "{body}: {response}"
        );
    }
    let (status, response) = sim.get_graph("call_permissions").await;
    assert_eq!(
        (status, response["error"]["code"].as_i64()),
        (400, Some(100))
    );
    sim.stop().await;
}
