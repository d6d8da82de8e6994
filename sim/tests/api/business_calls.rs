//! The business calls a user: connect, ringing, pick-up, audio both ways, hang-up.

use serde_json::json;
use switchboard_protocol::sim::CallState;
use switchboard_testkit::sim::business_peer;
use wa_sim::media::Audio;

use crate::helpers::*;

#[tokio::test]
async fn a_business_call_is_answered_and_audio_flows_both_ways() {
    let sim = spawn_sim().await;
    sim.callable_user("12125550100").await;
    let business = business_peer(Audio::Tone).await;
    let offer = business.create_offer().await.unwrap();
    let call_id = sim.connect("12125550100", &offer).await;

    let connect = sim.hooks.event("call:connect", &call_id).await;
    let call = &connect["entry"][0]["changes"][0]["value"]["calls"][0];
    assert_eq!(call["direction"], "BUSINESS_INITIATED");
    assert_eq!(call["to"], "12125550100");
    assert!(call["to_user_id"].as_str().unwrap().starts_with("US."));
    assert_eq!(call["session"]["sdp_type"], "answer");
    let answer = call["session"]["sdp"].as_str().unwrap();
    assert_meta_like_sdp(answer, "a=setup:active");
    business.apply_answer(answer).await.unwrap();

    sim.hooks.event("call_status:ringing", &call_id).await;
    sim.hooks.event("call_status:accepted", &call_id).await;
    let heard = sim
        .call_until(&call_id, "the user hears the business", |c| {
            c.media.audible_packets_received >= 25
        })
        .await;
    assert_eq!(heard.state, CallState::Accepted);
    until_heard(&business, 25).await;
    assert!(heard.media.packets_sent > 0 && heard.media.bytes_received > 0);

    let (status, body) = sim
        .post_graph(
            "calls",
            &json!({"messaging_product": "whatsapp", "call_id": call_id, "action": "terminate"}),
        )
        .await;
    assert_eq!((status, body["success"].as_bool()), (200, Some(true)));
    let terminate = sim.hooks.event("call:terminate", &call_id).await;
    let call = &terminate["entry"][0]["changes"][0]["value"]["calls"][0];
    assert_eq!(call["status"], "COMPLETED");
    assert!(call["start_time"].is_string() && call["end_time"].is_string());
    assert!(call["duration"].is_u64());
    assert_eq!(
        sim.hooks.kinds_for(&call_id),
        [
            "call:connect",
            "call_status:ringing",
            "call_status:accepted",
            "call:terminate"
        ]
    );
    let ended = sim.call(&call_id).await;
    assert_eq!(ended.state, CallState::Ended);
    assert_eq!(ended.end_reason.as_deref(), Some("business_terminated"));
    sim.assert_every_webhook_verified_and_split_as_sent().await;
    business.close().await;
    sim.stop().await;
}

#[tokio::test]
async fn a_user_who_declines_sends_rejected_then_terminate() {
    let sim = spawn_sim().await;
    sim.post_sim(
        "users",
        &json!({"wa_id": "12125550101", "permission": "temporary", "on_call": "reject"}),
    )
    .await;
    let business = business_peer(Audio::Tone).await;
    let call_id = sim
        .connect("12125550101", &business.create_offer().await.unwrap())
        .await;
    let terminate = sim.hooks.event("call:terminate", &call_id).await;
    let call = &terminate["entry"][0]["changes"][0]["value"]["calls"][0];
    assert_eq!(call["status"], "FAILED");
    assert!(
        call.get("duration").is_none(),
        "no duration for a call never answered"
    );
    assert_eq!(
        sim.hooks.kinds_for(&call_id),
        [
            "call:connect",
            "call_status:ringing",
            "call_status:rejected",
            "call:terminate"
        ]
    );
    sim.assert_every_webhook_verified_and_split_as_sent().await;
    sim.stop().await;
}

