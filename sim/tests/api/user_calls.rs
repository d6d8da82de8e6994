//! The user calls the business: the offer arrives, the business pre-accepts and accepts
//! (or not), audio flows, and the call ends.

use std::time::Duration;

use serde_json::json;
use switchboard_protocol::sim::CallState;
use switchboard_testkit::sim::business_peer;
use wa_sim::media::Audio;

use crate::helpers::*;

#[tokio::test]
async fn a_user_call_is_pre_accepted_then_accepted_and_audio_flows_both_ways() {
    let sim = spawn_sim().await;
    let (status, placed) = sim
        .post_sim(
            "calls",
            &json!({"from": "12125550100", "name": "Asha Verma"}),
        )
        .await;
    assert_eq!(status, 201, "{placed}");
    let call_id = placed["call_id"].as_str().unwrap().to_owned();

    let connect = sim.hooks.event("call:connect", &call_id).await;
    let value = &connect["entry"][0]["changes"][0]["value"];
    assert_eq!(value["contacts"][0]["profile"]["name"], "Asha Verma");
    assert_eq!(value["contacts"][0]["wa_id"], "12125550100");
    let call = &value["calls"][0];
    assert_eq!(call["direction"], "USER_INITIATED");
    assert_eq!(call["from"], "12125550100");
    assert_eq!(call["to"], "15550783881");
    assert_eq!(call["from_user_id"], value["contacts"][0]["user_id"]);
    assert_eq!(call["session"]["sdp_type"], "offer");
    let offer = call["session"]["sdp"].as_str().unwrap();
    assert_meta_like_sdp(offer, "a=setup:actpass");

    let business = business_peer(Audio::Tone).await;
    let answer = business.answer(offer).await.unwrap();
    assert!(answer.contains("a=setup:active"), "{answer}");
    let (status, body) = sim
        .post_graph("calls", &answer_body("pre_accept", &call_id, &answer))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(sim.call(&call_id).await.state, CallState::PreAccepted);
    let (status, body) = sim
        .post_graph("calls", &answer_body("accept", &call_id, &answer))
        .await;
    assert_eq!(status, 200, "{body}");

    let heard = sim
        .call_until(&call_id, "the user hears the business", |c| {
            c.media.audible_packets_received >= 25
        })
        .await;
    assert_eq!(heard.state, CallState::Accepted);
    until_heard(&business, 25).await;

    let (status, ended) = sim
        .post_sim(&format!("calls/{call_id}/hangup"), &json!({}))
        .await;
    assert_eq!(status, 200, "{ended}");
    assert_eq!(ended["end_reason"], "user_hung_up");
    let terminate = sim.hooks.event("call:terminate", &call_id).await;
    let call = &terminate["entry"][0]["changes"][0]["value"]["calls"][0];
    assert_eq!(call["status"], "COMPLETED");
    assert_eq!(call["direction"], "USER_INITIATED");
    assert!(call["duration"].is_u64() && call["start_time"].is_string());
    assert_eq!(
        sim.hooks.kinds_for(&call_id),
        ["call:connect", "call:terminate"]
    );
    sim.assert_every_webhook_verified_and_split_as_sent().await;
    business.close().await;
    sim.stop().await;
}

