//! `switchboard deliveries …` and `switchboard replay …`: admin work on the store itself,
//! with or without a server running beside it. A running server's workers pick up retried
//! and replayed jobs at their next poll.

use std::sync::Arc;

use anyhow::Context;

use crate::config::Settings;
use crate::domain::clock::now_millis;
use crate::domain::delivery::{JobFilter, JobState, JobView};
use crate::domain::event::EventId;
use crate::domain::route::RouteName;
use crate::fanout::admin::Deliveries;
use crate::fanout::Wakers;
use crate::store::sqlite::OpenMode;
use crate::store::{SqliteStore, Store};

fn open(settings: &Settings) -> anyhow::Result<Arc<dyn Store>> {
    Ok(Arc::new(SqliteStore::open(
        &settings.server.data_dir,
        OpenMode::Tool,
    )?))
}

pub async fn list_deliveries(
    settings: &Settings,
    state: Option<&str>,
    route: Option<&str>,
    limit: usize,
) -> anyhow::Result<()> {
    let filter = JobFilter {
        state: state
            .map(|s| {
                JobState::parse(s).with_context(|| {
                    format!("state `{s}` is not one of pending, delivered, failed")
                })
            })
            .transpose()?,
        route: route
            .map(RouteName::parse)
            .transpose()
            .map_err(anyhow::Error::msg)?,
        before_id: None,
        limit,
    };
    let jobs = open(settings)?.list_jobs(filter).await?;
    println!(
        "{:>8}  {:<9}  {:<16}  {:>8}  {:<36}  LAST ERROR",
        "ID", "STATE", "ROUTE", "ATTEMPTS", "EVENT"
    );
    for job in &jobs {
        print_job(job);
    }
    if jobs.is_empty() {
        println!("(none)");
    }
    Ok(())
}

fn print_job(job: &JobView) {
    let target = job.event_id.as_ref().map_or_else(
        || format!("delivery {}", job.delivery_id),
        ToString::to_string,
    );
    println!(
        "{:>8}  {:<9}  {:<16}  {:>8}  {:<36}  {}",
        job.id,
        job.state.as_str(),
        job.route,
        job.attempts,
        target,
        job.last_error.as_deref().unwrap_or("")
    );
}

pub async fn retry_delivery(settings: &Settings, id: i64) -> anyhow::Result<()> {
    let job = open(settings)?.retry_job(id, now_millis()).await?;
    println!(
        "delivery job {} is due again on route {}",
        job.id, job.route
    );
    Ok(())
}

pub async fn replay(settings: &Settings, event: &str, route: Option<&str>) -> anyhow::Result<()> {
    let event = EventId::parse(event).map_err(anyhow::Error::msg)?;
    let only = route
        .map(RouteName::parse)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let deliveries = Deliveries::new(open(settings)?, settings.routes.clone(), Wakers::default());
    let jobs = deliveries.replay(&event, only.as_ref()).await?;
    println!("event {event} queued again as delivery jobs {jobs:?}");
    Ok(())
}

fn graph(settings: &Settings) -> anyhow::Result<crate::meta::graph::GraphClient> {
    crate::startup::graph_client(&settings.meta, settings.calls.graph_timeout)
}

/// `switchboard calling status`: the number's calling settings as Meta has them.
pub async fn calling_status(settings: &Settings) -> anyhow::Result<()> {
    let graph = graph(settings)?;
    let current = graph.settings().await?;
    let calling = current.calling.unwrap_or_default();
    println!(
        "calling: {}",
        calling.status.as_deref().unwrap_or("(not reported)")
    );
    if let Some(icon) = &calling.call_icon_visibility {
        println!("call icon: {icon}");
    }
    if let Some(callback) = &calling.callback_permission_status {
        println!("callback permission: {callback}");
    }
    for (key, value) in &calling.other {
        println!("{key}: {value}");
    }
    Ok(())
}

/// `switchboard calling enable|disable`.
pub async fn set_calling(settings: &Settings, enabled: bool) -> anyhow::Result<()> {
    let graph = graph(settings)?;
    let status = if enabled { "ENABLED" } else { "DISABLED" };
    graph
        .update_settings(&switchboard_protocol::graph::Settings {
            calling: Some(switchboard_protocol::graph::CallingSettings {
                status: Some(status.to_owned()),
                ..Default::default()
            }),
        })
        .await?;
    println!(
        "calling is now {status} for number {}",
        settings.meta.phone_number_id
    );
    Ok(())
}
