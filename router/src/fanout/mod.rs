//! Fan-out: routes, the requests consumers receive, retries and the delivery workers.

pub mod admin;
pub mod outbound;
pub mod retry;
pub mod routes;
pub mod worker;

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use self::admin::Deliveries;
use self::routes::Routes;
use self::worker::RouteWorker;
use crate::domain::route::RouteName;
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

/// Starts one worker per route, and the reader of their queue depth for the metrics;
/// they stop when `shutdown` is cancelled.
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
    let mut tasks: Vec<JoinHandle<()>> = routes
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
        .collect();
    let depth = Deliveries::new(store, routes.clone(), wakers.clone());
    tasks.push(tokio::spawn(
        depth.keep_queue_depth(metrics.clone(), shutdown),
    ));
    Ok(tasks)
}