#[tokio::test]
async fn a_call_the_business_sends_no_media_to_fails_with_138021() {
    let sim = spawn_sim_with(|config| config.timings.media_timeout = Duration::from_secs(2)).await;
    let (_, placed) = sim.post_sim("calls", &json!({"from": "12125550104"})).await;
    let call_id = placed["call_id"].as_str().unwrap().to_owned();
    let connect = sim.hooks.event("call:connect", &call_id).await;
    let offer = connect["entry"][0]["changes"][0]["value"]["calls"][0]["session"]["sdp"]
        .as_str()
        .unwrap()
        .to_owned();
    // The field bug: the answer is sent, but no microphone track ever sends audio.
    let business = business_peer(Audio::Nothing).await;
    let answer = business.answer(&offer).await.unwrap();
    sim.post_graph("calls", &answer_body("pre_accept", &call_id, &answer))
        .await;
    let (status, _) = sim
        .post_graph("calls", &answer_body("accept", &call_id, &answer))
        .await;
    assert_eq!(status, 200);

    let terminate = sim.hooks.event("call:terminate", &call_id).await;
    let value = &terminate["entry"][0]["changes"][0]["value"];
    let call = &value["calls"][0];
    assert_eq!(call["status"], "FAILED");
    assert_eq!(call["errors"][0]["code"], 138021);
    assert_eq!(value["errors"][0]["code"], 138021);
    assert!(call["duration"].is_u64(), "the call was answered");
    let ended = sim.call(&call_id).await;
    assert_eq!(ended.end_reason.as_deref(), Some("media_timeout"));
    assert_eq!(ended.error_code, Some(138021));
    assert_eq!(ended.media.packets_received, 0);
    // The user's side did send: the failure is the business's silence, not the link.
    until_heard(&business, 1).await;
    sim.assert_every_webhook_verified_and_split_as_sent().await;
    sim.stop().await;
}

#[tokio::test]
async fn a_user_without_a_visible_number_calls_with_only_a_bsuid_and_username() {
    let sim = spawn_sim().await;
    let (status, placed) = sim
        .post_sim(
            "calls",
            &json!({"user_id": "US.13491208655302741918", "username": "@pablomorales"}),
        )
        .await;
    assert_eq!(status, 201, "{placed}");
    let call_id = placed["call_id"].as_str().unwrap().to_owned();
    let connect = sim.hooks.event("call:connect", &call_id).await;
    let value = &connect["entry"][0]["changes"][0]["value"];
    let call = &value["calls"][0];
    assert!(call.get("from").is_none(), "{call}");
    assert_eq!(call["from_user_id"], "US.13491208655302741918");
    assert_eq!(value["contacts"][0]["user_id"], "US.13491208655302741918");
    assert_eq!(value["contacts"][0]["profile"]["username"], "@pablomorales");
    assert!(value["contacts"][0].get("wa_id").is_none());
    let (status, _) = sim
        .post_graph(
            "calls",
            &json!({"messaging_product": "whatsapp", "call_id": call_id, "action": "reject"}),
        )
        .await;
    assert_eq!(status, 200);
    let terminate = sim.hooks.event("call:terminate", &call_id).await;
    let call = &terminate["entry"][0]["changes"][0]["value"]["calls"][0];
    assert_eq!(call["status"], "FAILED");
    assert!(call.get("from").is_none());
    sim.assert_every_webhook_verified_and_split_as_sent().await;
    sim.stop().await;
}

#[tokio::test]
async fn a_user_call_nobody_accepts_ends_after_the_accept_timeout() {
    let sim =
        spawn_sim_with(|config| config.timings.accept_timeout = Duration::from_millis(500)).await;
    let (_, placed) = sim.post_sim("calls", &json!({"from": "12125550105"})).await;
    let call_id = placed["call_id"].as_str().unwrap().to_owned();
    let terminate = sim.hooks.event("call:terminate", &call_id).await;
    assert_eq!(
        terminate["entry"][0]["changes"][0]["value"]["calls"][0]["status"],
        "FAILED"
    );
    assert_eq!(
        sim.call(&call_id).await.end_reason.as_deref(),
        Some("not_answered")
    );
    sim.stop().await;
}

#[tokio::test]
async fn a_user_cannot_place_a_second_call_while_on_one() {
    let sim = spawn_sim().await;
    let (status, _) = sim.post_sim("calls", &json!({"from": "12125550106"})).await;
    assert_eq!(status, 201);
    let (status, body) = sim.post_sim("calls", &json!({"from": "12125550106"})).await;
    assert_eq!(status, 409, "{body}");
    let (status, body) = sim.post_sim("calls", &json!({})).await;
    assert_eq!(status, 400, "{body}");
    sim.stop().await;
}
