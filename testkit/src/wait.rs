//! Waiting in tests: every wait is bounded by [`PATIENCE`], and none asserts on speed. Wait
//! on a signal where there is one ([`crate::receiver::Receiver::until`],
//! [`crate::agent::AgentSocket::next`]); poll with [`poll`] only where there is none.

use std::time::Duration;

/// How long anything that should happen promptly may take before a test gives up.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// Runs `attempt` every `every` until it gives a value, for at most [`PATIENCE`]; `None`
/// when it never did.
pub async fn poll<T>(every: Duration, mut attempt: impl AsyncFnMut() -> Option<T>) -> Option<T> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        if let Some(value) = attempt().await {
            return Some(value);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(every).await;
    }
}
