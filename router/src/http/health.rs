//! `/healthz`, `/readyz` and `/metrics`; none of them waits for the store on every call.

use actix_web::{web, HttpResponse};

use crate::state::AppState;

/// Liveness and readiness.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/readyz", web::get().to(readyz));
}

/// `/metrics`, on the main listener or on `server.metrics_listen`.
pub fn configure_metrics(cfg: &mut web::ServiceConfig) {
    cfg.route("/metrics", web::get().to(metrics));
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok")
}

/// Ready when the store's last ping (at most a second old) succeeded.
async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    if state.readiness.ready().await {
        HttpResponse::Ok().content_type("text/plain").body("ready")
    } else {
        HttpResponse::ServiceUnavailable()
            .content_type("text/plain")
            .body("store unavailable")
    }
}

/// What the metrics hold now; the queue depth among them is read in the background.
async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render())
}
