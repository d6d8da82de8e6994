//! The calling plane end to end: the router's public API and WebSocket, wa-sim playing
//! Meta and the WhatsApp user with a real WebRTC peer, and a Rust WebRTC peer playing the
//! agent's browser. Audio is measured at both ends.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use serde_json::json;
use switchboard_e2e::path_segment;
use switchboard_e2e::stack::{place, Stack, AGENTS};
use switchboard_protocol::api::{CallLog, CallState};
use switchboard_protocol::sim::SimCall;
use switchboard_protocol::ws::{CallStatus, EndStatus, PermissionResponse, ServerEvent};
use switchboard_testkit::agent::AgentSocket;
use switchboard_testkit::router::RouterConfig;
use switchboard_testkit::sim::business_peer;
use switchboard_testkit::wait::PATIENCE;
use wa_sim::media::{Audio, MediaPeer};

const ASHA: &str = AGENTS[0].1;
const RAVI: &str = AGENTS[1].1;
/// Audible packets each side must hear: 50 × 20 ms is a second of sound.
const HEARD: u64 = 50;

/// The agent's browser, played by a business-side peer that sends a tone.
async fn browser_peer() -> MediaPeer {
    business_peer(Audio::Tone).await
}

/// Waits until both the simulated user and the agent's peer have heard sound.
async fn audio_flows_both_ways(stack: &Stack, call_id: &str, peer: &MediaPeer) -> SimCall {
    let path = format!("/sim/calls/{}", path_segment(call_id));
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let call: SimCall = serde_json::from_value(stack.sim_get(&path).await).unwrap();
        let ours = peer.report();
        if call.media.audible_packets_received >= HEARD && ours.audible_packets_received >= HEARD {
            return call;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no audio both ways: user heard {} audible packets, agent {}",
            call.media.audible_packets_received,
            ours.audible_packets_received
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// One call from permission to call log, told in order: a story, not a step to split.
#[allow(clippy::too_many_lines)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_asks_permission_calls_talks_and_hangs_up_and_the_log_has_it() {
    let stack = Stack::start().await.unwrap();
    stack
        .sim_user(json!({"wa_id": "12125550100", "name": "Asha Verma"}))
        .await;
    let mut socket = stack.socket(ASHA).await;

    // No permission yet: Meta's refusal comes back in words, with its code.
    let peer = browser_peer().await;
    let offer = peer.create_offer().await.unwrap();
    let (status, body) = stack
        .post(ASHA, "/api/calls", place("12125550100", &offer))
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["meta_code"], 138006);

    let (status, body) = stack
        .post(ASHA, "/api/permissions", json!({"to": "12125550100"}))
        .await;
    assert_eq!(status, 202, "{body}");
    let ServerEvent::PermissionUpdated { response, .. } = socket
        .until(|e| matches!(e, ServerEvent::PermissionUpdated { .. }))
        .await
    else {
        unreachable!()
    };
    assert_eq!(response, PermissionResponse::Accept);
    // A second request the same day is refused by the router before Meta hears of it.
    let (status, body) = stack
        .post(ASHA, "/api/permissions", json!({"to": "12125550100"}))
        .await;
    assert_eq!(status, 429, "{body}");
    assert!(body["error"]["retry_at"].as_i64().is_some());

    let (status, body) = stack
        .post(ASHA, "/api/calls", place("12125550100", &offer))
        .await;
    assert_eq!(status, 201, "{body}");
    let call_id = body["call_id"].as_str().unwrap().to_owned();
    let ServerEvent::CallAnswered { sdp, .. } = socket
        .until(|e| matches!(e, ServerEvent::CallAnswered { call_id: id, .. } if *id == call_id))
        .await
    else {
        unreachable!()
    };
    peer.apply_answer(&sdp).await.unwrap();
    socket
        .until(|e| {
            matches!(
                e,
                ServerEvent::CallStatus {
                    status: CallStatus::Accepted,
                    ..
                }
            )
        })
        .await;
    let heard = audio_flows_both_ways(&stack, &call_id, &peer).await;
    assert_eq!(heard.user.wa_id.as_deref(), Some("12125550100"));
    // A second and more of talk, so the call has a duration.
    tokio::time::sleep(Duration::from_millis(1200)).await;

    let (status, body) = stack
        .post(
            ASHA,
            &format!("/api/calls/{}/terminate", path_segment(&call_id)),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let ServerEvent::CallEnded { status, .. } = socket
        .until(|e| matches!(e, ServerEvent::CallEnded { .. }))
        .await
    else {
        unreachable!()
    };
    assert_eq!(status, EndStatus::Completed);
    peer.close().await;

    // Meta's terminate webhook brings its own duration; the log shows the call.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let record = loop {
        let log: CallLog = serde_json::from_value(stack.get(ASHA, "/api/calls").await).unwrap();
        let record = log
            .calls
            .into_iter()
            .find(|c| c.call_id == call_id)
            .unwrap();
        if record.duration.is_some_and(|d| d >= 1) || tokio::time::Instant::now() > deadline {
            break record;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(record.state, CallState::Ended);
    assert_eq!(record.end_status, Some(EndStatus::Completed));
    assert_eq!(record.agent.as_deref(), Some("asha"));
    assert!(record.duration.is_some_and(|d| d >= 1), "{record:?}");
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_users_call_rings_two_agents_one_takes_it_and_the_user_hangs_up() {
    let stack = Stack::start().await.unwrap();
    let mut asha = stack.socket(ASHA).await;
    let mut ravi = stack.socket(RAVI).await;
    let placed = stack
        .sim_post(
            "/sim/calls",
            json!({"from": "12125550100", "name": "Asha Verma"}),
        )
        .await;
    let call_id = placed["call_id"].as_str().unwrap().to_owned();
    let mut offer = String::new();
    for socket in [&mut asha, &mut ravi] {
        let ServerEvent::CallIncoming {
            call_id: id,
            user,
            sdp,
            ..
        } = socket
            .until(|e| matches!(e, ServerEvent::CallIncoming { .. }))
            .await
        else {
            unreachable!()
        };
        assert_eq!(id, call_id);
        assert_eq!(user.name.as_deref(), Some("Asha Verma"));
        offer = sdp;
    }
    let peer = browser_peer().await;
    let answer = peer.answer(&offer).await.unwrap();
    let (status, body) = stack
        .post(
            ASHA,
            &format!("/api/calls/{}/accept", path_segment(&call_id)),
            json!({"sdp": answer}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let ServerEvent::CallClaimed { agent, .. } = ravi
        .until(|e| matches!(e, ServerEvent::CallClaimed { .. }))
        .await
    else {
        unreachable!()
    };
    assert_eq!(agent, "asha");
    // The call is asha's: ravi can neither hang it up nor reject it.
    for action in ["terminate", "reject"] {
        let (status, body) = stack
            .post(
                RAVI,
                &format!("/api/calls/{}/{action}", path_segment(&call_id)),
                json!({}),
            )
            .await;
        assert_eq!(status, 409, "{action}: {body}");
        assert_eq!(body["error"]["code"], "claimed", "{action}");
    }
    audio_flows_both_ways(&stack, &call_id, &peer).await;

    stack
        .sim_post(
            &format!("/sim/calls/{}/hangup", path_segment(&call_id)),
            json!({}),
        )
        .await;
    for socket in [&mut asha, &mut ravi] {
        let ServerEvent::CallEnded { status, .. } = socket
            .until(|e| matches!(e, ServerEvent::CallEnded { .. }))
            .await
        else {
            unreachable!()
        };
        assert_eq!(status, EndStatus::Completed);
    }
    peer.close().await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_agents_accepting_at_once_leaves_exactly_one_on_the_call() {
    let stack = Stack::start().await.unwrap();
    let mut asha: AgentSocket = stack.socket(ASHA).await;
    let placed = stack
        .sim_post("/sim/calls", json!({"from": "12125550101"}))
        .await;
    let call_id = placed["call_id"].as_str().unwrap().to_owned();
    let ServerEvent::CallIncoming { sdp: offer, .. } = asha
        .until(|e| matches!(e, ServerEvent::CallIncoming { .. }))
        .await
    else {
        unreachable!()
    };
    let (peer_a, peer_r) = (browser_peer().await, browser_peer().await);
    let answer_a = peer_a.answer(&offer).await.unwrap();
    let answer_r = peer_r.answer(&offer).await.unwrap();
    let path = format!("/api/calls/{}/accept", path_segment(&call_id));
    let (a, r) = tokio::join!(
        stack.post(ASHA, &path, json!({"sdp": answer_a})),
        stack.post(RAVI, &path, json!({"sdp": answer_r})),
    );
    let mut statuses = [a.0, r.0];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 409], "asha {a:?}, ravi {r:?}");
    let loser = if a.0 == 409 { &a.1 } else { &r.1 };
    assert_eq!(loser["error"]["code"], "claimed");
    let record = stack
        .get(ASHA, &format!("/api/calls/{}", path_segment(&call_id)))
        .await;
    let winner = if a.0 == 200 { "asha" } else { "ravi" };
    assert_eq!(record["agent"], winner);
    peer_a.close().await;
    peer_r.close().await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_quick_calls_to_one_user_place_one_call_at_meta() {
    let stack = Stack::start().await.unwrap();
    stack
        .sim_user(
            json!({"wa_id": "12125550102", "permission": "permanent", "on_call": "no_answer"}),
        )
        .await;
    let (first, second) = (browser_peer().await, browser_peer().await);
    let (offer_1, offer_2) = (
        first.create_offer().await.unwrap(),
        second.create_offer().await.unwrap(),
    );
    let (a, b) = tokio::join!(
        stack.post(ASHA, "/api/calls", place("12125550102", &offer_1)),
        stack.post(RAVI, "/api/calls", place("+12125550102", &offer_2)),
    );
    let mut statuses = [a.0, b.0];
    statuses.sort_unstable();
    assert_eq!(statuses, [201, 409], "{a:?} {b:?}");
    let calls: Vec<SimCall> = serde_json::from_value(stack.sim_get("/sim/calls").await).unwrap();
    assert_eq!(calls.len(), 1, "Meta saw one call: {calls:?}");
    first.close().await;
    second.close().await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metas_refusals_reach_the_agent_with_metas_code() {
    let stack = Stack::start().await.unwrap();
    stack
        .sim_user(
            json!({"wa_id": "12125550103", "permission": "permanent", "on_call": "no_answer"}),
        )
        .await;
    stack
        .sim_user(json!({"wa_id": "12125550104", "on_permission_request": "ignore"}))
        .await;
    let peer = browser_peer().await;
    let offer = peer.create_offer().await.unwrap();
    let (status, _) = stack
        .post(ASHA, "/api/calls", place("12125550103", &offer))
        .await;
    assert_eq!(status, 201);
    let (status, _) = stack
        .post(ASHA, "/api/permissions", json!({"to": "12125550104"}))
        .await;
    assert_eq!(status, 202);

    // The second router knows nothing of either, so only Meta can refuse.
    let other = stack.second_router().await.unwrap();
    let (status, body) = stack
        .post_to(&other.url, ASHA, "/api/calls", place("12125550103", &offer))
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "duplicate_call");
    assert_eq!(body["error"]["meta_code"], 138003);
    let (status, body) = stack
        .post_to(
            &other.url,
            ASHA,
            "/api/permissions",
            json!({"to": "12125550104"}),
        )
        .await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["meta_code"], 138009);
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("138009"));
    // The first router counted the request it sent; the refused one counts for nothing.
    let first = stack.get(ASHA, "/api/permissions/12125550104").await;
    assert!(first["next_request_at"].is_number(), "{first}");
    let second = stack
        .get_from(&other.url, ASHA, "/api/permissions/12125550104")
        .await;
    assert!(second.get("next_request_at").is_none(), "{second}");
    other.stop().await;
    peer.close().await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_calls_a_customer_known_only_by_user_id() {
    let stack = Stack::start().await.unwrap();
    let bsuid = "US.13491208655302741918";
    stack
        .sim_user(json!({"user_id": bsuid, "username": "@pablomorales", "permission": "permanent"}))
        .await;
    let mut socket = stack.socket(ASHA).await;
    let state = stack.get(ASHA, &format!("/api/permissions/{bsuid}")).await;
    assert_eq!(state["status"], "permanent", "{state}");
    let peer = browser_peer().await;
    let offer = peer.create_offer().await.unwrap();
    let (status, body) = stack.post(ASHA, "/api/calls", place(bsuid, &offer)).await;
    assert_eq!(status, 201, "{body}");
    let call_id = body["call_id"].as_str().unwrap().to_owned();
    let ServerEvent::CallAnswered { sdp, .. } = socket
        .until(|e| matches!(e, ServerEvent::CallAnswered { .. }))
        .await
    else {
        unreachable!()
    };
    peer.apply_answer(&sdp).await.unwrap();
    let heard = audio_flows_both_ways(&stack, &call_id, &peer).await;
    assert!(
        heard.user.wa_id.is_none(),
        "Meta shows this user without a number"
    );
    let record = stack
        .get(ASHA, &format!("/api/calls/{}", path_segment(&call_id)))
        .await;
    assert_eq!(record["user"]["user_id"], bsuid);
    assert!(record["user"].get("wa_id").is_none(), "{record}");
    peer.close().await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_reads_and_sets_the_numbers_calling_settings() {
    let stack = Stack::start().await.unwrap();
    let dir = tempfile::TempDir::new().unwrap();
    let config = dir.path().join("switchboard.toml");
    let settings = RouterConfig {
        graph_api_base: stack.sim.clone(),
        ..RouterConfig::new(dir.path().join("data"))
    };
    std::fs::write(&config, settings.toml()).unwrap();
    let binary = switchboard_e2e::workspace_binary("switchboard").unwrap();
    let run = |args: &[&str]| {
        let output = std::process::Command::new(&binary)
            .arg("--config")
            .arg(&config)
            .args(args)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    assert!(run(&["calling", "status"]).contains("calling: ENABLED"));
    assert!(run(&["calling", "disable"]).contains("DISABLED"));
    assert!(run(&["calling", "status"]).contains("calling: DISABLED"));
    // Meta now refuses calls on this number, and the agent is told why.
    let peer = browser_peer().await;
    let offer = peer.create_offer().await.unwrap();
    let (status, body) = stack
        .post(ASHA, "/api/calls", place("12125550100", &offer))
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["meta_code"], 138000);
    assert!(run(&["calling", "enable"]).contains("ENABLED"));
    assert!(run(&["calling", "status"]).contains("calling: ENABLED"));
    peer.close().await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_with_no_agent_here_can_still_be_hung_up() {
    // Another system on the same number places a call; this router only hears webhooks.
    let stack = Stack::start().await.unwrap();
    stack
        .sim_user(
            json!({"wa_id": "12125550105", "permission": "permanent", "on_call": "no_answer"}),
        )
        .await;
    let other = stack.second_router().await.unwrap();
    let peer = browser_peer().await;
    let offer = peer.create_offer().await.unwrap();
    let (status, body) = stack
        .post_to(&other.url, ASHA, "/api/calls", place("12125550105", &offer))
        .await;
    assert_eq!(status, 201, "{body}");
    let call_id = body["call_id"].as_str().unwrap().to_owned();
    let path = format!("/api/calls/{}", path_segment(&call_id));
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let (status, record) = stack.get_status(ASHA, &path).await;
        if status == 200 {
            assert!(record.get("agent").is_none(), "{record}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the call never reached this router"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, body) = stack
        .post(RAVI, &format!("{path}/terminate"), json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "ended");
    let at_meta: SimCall = serde_json::from_value(
        stack
            .sim_get(&format!("/sim/calls/{}", path_segment(&call_id)))
            .await,
    )
    .unwrap();
    assert_eq!(at_meta.state, switchboard_protocol::sim::CallState::Ended);
    other.stop().await;
    peer.close().await;
    stack.stop().await;
}
