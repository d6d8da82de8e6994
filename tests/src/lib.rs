//! The harness for Switchboard's end-to-end tests: the real `switchboard` and `wa-sim`
//! binaries as processes on loopback, and the dialer in headless Chromium driven over
//! WebDriver (chromedriver). Run inside `scripts/loopback.sh` so media stays on 127.0.0.1.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};
use switchboard_testkit::router::Agent;
use switchboard_testkit::wait::{poll, PATIENCE};

pub mod browser;
pub mod product;
pub mod stack;

/// A binary of this workspace, built next to the test binary (`cargo build --workspace`).
pub fn workspace_binary(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("no current exe")?;
    // A test binary is in target/<profile>/deps/, a tool in target/<profile>/.
    let mut dir = exe.parent().context("the binary has no directory")?;
    if dir.ends_with("deps") {
        dir = dir.parent().context("deps/ has no parent")?;
    }
    let path = dir.join(name);
    if !path.is_file() {
        bail!(
            "{} is missing; build it first (cargo build --workspace --bins)",
            path.display()
        );
    }
    Ok(path)
}

/// The workspace root (for `www/` and the fixtures).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// A child process that is killed when dropped; its output goes to a log file.
pub struct Process {
    name: String,
    child: Child,
    pub log: PathBuf,
}

impl Process {
    pub fn start(name: &str, mut command: Command, log_dir: &Path) -> anyhow::Result<Self> {
        let log = log_dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log)?;
        let child = command
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .spawn()
            .with_context(|| format!("cannot start {name}"))?;
        Ok(Self {
            name: name.to_owned(),
            child,
            log,
        })
    }

    /// The last lines of the process's log, for a failing test's message.
    pub fn tail(&self, lines: usize) -> String {
        let Ok(file) = std::fs::File::open(&self.log) else {
            return String::new();
        };
        let all: Vec<String> = BufReader::new(file).lines().map_while(Result::ok).collect();
        let start = all.len().saturating_sub(lines);
        format!(
            "--- {} ({}) ---\n{}",
            self.name,
            self.log.display(),
            all[start..].join("\n")
        )
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until `url` answers 200, or the process dies, or [`PATIENCE`] runs out.
pub async fn wait_until_ready(process: &mut Process, url: &str) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    // Some(true): ready; Some(false): the process stopped.
    let ready = poll(Duration::from_millis(50), async || {
        if !process.is_running() {
            return Some(false);
        }
        let answer = client.get(url).send().await;
        answer
            .is_ok_and(|response| response.status().is_success())
            .then_some(true)
    })
    .await;
    match ready {
        Some(true) => Ok(()),
        Some(false) => bail!("the process stopped:\n{}", process.tail(40)),
        None => bail!("{url} not ready within {PATIENCE:?}:\n{}", process.tail(40)),
    }
}

/// The agents every end-to-end setup knows: (name, token).
pub const AGENTS: [(&str, &str); 2] = [("asha", "asha-token"), ("ravi", "ravi-token")];

/// [`AGENTS`] as the router's configuration takes them.
pub fn agents() -> Vec<Agent> {
    AGENTS
        .iter()
        .map(|&(name, token)| Agent::new(name, token))
        .collect()
}

/// A call id as a URL path segment (Meta's ids are base64 and may hold `/`, `+`, `=`).
pub fn path_segment(id: &str) -> String {
    id.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
