//! The dialer in headless Chromium (fake microphone) against the real router and wa-sim
//! as processes: what an agent does all day, with audio measured at both ends.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use serde_json::{json, Value};
use switchboard_e2e::browser::Browser;
use switchboard_e2e::product::{path_segment, Product, AGENTS};
use switchboard_e2e::workspace_root;
use switchboard_testkit::wait::PATIENCE;

const HEARD: u64 = 50;

async fn signed_in(product: &Product, name: &str, token: &str) -> Browser {
    let browser = Browser::start(name, &product.log_dir).await.unwrap();
    browser.client.goto(&product.router).await.unwrap();
    // The page marks itself ready once the dialer has started and shows its form.
    browser
        .wait_for_attribute("body", "data-ready", "true")
        .await
        .unwrap();
    browser.type_into("#token", token).await.unwrap();
    browser.click("#sign-in").await.unwrap();
    browser
        .wait_for_text("#agent-name", token.trim_end_matches("-token"))
        .await
        .unwrap();
    browser
        .wait_for_attribute("#connection", "data-state", "connected")
        .await
        .unwrap();
    browser
}

async fn browser_stats(browser: &Browser) -> Value {
    browser
        .eval_async("window.switchboard.stats()")
        .await
        .unwrap()
}

/// Waits until wa-sim's user and the browser have both heard sound on `call_id`.
async fn audio_flows_both_ways(product: &Product, browser: &Browser, call_id: &str) -> Value {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let call = product
            .sim_get(&format!("/sim/calls/{}", path_segment(call_id)))
            .await
            .unwrap();
        let stats = browser_stats(browser).await;
        let user_heard = call["media"]["audible_packets_received"]
            .as_u64()
            .unwrap_or(0);
        let browser_heard = stats["packetsReceived"].as_u64().unwrap_or(0);
        let energy = stats["totalAudioEnergy"].as_f64().unwrap_or(0.0);
        if user_heard >= HEARD && browser_heard >= HEARD && energy > 0.0 {
            return stats;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no audio both ways: user heard {user_heard} audible packets; browser {stats}\n{}",
            product.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// wa-sim's user `caller` calls in; the banner must show each of `shown`; the agent
/// answers and audio flows both ways. Returns the call id.
async fn answer_incoming(
    product: &Product,
    browser: &Browser,
    caller: Value,
    shown: &[&str],
) -> String {
    let placed = product.sim_post("/sim/calls", caller).await.unwrap();
    let call_id = placed["call_id"].as_str().unwrap().to_owned();
    browser
        .wait_for_attribute("#incoming", "data-state", "ringing")
        .await
        .unwrap();
    for text in shown {
        browser
            .wait_for_text("#incoming-caller", text)
            .await
            .unwrap();
    }
    browser.click("#accept").await.unwrap();
    browser
        .wait_for_attribute("#call-panel", "data-state", "connected")
        .await
        .unwrap();
    audio_flows_both_ways(product, browser, &call_id).await;
    call_id
}

async fn only_sim_call(product: &Product) -> Value {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let calls = product.sim_get("/sim/calls").await.unwrap();
        if let Some(call) = calls.as_array().and_then(|c| c.first()) {
            return call.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "wa-sim never saw a call"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_asks_permission_calls_talks_and_hangs_up() {
    let product = Product::start(
        "outgoing",
        &["--answer-delay", "1s", "--permission-reply-delay", "500ms"],
    )
    .await
    .unwrap();
    let browser = signed_in(&product, "asha", AGENTS[0].1).await;
    browser.type_into("#dial-to", "12125550100").await.unwrap();
    browser.click("#request-permission").await.unwrap();
    browser
        .wait_for_attribute("#permission-status", "data-status", "temporary")
        .await
        .unwrap();
    browser.click("#call").await.unwrap();
    browser
        .wait_for_attribute("#call-panel", "data-state", "connected")
        .await
        .unwrap();
    let call = only_sim_call(&product).await;
    let call_id = call["call_id"].as_str().unwrap().to_owned();
    let stats = audio_flows_both_ways(&product, &browser, &call_id).await;
    assert!(
        stats["packetsSent"].as_u64().unwrap_or(0) >= HEARD,
        "{stats}"
    );
    browser.wait_for_text("#call-timer", "00:0").await.unwrap();

    // The picture in README: the dialer in a call, from this very page.
    let shot = browser.client.screenshot().await.unwrap();
    let dir = workspace_root().join("target/e2e");
    std::fs::write(dir.join("dialer-in-call.png"), shot).unwrap();
    let timings = browser
        .eval_async("window.switchboard.timings()")
        .await
        .unwrap();
    std::fs::write(dir.join("dialer-timings.json"), timings.to_string()).unwrap();

    browser.click("#hangup").await.unwrap();
    browser
        .wait_for_attribute(
            &format!("#call-log li[data-call-id=\"{call_id}\"]"),
            "data-end-status",
            "completed",
        )
        .await
        .unwrap();
    let ended = product
        .sim_get(&format!("/sim/calls/{}", path_segment(&call_id)))
        .await
        .unwrap();
    assert_eq!(ended["state"], "ended", "{ended}");
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_calls_in_the_agent_answers_and_the_call_outlasts_metas_media_check() {
    let product = Product::start("incoming", &[]).await.unwrap();
    let browser = signed_in(&product, "asha", AGENTS[0].1).await;
    let caller = json!({"from": "12125550100", "name": "Asha Verma"});
    let call_id = answer_incoming(&product, &browser, caller, &["Asha Verma", "12125550100"]).await;
    // Meta ends a call whose business side sends no media after 20 s (138021); this one
    // must still be up past 25 s.
    tokio::time::sleep(Duration::from_secs(26)).await;
    let call = product
        .sim_get(&format!("/sim/calls/{}", path_segment(&call_id)))
        .await
        .unwrap();
    assert_ne!(
        call["state"],
        "ended",
        "the call dropped: {call}\n{}",
        product.logs()
    );
    assert!(call.get("error_code").is_none(), "{call}");

    product
        .sim_post(
            &format!("/sim/calls/{}/hangup", path_segment(&call_id)),
            json!({}),
        )
        .await
        .unwrap();
    browser
        .wait_for_attribute("#call-panel", "data-state", "ended")
        .await
        .unwrap();
    browser
        .wait_for_attribute(
            &format!("#call-log li[data-call-id=\"{call_id}\"]"),
            "data-end-status",
            "completed",
        )
        .await
        .unwrap();
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_agents_ring_one_answers_and_the_other_sees_it_taken() {
    let product = Product::start("claimed", &[]).await.unwrap();
    let asha = signed_in(&product, "asha", AGENTS[0].1).await;
    let ravi = signed_in(&product, "ravi", AGENTS[1].1).await;
    product
        .sim_post(
            "/sim/calls",
            json!({"from": "12125550109", "name": "Meera Rao"}),
        )
        .await
        .unwrap();
    for browser in [&asha, &ravi] {
        browser
            .wait_for_attribute("#incoming", "data-state", "ringing")
            .await
            .unwrap();
    }
    asha.click("#accept").await.unwrap();
    asha.wait_for_attribute("#call-panel", "data-state", "connected")
        .await
        .unwrap();
    ravi.wait_for_attribute("#incoming", "data-state", "claimed")
        .await
        .unwrap();
    ravi.wait_for_text("#incoming", "asha").await.unwrap();
    asha.close().await;
    ravi.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calling_without_permission_says_why_in_words_on_a_narrow_screen_by_keyboard() {
    let product = Product::start("no-permission", &["--permission-reply", "off"])
        .await
        .unwrap();
    let browser = signed_in(&product, "asha", AGENTS[0].1).await;
    // A phone-sized window: nothing may need sideways scrolling.
    browser.client.set_window_size(320, 640).await.unwrap();
    let overflow = browser
        .eval_async("document.documentElement.scrollWidth - window.innerWidth")
        .await
        .unwrap();
    assert!(
        overflow.as_i64().unwrap_or(1) <= 0,
        "the page overflows by {overflow} px"
    );
    // Type the number and press Enter: no mouse needed.
    let enter: char = fantoccini::key::Key::Enter.into();
    browser
        .type_into("#dial-to", &format!("12125550177{enter}"))
        .await
        .unwrap();
    browser
        .wait_for_attribute("#error", "data-meta-code", "138006")
        .await
        .unwrap();
    // A sentence an agent can act on, not just a number.
    let sentence = browser.wait_for_text("#error", "permission").await.unwrap();
    assert!(sentence.split_whitespace().count() >= 5, "{sentence}");
    browser
        .wait_for_attribute_in("#call-panel", "data-state", &["idle", "ended"])
        .await
        .unwrap();
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_with_only_a_username_calls_in_and_is_answered() {
    let product = Product::start("username", &[]).await.unwrap();
    let browser = signed_in(&product, "asha", AGENTS[0].1).await;
    let caller = json!({"user_id": "US.13491208655302741918", "username": "@pablomorales"});
    answer_incoming(&product, &browser, caller, &["@pablomorales"]).await;
    browser.close().await;
}
