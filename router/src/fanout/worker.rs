//! Delivery workers: one per route, so a slow or dead consumer holds up only itself.
//!
//! [`try_deliver_one`] makes one attempt and says how it ended; [`RouteWorker::run`] only
//! claims, spawns, settles and waits.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::outbound;
use super::retry;
use super::routes::Route;
use crate::domain::clock::now_millis;
use crate::domain::delivery::{ClaimedJob, Settlement};
use crate::store::Store;
use crate::telemetry::Metrics;

/// How often an idle worker looks for jobs whose retry time has come.
const IDLE_POLL: Duration = Duration::from_millis(500);
/// How long a worker waits before asking the store again after it failed.
const STORE_BACKOFF: Duration = Duration::from_secs(1);

/// Makes one attempt at `job` and decides what happens next. Never touches the store.
pub async fn try_deliver_one(
    client: &reqwest::Client,
    route: &Route,
    job: &ClaimedJob,
) -> Settlement {
    let timestamp = now_millis() / 1000;
    let request = outbound::build(&job.body, route.signer.as_ref(), timestamp);
    let response = client
        .post(route.url.clone())
        .headers(request.headers)
        .body(request.body)
        .timeout(route.timeout)
        .send()
        .await;
    let (status, error, asked) = match response {
        Ok(response) if response.status().is_success() => {
            return Settlement::Delivered {
                status: response.status().as_u16(),
            };
        }
        Ok(response) => {
            let status = response.status();
            let asked = retry::retry_after(response.headers(), SystemTime::now());
            (
                Some(status.as_u16()),
                format!("consumer answered {status}"),
                asked,
            )
        }
        Err(e) if e.is_timeout() => (None, format!("no answer within {:?}", route.timeout), None),
        // Without the URL: a consumer's URL may carry a secret in its query.
        Err(e) => (
            None,
            format!(
                "cannot reach the consumer: {}",
                error_chain(&e.without_url())
            ),
            None,
        ),
    };
    match retry::next_delay(&route.retry_schedule, job.attempt) {
        Some(delay) => Settlement::RetryAt {
            at: retry::next_attempt_at(now_millis(), delay, asked),
            status,
            error,
        },
        None => Settlement::Failed {
            status,
            error: format!("{error} (gave up after {} attempts)", job.attempt),
        },
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

pub struct RouteWorker {
    pub route: Route,
    pub store: Arc<dyn Store>,
    pub client: reqwest::Client,
    pub metrics: Metrics,
    pub wake: Arc<Notify>,
}

impl RouteWorker {
    /// Jobs claimed per store round trip: enough that a busy route is not held back by
    /// claims queueing behind ingest's commits, few enough to keep leases short.
    fn claim_batch(&self) -> usize {
        (self.route.concurrency * 4).clamp(16, 512)
    }

    /// Long enough for every claimed job to be attempted before it runs out, so a live
    /// worker never loses a job to another.
    fn lease(&self) -> Duration {
        let rounds =
            u32::try_from(self.claim_batch().div_ceil(self.route.concurrency)).unwrap_or(u32::MAX);
        self.route.timeout * rounds.saturating_add(2) + Duration::from_secs(30)
    }

    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut in_flight: JoinSet<()> = JoinSet::new();
        let mut ready: VecDeque<ClaimedJob> = VecDeque::new();
        loop {
            let mut store_failed = false;
            if ready.len() < self.route.concurrency {
                let wanted = self.claim_batch() - ready.len();
                match self
                    .store
                    .claim_jobs(&self.route.name, now_millis(), self.lease(), wanted)
                    .await
                {
                    Ok(jobs) => ready.extend(jobs),
                    Err(e) => {
                        tracing::error!(route = %self.route.name, error = ?e, "cannot claim jobs");
                        store_failed = true;
                    }
                }
            }
            while in_flight.len() < self.route.concurrency {
                let Some(job) = ready.pop_front() else { break };
                let worker = self.clone();
                in_flight.spawn(async move { worker.attempt(job).await });
            }
            let wait = if store_failed {
                STORE_BACKOFF
            } else {
                IDLE_POLL
            };
            tokio::select! {
                () = shutdown.cancelled() => break,
                Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
                () = self.wake.notified(), if !store_failed => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
        // Let attempts under way finish and be settled; anything cut short, or claimed and
        // not yet tried, keeps its lease in the store and is sent after restart. It loses no
        // attempt: the store counts attempts when they are settled, not when claimed.
        let grace = tokio::time::timeout(self.route.timeout, async {
            while in_flight.join_next().await.is_some() {}
        });
        if grace.await.is_err() {
            in_flight.abort_all();
        }
    }

    async fn attempt(&self, job: ClaimedJob) {
        let started = Instant::now();
        let settlement = try_deliver_one(&self.client, &self.route, &job).await;
        let route = self.route.name.as_str();
        self.metrics
            .forward_seconds
            .with_label_values(&[route])
            .observe(started.elapsed().as_secs_f64());
        let outcome = match &settlement {
            Settlement::Delivered { .. } => "delivered",
            Settlement::RetryAt { error, .. } => {
                tracing::warn!(route, job = job.id, attempt = job.attempt, %error, "forward failed; will retry");
                "retry"
            }
            Settlement::Failed { error, .. } => {
                tracing::error!(route, job = job.id, attempt = job.attempt, %error, "forward failed for good");
                "failed"
            }
        };
        self.metrics
            .forwards
            .with_label_values(&[route, outcome])
            .inc();
        if let Err(e) = self.store.settle_job(job.id, settlement).await {
            // The lease runs out and the job is tried again: at least once, never lost.
            tracing::error!(route, job = job.id, error = ?e, "cannot settle a job");
        }
    }
}