#[tokio::test]
async fn an_unanswered_call_ends_after_the_ring_timeout() {
    let sim = spawn_sim().await;
    sim.post_sim(
        "users",
        &json!({"wa_id": "12125550102", "permission": "permanent", "on_call": "no_answer"}),
    )
    .await;
    let business = business_peer(Audio::Tone).await;
    let call_id = sim
        .connect("12125550102", &business.create_offer().await.unwrap())
        .await;
    let terminate = sim.hooks.event("call:terminate", &call_id).await;
    assert_eq!(
        terminate["entry"][0]["changes"][0]["value"]["calls"][0]["status"],
        "FAILED"
    );
    assert_eq!(
        sim.hooks.kinds_for(&call_id),
        ["call:connect", "call_status:ringing", "call:terminate"]
    );
    assert_eq!(
        sim.call(&call_id).await.end_reason.as_deref(),
        Some("not_answered")
    );
    sim.stop().await;
}

#[tokio::test]
async fn a_user_without_a_visible_number_is_called_by_bsuid_and_never_shown_with_one() {
    let sim = spawn_sim().await;
    let (_, user) = sim
        .post_sim(
            "users",
            &json!({"username": "@pablomorales", "permission": "permanent"}),
        )
        .await;
    let bsuid = user["user"]["user_id"].as_str().unwrap().to_owned();
    assert!(user["user"].get("wa_id").is_none());
    let business = business_peer(Audio::Tone).await;
    let offer = business.create_offer().await.unwrap();
    let (status, body) = sim
        .post_graph(
            "calls",
            &json!({"messaging_product": "whatsapp", "recipient": bsuid, "action": "connect",
                    "session": {"sdp_type": "offer", "sdp": offer}, "biz_opaque_callback_data": "order-42"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let call_id = body["calls"][0]["id"].as_str().unwrap().to_owned();
    let ringing = sim.hooks.event("call_status:ringing", &call_id).await;
    let value = &ringing["entry"][0]["changes"][0]["value"];
    assert!(value["statuses"][0].get("recipient_id").is_none());
    assert_eq!(value["statuses"][0]["recipient_user_id"], bsuid.as_str());
    assert_eq!(value["statuses"][0]["biz_opaque_callback_data"], "order-42");
    assert_eq!(value["contacts"][0]["user_id"], bsuid.as_str());
    assert_eq!(value["contacts"][0]["profile"]["username"], "@pablomorales");
    assert!(value["contacts"][0].get("wa_id").is_none());
    let connect = sim.hooks.event("call:connect", &call_id).await;
    let call = &connect["entry"][0]["changes"][0]["value"]["calls"][0];
    assert!(call.get("to").is_none());
    assert_eq!(call["to_user_id"], bsuid.as_str());
    sim.post_graph(
        "calls",
        &json!({"messaging_product": "whatsapp", "call_id": call_id, "action": "terminate"}),
    )
    .await;
    sim.hooks.event("call:terminate", &call_id).await;
    sim.assert_every_webhook_verified_and_split_as_sent().await;
    sim.stop().await;
}

#[tokio::test]
async fn silence_from_the_business_is_counted_but_not_heard() {
    let sim = spawn_sim().await;
    sim.callable_user("12125550103").await;
    let business = business_peer(Audio::Silence).await;
    let call_id = sim
        .connect("12125550103", &business.create_offer().await.unwrap())
        .await;
    let connect = sim.hooks.event("call:connect", &call_id).await;
    let answer = connect["entry"][0]["changes"][0]["value"]["calls"][0]["session"]["sdp"]
        .as_str()
        .unwrap()
        .to_owned();
    business.apply_answer(&answer).await.unwrap();
    let call = sim
        .call_until(&call_id, "50 packets received", |c| {
            c.media.packets_received >= 50
        })
        .await;
    assert_eq!(call.media.audible_packets_received, 0, "{:?}", call.media);
    // The user's tone still reaches the business.
    until_heard(&business, 10).await;
    sim.post_sim(&format!("calls/{call_id}/hangup"), &json!({}))
        .await;
    let terminate = sim.hooks.event("call:terminate", &call_id).await;
    assert_eq!(
        terminate["entry"][0]["changes"][0]["value"]["calls"][0]["status"],
        "COMPLETED"
    );
    sim.stop().await;
}
