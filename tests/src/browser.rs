//! Headless Chromium driven over WebDriver, with a fake microphone that plays a tone.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::Context;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use switchboard_testkit::server::free_port;
use switchboard_testkit::wait::{poll, PATIENCE};

use crate::{wait_until_ready, Process};

pub struct Browser {
    pub client: Client,
    _driver: Process,
    _profile: tempfile::TempDir,
}

/// A test that fails before `close` leaves chromedriver to be killed, and a killed
/// chromedriver leaves its Chromium running: every process started with this browser's own
/// profile directory is stopped here, by PID.
impl Drop for Browser {
    fn drop(&mut self) {
        let marker = format!("--user-data-dir={}", self._profile.path().display());
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return;
        };
        for entry in entries.flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
                continue;
            };
            if String::from_utf8_lossy(&cmdline).contains(&marker) {
                let _ = Command::new("kill")
                    .arg("-KILL")
                    .arg(pid.to_string())
                    .status();
            }
        }
    }
}

impl Browser {
    /// Starts chromedriver and a fresh headless Chromium with its own profile.
    pub async fn start(name: &str, log_dir: &Path) -> anyhow::Result<Self> {
        let port = free_port();
        let mut command = Command::new(
            std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into()),
        );
        command
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1");
        let mut driver = Process::start(&format!("chromedriver-{name}"), command, log_dir)?;
        wait_until_ready(&mut driver, &format!("http://127.0.0.1:{port}/status")).await?;
        let profile = tempfile::TempDir::new()?;
        let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let args = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-breakpad",
            "--disable-crash-reporter",
            "--use-fake-device-for-media-stream",
            "--use-fake-ui-for-media-stream",
            "--autoplay-policy=no-user-gesture-required",
            "--allow-loopback-in-peer-connection",
            "--window-size=1200,900",
        ]
        .iter()
        .map(|a| (*a).to_owned())
        .chain([format!("--user-data-dir={}", profile.path().display())])
        .collect::<Vec<_>>();
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": chromium, "args": args },
        });
        let serde_json::Value::Object(capabilities) = capabilities else {
            unreachable!("an object literal");
        };
        // chromedriver speaks plain HTTP on loopback: no TLS stack needed.
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .context("cannot open a WebDriver session")?;
        Ok(Self {
            client,
            _driver: driver,
            _profile: profile,
        })
    }

    /// Waits until `css` matches an element whose `attribute` is `value`.
    pub async fn wait_for_attribute(
        &self,
        css: &str,
        attribute: &str,
        value: &str,
    ) -> anyhow::Result<()> {
        self.wait_for_attribute_in(css, attribute, &[value])
            .await
            .map(|_| ())
    }

    /// Waits until `css` matches an element whose `attribute` is one of `values`; returns it.
    pub async fn wait_for_attribute_in(
        &self,
        css: &str,
        attribute: &str,
        values: &[&str],
    ) -> anyhow::Result<String> {
        let mut last = None;
        let found = poll(Duration::from_millis(100), async || {
            let element = self.client.find(Locator::Css(css)).await.ok()?;
            last = element.attr(attribute).await.ok().flatten();
            last.clone().filter(|v| values.contains(&v.as_str()))
        })
        .await;
        found.with_context(|| {
            format!("{css}[{attribute}] never became one of {values:?} (last {last:?})")
        })
    }

    /// Waits until `css` matches an element whose text contains `text`.
    pub async fn wait_for_text(&self, css: &str, text: &str) -> anyhow::Result<String> {
        let mut last = String::new();
        let found = poll(Duration::from_millis(100), async || {
            let element = self.client.find(Locator::Css(css)).await.ok()?;
            last = element.text().await.unwrap_or_default();
            last.contains(text).then(|| last.clone())
        })
        .await;
        found.with_context(|| format!("{css} never showed {text:?} (last {last:?})"))
    }

    pub async fn click(&self, css: &str) -> anyhow::Result<()> {
        self.client
            .wait()
            .at_most(PATIENCE)
            .for_element(Locator::Css(css))
            .await?
            .click()
            .await?;
        Ok(())
    }

    pub async fn type_into(&self, css: &str, text: &str) -> anyhow::Result<()> {
        let element = self
            .client
            .wait()
            .at_most(PATIENCE)
            .for_element(Locator::Css(css))
            .await?;
        element.clear().await?;
        element.send_keys(text).await?;
        Ok(())
    }

    /// Runs a script that returns a Promise and gives back what it resolves to.
    pub async fn eval_async(&self, script: &str) -> anyhow::Result<serde_json::Value> {
        let wrapped = format!(
            "const done = arguments[arguments.length - 1]; Promise.resolve().then(() => {script}).then(v => done(v), e => done({{error: String(e)}}));"
        );
        Ok(self.client.execute_async(&wrapped, vec![]).await?)
    }

    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}
