//! `/healthz`, `/readyz` and `/metrics`.

use std::sync::Arc;

use actix_web::{web, HttpResponse};

use crate::fanout::routes::Routes;
use crate::store::Store;
use crate::telemetry::Metrics;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz))
        .route("/metrics", web::get().to(metrics));
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok")
}

async fn readyz(store: web::Data<Arc<dyn Store>>) -> HttpResponse {
    match store.ping().await {
        Ok(()) => HttpResponse::Ok().content_type("text/plain").body("ready"),
        Err(e) => {
            tracing::error!(error = ?e, "not ready: the store does not answer");
            HttpResponse::ServiceUnavailable()
                .content_type("text/plain")
                .body("store unavailable")
        }
    }
}

async fn metrics(
    store: web::Data<Arc<dyn Store>>,
    routes: web::Data<Routes>,
    metrics: web::Data<Metrics>,
) -> HttpResponse {
    match store.queue_depth().await {
        Ok(depths) => {
            metrics.queue_depth.reset();
            for route in routes.iter() {
                metrics
                    .queue_depth
                    .with_label_values(&[route.name.as_str()])
                    .set(0);
            }
            for depth in depths {
                let pending = i64::try_from(depth.pending).unwrap_or(i64::MAX);
                metrics
                    .queue_depth
                    .with_label_values(&[&depth.route])
                    .set(pending);
            }
        }
        Err(e) => tracing::error!(error = ?e, "cannot read the queue depth"),
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(metrics.render())
}
