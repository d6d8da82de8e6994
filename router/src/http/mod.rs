//! Thin HTTP handlers: extract, convert, call one domain function, map the result.

use std::path::Path;

use actix_web::web;

use self::error::ApiError;

pub mod admin;
pub mod agents;
pub mod auth;
pub mod calls;
pub mod deadline;
pub mod error;
pub mod headers;
pub mod health;
pub mod webhook;
pub mod ws;

/// Every route of the API, the webhook and the dialer's files (and `/metrics` with
/// `metrics` set; else it is served on a listener of its own), with JSON errors for
/// bodies, queries and paths that do not parse.
pub fn configure(cfg: &mut web::ServiceConfig, static_dir: &Path, metrics: bool) {
    cfg.app_data(
        web::JsonConfig::default()
            .limit(256 * 1024)
            .error_handler(|e, _| ApiError::BadRequest(format!("the JSON body: {e}")).into()),
    )
    .app_data(
        web::QueryConfig::default()
            .error_handler(|e, _| ApiError::BadRequest(format!("the query: {e}")).into()),
    )
    .app_data(
        web::PathConfig::default()
            .error_handler(|e, _| ApiError::BadRequest(format!("the path: {e}")).into()),
    )
    .configure(webhook::configure)
    .configure(health::configure)
    .configure(admin::configure)
    .configure(agents::configure)
    .configure(calls::configure)
    .configure(ws::configure);
    if metrics {
        cfg.configure(health::configure_metrics);
    }
    // The dialer's page and bundle, when the directory exists (`make run` builds it).
    if static_dir.is_dir() {
        cfg.service(actix_files::Files::new("/", static_dir).index_file("index.html"));
    }
}
