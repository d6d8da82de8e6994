//! The operator's work on deliveries: list jobs, retry one, inspect and replay an event,
//! the queue depth the metrics show (read in the background, never per scrape), and the
//! jobs of removed routes failed at start-up. The admin API and the CLI both come here.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::routes::Routes;
use super::Wakers;
use crate::domain::clock::now_millis;
use crate::domain::delivery::{JobFilter, JobView, StoredEvent};
use crate::domain::event::EventId;
use crate::domain::route::RouteName;
use crate::store::{Store, StoreError};
use crate::telemetry::Metrics;

/// Why a job was failed at start-up: its route is no longer configured.
pub const ROUTE_REMOVED: &str = "route removed";

/// How often the queue-depth gauge is read from the store.
const QUEUE_DEPTH_EVERY: Duration = Duration::from_secs(2);

/// Why an admin action on deliveries could not be done.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("no route is named `{0}`")]
    UnknownRoute(String),
    #[error("no configured route takes events of kind `{0}`")]
    NoMatchingRoute(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Deliveries as an operator sees them, over the store and the configured routes.
#[derive(Clone)]
pub struct Deliveries {
    store: Arc<dyn Store>,
    routes: Routes,
    wakers: Wakers,
}

impl Deliveries {
    /// `wakers` tell a running server's workers about retried and replayed jobs; a tool
    /// without workers passes [`Wakers::default`] and the workers find them at their
    /// next poll.
    pub fn new(store: Arc<dyn Store>, routes: Routes, wakers: Wakers) -> Self {
        Self {
            store,
            routes,
            wakers,
        }
    }

    pub async fn list(&self, filter: JobFilter) -> Result<Vec<JobView>, StoreError> {
        self.store.list_jobs(filter).await
    }

    /// Makes a failed job, or a pending one no worker holds, due now. `Conflict` for a
    /// job of a route that is not configured: no worker would send it.
    pub async fn retry(&self, job: i64) -> Result<JobView, StoreError> {
        let found = self
            .store
            .list_jobs(JobFilter {
                before_id: Some(job.saturating_add(1)),
                limit: 1,
                ..JobFilter::default()
            })
            .await?;
        if let Some(view) = found.iter().find(|view| view.id == job) {
            if self.routes.get(&view.route).is_none() {
                return Err(StoreError::Conflict(format!(
                    "delivery job {job} is for route `{}`, which is not configured; \
                     configure it again to retry the job",
                    view.route
                )));
            }
        }
        let job = self.store.retry_job(job, now_millis()).await?;
        self.wakers.wake(&job.route);
        Ok(job)
    }

    /// Fails the pending jobs of every route the configuration no longer has, with the
    /// reason [`ROUTE_REMOVED`]: they are listed as failed, and can be retried once their
    /// route is configured again. Run at start-up, before the workers.
    pub async fn fail_removed_routes(&self) -> Result<u64, StoreError> {
        let configured: Vec<RouteName> = self.routes.iter().map(|r| r.name.clone()).collect();
        let failed = self
            .store
            .fail_jobs_of_other_routes(&configured, ROUTE_REMOVED, now_millis())
            .await?;
        if failed > 0 {
            tracing::warn!(
                jobs = failed,
                "pending jobs of routes no longer configured were failed (\"{ROUTE_REMOVED}\"); \
                 configure the route again and retry them to send them"
            );
        }
        Ok(failed)
    }

    /// Keeps the queue-depth gauge fresh until `shutdown`, reading the store every
    /// [`QUEUE_DEPTH_EVERY`]: a scrape only renders what was read last, so scrapes can
    /// neither load the store nor wait for it.
    pub async fn keep_queue_depth(self, metrics: Metrics, shutdown: CancellationToken) {
        loop {
            self.refresh_queue_depth(&metrics).await;
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(QUEUE_DEPTH_EVERY) => {}
            }
        }
    }

    pub async fn event(&self, id: &EventId) -> Result<StoredEvent, StoreError> {
        self.store
            .event(id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("event {id}")))
    }

    /// Queues `event` again for every route that takes its kind, or only for `only`.
    pub async fn replay(
        &self,
        event: &EventId,
        only: Option<&RouteName>,
    ) -> Result<Vec<i64>, AdminError> {
        let kind = self.event(event).await?.kind;
        if let Some(name) = only {
            if self.routes.get(name).is_none() {
                return Err(AdminError::UnknownRoute(name.to_string()));
            }
        }
        let targets: Vec<_> = self
            .routes
            .matching(&kind)
            .filter(|r| only.is_none_or(|name| &r.name == name))
            .map(|r| (r.name.clone(), r.mode))
            .collect();
        if targets.is_empty() {
            return Err(AdminError::NoMatchingRoute(kind.to_string()));
        }
        let names: Vec<RouteName> = targets.iter().map(|(name, _)| name.clone()).collect();
        let jobs = self
            .store
            .replay_event(event, targets, now_millis())
            .await?;
        for name in &names {
            self.wakers.wake(name);
        }
        Ok(jobs)
    }

    /// Sets the queue-depth gauge from the store: every configured route, 0 when idle,
    /// and any route that still has pending jobs.
    pub async fn refresh_queue_depth(&self, metrics: &Metrics) {
        match self.store.queue_depth().await {
            Ok(depths) => {
                metrics.queue_depth.reset();
                for route in self.routes.iter() {
                    metrics
                        .queue_depth
                        .with_label_values(&[route.name.as_str()])
                        .set(0);
                }
                for depth in depths {
                    let pending = i64::try_from(depth.pending).unwrap_or(i64::MAX);
                    metrics
                        .queue_depth
                        .with_label_values(&[depth.route.as_str()])
                        .set(pending);
                }
            }
            Err(e) => tracing::error!(error = ?e, "cannot read the queue depth"),
        }
    }
}
