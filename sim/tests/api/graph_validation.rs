//! Graph requests are checked the way Meta checks them, and refused with Meta's error
//! envelope, code and HTTP status.

use serde_json::{json, Value};
use switchboard_testkit::meta::ACCESS_TOKEN;
use switchboard_testkit::sim::business_peer;
use wa_sim::media::Audio;

use crate::helpers::*;

/// Meta's envelope with `code`; returns `error_data.details`.
fn assert_meta_error(status: u16, body: &Value, expected_status: u16, code: i64) -> String {
    assert_eq!(status, expected_status, "{body}");
    let error = &body["error"];
    assert_eq!(error["code"], code, "{body}");
    assert_eq!(error["type"], "OAuthException");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .starts_with(&format!("(#{code})")),
        "{body}"
    );
    assert!(error["fbtrace_id"].is_string());
    error["error_data"]["details"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

async fn offer() -> String {
    business_peer(Audio::Nothing)
        .await
        .create_offer()
        .await
        .unwrap()
}

#[tokio::test]
async fn requests_without_the_right_bearer_token_get_401_with_code_190() {
    let sim = spawn_sim().await;
    let body = connect_body("12125550100", "v=0");
    for token in [None, Some("wrong"), Some("")] {
        let mut request = sim.client.post(sim.graph("calls")).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        assert_meta_error(status, &body, 401, 190);
    }
    let response = sim.client.get(sim.graph("settings")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 401);
    sim.stop().await;
}

#[tokio::test]
async fn a_phone_number_id_the_simulator_does_not_serve_is_an_unknown_object() {
    let sim = spawn_sim().await;
    let response = sim
        .client
        .post(format!("{}/v23.0/999/calls", sim.base))
        .bearer_auth(ACCESS_TOKEN)
        .json(&connect_body("12125550100", "v=0"))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    assert_meta_error(status, &body, 400, 100);
    assert_eq!(body["error"]["error_subcode"], 33);
    sim.stop().await;
}

#[tokio::test]
async fn call_requests_with_missing_or_malformed_fields_are_refused_with_code_100() {
    let sim = spawn_sim().await;
    let offer = offer().await;
    let cases = [
        (
            json!({"action": "connect", "to": "12125550100"}),
            "messaging_product",
        ),
        (
            json!({"messaging_product": "whatsapp", "to": "12125550100"}),
            "action",
        ),
        (
            json!({"messaging_product": "whatsapp", "action": "dial"}),
            "must be one of",
        ),
        (
            json!({"messaging_product": "whatsapp", "action": "connect", "session": {"sdp_type": "offer", "sdp": offer}}),
            "parameter to",
        ),
        (
            json!({"messaging_product": "whatsapp", "action": "connect", "to": "12125550100"}),
            "session",
        ),
        (
            json!({"messaging_product": "whatsapp", "action": "connect", "to": "call me", "session": {"sdp_type": "offer", "sdp": offer}}),
            "Param to",
        ),
        (
            json!({"messaging_product": "whatsapp", "action": "connect", "recipient": "pablo", "session": {"sdp_type": "offer", "sdp": offer}}),
            "Param recipient",
        ),
        (
            json!({"messaging_product": "whatsapp", "action": "connect", "to": "12125550100", "session": {"sdp_type": "answer", "sdp": offer}}),
            "sdp_type",
        ),
        (
            json!({"messaging_product": "whatsapp", "action": "accept", "session": {"sdp_type": "answer", "sdp": offer}}),
            "call_id",
        ),
        (
            json!({"messaging_product": "whatsapp", "action": "terminate"}),
            "call_id",
        ),
        (
            json!({"messaging_product": "whatsapp", "action": "connect", "to": "12125550100", "session": {"sdp_type": "offer", "sdp": offer}, "biz_opaque_callback_data": "x".repeat(513)}),
            "512",
        ),
    ];
    for (body, expected) in cases {
        let (status, response) = sim.post_graph("calls", &body).await;
        let details = assert_meta_error(status, &response, 400, 100);
        assert!(details.contains(expected), "{body}: {details}");
    }
    sim.stop().await;
}

#[tokio::test]
async fn a_bad_sdp_is_refused_with_code_100_and_the_reason() {
    let sim = spawn_sim().await;
    sim.callable_user("12125550100").await;
    let offer = offer().await;
    let fingerprint = offer
        .lines()
        .find(|l| l.starts_with("a=fingerprint:"))
        .unwrap()
        .to_owned();
    let cases = [
        ("hello".to_owned(), "v=0"),
        (
            offer.replace(&format!("{fingerprint}\r\n"), ""),
            "fingerprint",
        ),
        (
            offer.replace(&fingerprint, &format!("{fingerprint}\r\n{fingerprint}")),
            "more than one",
        ),
        (offer.replace("opus/48000/2", "PCMU/8000"), "Opus"),
        (offer.replace("m=audio", "m=video"), "m=audio"),
    ];
    for (sdp, expected) in cases {
        let (status, response) = sim
            .post_graph("calls", &connect_body("12125550100", &sdp))
            .await;
        let details = assert_meta_error(status, &response, 400, 100);
        assert!(details.contains("SDP validation error"), "{details}");
        assert!(details.contains(expected), "{expected}: {details}");
    }
    sim.stop().await;
}

#[tokio::test]
async fn calling_a_user_without_permission_is_refused_with_138006() {
    let sim = spawn_sim().await;
    let (status, body) = sim
        .post_graph("calls", &connect_body("12125550199", &offer().await))
        .await;
    assert_meta_error(status, &body, 401, 138006);
    sim.stop().await;
}

#[tokio::test]
async fn a_second_call_to_a_user_with_a_live_call_is_refused_with_138003() {
    let sim = spawn_sim().await;
    sim.callable_user("12125550100").await;
    sim.connect("12125550100", &offer().await).await;
    let (status, body) = sim
        .post_graph("calls", &connect_body("12125550100", &offer().await))
        .await;
    assert_meta_error(status, &body, 400, 138003);
    // The same user addressed by BSUID is the same user.
    let users: Value = sim
        .client
        .get(format!("{}/sim/users", sim.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let bsuid = users[0]["user"]["user_id"].as_str().unwrap();
    let (status, body) = sim
        .post_graph(
            "calls",
            &json!({"messaging_product": "whatsapp", "recipient": bsuid, "action": "connect",
                    "session": {"sdp_type": "offer", "sdp": offer().await}}),
        )
        .await;
    assert_meta_error(status, &body, 400, 138003);
    sim.stop().await;
}

#[tokio::test]
async fn concurrent_connects_to_one_user_place_exactly_one_call() {
    let sim = spawn_sim().await;
    sim.callable_user("12125550100").await;
    let (a, b) = (offer().await, offer().await);
    let (a, b) = (
        connect_body("12125550100", &a),
        connect_body("12125550100", &b),
    );
    let (first, second) = tokio::join!(sim.post_graph("calls", &a), sim.post_graph("calls", &b));
    let mut statuses = [first.0, second.0];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 400], "{first:?} {second:?}");
    sim.stop().await;
}

#[tokio::test]
async fn accept_with_an_sdp_other_than_pre_accepts_is_refused() {
    let sim = spawn_sim().await;
    let (_, placed) = sim.post_sim("calls", &json!({"from": "12125550100"})).await;
    let call_id = placed["call_id"].as_str().unwrap().to_owned();
    let connect = sim.hooks.event("call:connect", &call_id).await;
    let offer = connect["entry"][0]["changes"][0]["value"]["calls"][0]["session"]["sdp"]
        .as_str()
        .unwrap()
        .to_owned();
    let business = business_peer(Audio::Tone).await;
    let answer = business.answer(&offer).await.unwrap();
    let (status, _) = sim
        .post_graph("calls", &answer_body("pre_accept", &call_id, &answer))
        .await;
    assert_eq!(status, 200);
    let other = business_peer(Audio::Tone)
        .await
        .answer(&offer)
        .await
        .unwrap();
    let (status, body) = sim
        .post_graph("calls", &answer_body("accept", &call_id, &other))
        .await;
    let details = assert_meta_error(status, &body, 400, 100);
    assert!(
        details.contains("differs from the SDP sent with pre_accept"),
        "{details}"
    );
    // An answer that keeps `actpass` is a DTLS role error.
    let actpass = answer.replace("a=setup:active", "a=setup:actpass");
    let (status, body) = sim
        .post_graph("calls", &answer_body("accept", &call_id, &actpass))
        .await;
    assert!(assert_meta_error(status, &body, 400, 100).contains("actpass"));
    // The right SDP still works.
    let (status, _) = sim
        .post_graph("calls", &answer_body("accept", &call_id, &answer))
        .await;
    assert_eq!(status, 200);
    let (status, body) = sim
        .post_graph("calls", &answer_body("accept", &call_id, &answer))
        .await;
    assert!(assert_meta_error(status, &body, 400, 100).contains("already in progress"));
    sim.stop().await;
}

#[tokio::test]
async fn actions_on_an_unknown_call_id_are_refused_with_code_100() {
    let sim = spawn_sim().await;
    let answer = offer().await.replace("a=setup:actpass", "a=setup:active");
    let bodies = [
        answer_body("pre_accept", "wacid.nope", &answer),
        answer_body("accept", "wacid.nope", &answer),
        json!({"messaging_product": "whatsapp", "call_id": "wacid.nope", "action": "reject"}),
        json!({"messaging_product": "whatsapp", "call_id": "wacid.nope", "action": "terminate"}),
    ];
    for body in bodies {
        let (status, response) = sim.post_graph("calls", &body).await;
        let details = assert_meta_error(status, &response, 400, 100);
        assert!(details.contains("wacid.nope"), "{details}");
    }
    sim.stop().await;
}

#[tokio::test]
async fn ended_calls_cannot_be_terminated_again_and_business_calls_cannot_be_accepted() {
    let sim = spawn_sim().await;
    sim.callable_user("12125550100").await;
    let call_id = sim.connect("12125550100", &offer().await).await;
    let answer = offer().await.replace("a=setup:actpass", "a=setup:active");
    let (status, body) = sim
        .post_graph("calls", &answer_body("accept", &call_id, &answer))
        .await;
    assert!(assert_meta_error(status, &body, 400, 100).contains("user-initiated"));
    let terminate =
        json!({"messaging_product": "whatsapp", "call_id": call_id, "action": "terminate"});
    assert_eq!(sim.post_graph("calls", &terminate).await.0, 200);
    let (status, body) = sim.post_graph("calls", &terminate).await;
    assert!(assert_meta_error(status, &body, 400, 100).contains("already ended"));
    sim.stop().await;
}

#[tokio::test]
async fn calling_disabled_in_settings_refuses_calls_with_138000() {
    let sim = spawn_sim().await;
    sim.callable_user("12125550100").await;
    let (status, settings) = sim.get_graph("settings").await;
    assert_eq!(status, 200);
    assert_eq!(settings["calling"]["status"], "ENABLED");
    let (status, body) = sim
        .post_graph("settings", &json!({"calling": {"status": "DISABLED"}}))
        .await;
    assert_eq!((status, body["success"].as_bool()), (200, Some(true)));
    assert_eq!(
        sim.get_graph("settings").await.1["calling"]["status"],
        "DISABLED"
    );
    let (status, body) = sim
        .post_graph("calls", &connect_body("12125550100", &offer().await))
        .await;
    assert_meta_error(status, &body, 401, 138000);
    let (status, _) = sim.post_sim("calls", &json!({"from": "12125550100"})).await;
    assert_eq!(status, 409);
    let (status, body) = sim
        .post_graph("settings", &json!({"calling": {"status": "SOMETIMES"}}))
        .await;
    assert_meta_error(status, &body, 400, 100);
    sim.stop().await;
}
