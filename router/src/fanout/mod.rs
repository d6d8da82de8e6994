//! Fan-out: routes, the requests consumers receive, retries and the delivery workers.

pub mod outbound;
pub mod retry;
pub mod routes;
pub mod worker;

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use self::routes::{RouteName, Routes};
use self::worker::RouteWorker;
use crate::store::Store;
use crate::telemetry::Metrics;

/// Wakes a route's worker when new jobs are committed, so delivery does not wait for the
/// next poll.
#[derive(Clone, Default)]
pub struct Wakers(Arc<HashMap<RouteName, Arc<Notify>>>);

impl Wakers {
    pub fn for_routes(routes: &Routes) -> Self {
        Self(Arc::new(
            routes
                .iter()
                .map(|r| (r.name.clone(), Arc::new(Notify::new())))
                .collect(),
        ))
    }

    pub fn wake(&self, route: &RouteName) {
        if let Some(notify) = self.0.get(route) {
            notify.notify_one();
        }
    }

    fn get(&self, route: &RouteName) -> Arc<Notify> {
        self.0.get(route).cloned().unwrap_or_default()
    }
}

/// Starts one worker per route; they stop when `shutdown` is cancelled.
pub fn spawn_workers(
    routes: &Routes,
    store: Arc<dyn Store>,
    wakers: &Wakers,
    metrics: &Metrics,
    shutdown: CancellationToken,
) -> anyhow::Result<Vec<JoinHandle<()>>> {
    let client = reqwest::Client::builder()
        .user_agent(concat!("switchboard/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    Ok(routes
        .iter()
        .map(|route| {
            let worker = Arc::new(RouteWorker {
                route: route.clone(),
                store: store.clone(),
                client: client.clone(),
                metrics: metrics.clone(),
                wake: wakers.get(&route.name),
            });
            tokio::spawn(worker.run(shutdown.clone()))
        })
        .collect())
}

/// Why an admin action on deliveries could not be done.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("no route is named `{0}`")]
    UnknownRoute(String),
    #[error("no configured route takes events of kind `{0}`")]
    NoMatchingRoute(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// Queues `event` again for every route that takes its kind, or only for `only`.
pub async fn replay_event(
    store: &dyn Store,
    routes: &Routes,
    wakers: &Wakers,
    event: &crate::meta::events::EventId,
    only: Option<&RouteName>,
) -> Result<Vec<i64>, AdminError> {
    use crate::meta::events::EventKind;
    use crate::store::StoreError;

    let stored = store
        .event(event)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("event {event}")))?;
    let kind = EventKind::parse(&stored.kind)
        .ok_or_else(|| StoreError::Unavailable(anyhow::anyhow!("stored kind `{}`", stored.kind)))?;
    if let Some(name) = only {
        if routes.get(name).is_none() {
            return Err(AdminError::UnknownRoute(name.to_string()));
        }
    }
    let targets: Vec<_> = routes
        .matching(&kind)
        .filter(|r| only.is_none_or(|name| &r.name == name))
        .map(|r| (r.name.clone(), r.mode))
        .collect();
    if targets.is_empty() {
        return Err(AdminError::NoMatchingRoute(kind.to_string()));
    }
    let names: Vec<RouteName> = targets.iter().map(|(name, _)| name.clone()).collect();
    let jobs = store
        .replay_event(event, targets, crate::store::now_millis())
        .await?;
    for name in &names {
        wakers.wake(name);
    }
    Ok(jobs)
}
