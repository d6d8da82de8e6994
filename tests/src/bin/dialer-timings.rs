//! Measures the dialer's own latencies in headless Chromium against the real router and
//! wa-sim: from the Call click to the offer being sent (microphone, peer connection, offer,
//! full ICE gathering), and from `call.answered` to Meta's answer being applied. Places
//! `--calls` calls in a row and prints each figure's median and maximum.
//!
//!   scripts/loopback.sh target/debug/dialer-timings --calls 10

use std::time::Duration;

use anyhow::Context;
use serde_json::json;
use switchboard_e2e::browser::Browser;
use switchboard_e2e::product::{Product, AGENTS};

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn summary(values: &mut [f64]) -> (f64, f64) {
    values.sort_by(f64::total_cmp);
    let median = values.get(values.len() / 2).copied().unwrap_or(f64::NAN);
    (median, values.last().copied().unwrap_or(f64::NAN))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let calls = arg("--calls", 10);
    let product = Product::start("timings", &["--answer-delay", "500ms"]).await?;
    product
        .sim_post(
            "/sim/users",
            json!({"wa_id": "12125550100", "permission": "permanent", "on_call": "answer"}),
        )
        .await?;
    let browser = Browser::start("timings", &product.log_dir).await?;
    browser.client.goto(&product.router).await?;
    browser
        .wait_for_attribute("body", "data-ready", "true")
        .await?;
    browser.type_into("#token", AGENTS[0].1).await?;
    browser.click("#sign-in").await?;
    browser
        .wait_for_attribute("#connection", "data-state", "connected")
        .await?;
    let (mut to_offer, mut to_applied) = (Vec::new(), Vec::new());
    for n in 1..=calls {
        browser.type_into("#dial-to", "12125550100").await?;
        browser.click("#call").await?;
        browser
            .wait_for_attribute("#call-panel", "data-state", "connected")
            .await
            .with_context(|| format!("call {n} did not connect:\n{}", product.logs()))?;
        let timings = browser.eval_async("window.switchboard.timings()").await?;
        let offer = timings["clickToOfferSentMs"]
            .as_f64()
            .context("no click-to-offer time")?;
        let applied = timings["answeredToRemoteAppliedMs"]
            .as_f64()
            .context("no answered-to-applied time")?;
        println!("call {n}: click to offer sent {offer:.1} ms, call.answered to remote description applied {applied:.1} ms");
        to_offer.push(offer);
        to_applied.push(applied);
        browser.click("#hangup").await?;
        browser
            .wait_for_attribute_in("#call-panel", "data-state", &["ended", "idle"])
            .await?;
        // Meta's terminate reaches the router before the next call to the same user.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let (offer_median, offer_max) = summary(&mut to_offer);
    let (applied_median, applied_max) = summary(&mut to_applied);
    println!(
        "{}",
        json!({
            "calls": calls,
            "click_to_offer_sent_ms": {"median": offer_median, "max": offer_max},
            "answered_to_remote_applied_ms": {"median": applied_median, "max": applied_max},
        })
    );
    browser.close().await;
    Ok(())
}
