//! Logs (structured `tracing`) and Prometheus metrics.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
};
use tracing_subscriber::{fmt, prelude::*, EnvFilter};

/// Installs the global subscriber: JSON lines when `SWITCHBOARD_LOG_FORMAT=json`, readable
/// text otherwise; the level from `RUST_LOG` (default `info`). Logs go to stderr.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("SWITCHBOARD_LOG_FORMAT").is_ok_and(|f| f == "json");
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let registry = tracing_subscriber::registry().with(filter);
    let result = if json {
        registry
            .with(fmt::layer().json().with_writer(std::io::stderr))
            .try_init()
    } else {
        registry
            .with(fmt::layer().with_ansi(ansi).with_writer(std::io::stderr))
            .try_init()
    };
    // A second init (tests start many apps in one process) keeps the first subscriber.
    drop(result);
}

/// The metrics the router exports. Cheap to clone: every field is a handle.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// Webhook deliveries by outcome: accepted, bad_signature, too_large, store_error.
    pub deliveries: IntCounterVec,
    /// Events by `kind:detail`, duplicates included.
    pub events: IntCounterVec,
    /// Events already stored when they arrived again (Meta's retries and duplicates).
    pub duplicate_events: IntCounter,
    /// Forward attempts by route and outcome: delivered, retry, failed.
    pub forwards: IntCounterVec,
    pub forward_seconds: HistogramVec,
    /// Pending jobs per route, read from the store at scrape time.
    pub queue_depth: IntGaugeVec,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new_custom(Some("switchboard".into()), None)
            .expect("a static prefix is valid");
        let deliveries = IntCounterVec::new(
            Opts::new(
                "webhook_deliveries_total",
                "Webhook deliveries received, by outcome",
            ),
            &["outcome"],
        )
        .expect("valid metric");
        let events = IntCounterVec::new(
            Opts::new("events_total", "Events split out of deliveries, by kind"),
            &["kind"],
        )
        .expect("valid metric");
        let duplicate_events = IntCounter::new(
            "duplicate_events_total",
            "Events that were already stored when they arrived",
        )
        .expect("valid metric");
        let forwards = IntCounterVec::new(
            Opts::new(
                "forwards_total",
                "Forward attempts to consumers, by route and outcome",
            ),
            &["route", "outcome"],
        )
        .expect("valid metric");
        let forward_seconds = HistogramVec::new(
            HistogramOpts::new("forward_duration_seconds", "Time one forward attempt took")
                .buckets(vec![
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                ]),
            &["route"],
        )
        .expect("valid metric");
        let queue_depth = IntGaugeVec::new(
            Opts::new("queue_depth", "Delivery jobs waiting, by route"),
            &["route"],
        )
        .expect("valid metric");
        for collector in [
            Box::new(deliveries.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(events.clone()),
            Box::new(duplicate_events.clone()),
            Box::new(forwards.clone()),
            Box::new(forward_seconds.clone()),
            Box::new(queue_depth.clone()),
        ] {
            registry
                .register(collector)
                .expect("each metric is registered once");
        }
        Self {
            registry,
            deliveries,
            events,
            duplicate_events,
            forwards,
            forward_seconds,
            queue_depth,
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        let encoder = TextEncoder::new();
        if let Err(e) = encoder.encode(&self.registry.gather(), &mut buffer) {
            tracing::error!(error = %e, "cannot encode metrics");
        }
        String::from_utf8(buffer).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// The root span of every request: like `tracing-actix-web`'s default, but with the path
/// only. A query string can carry secrets (Meta's `hub.verify_token`), so it is not logged.
pub struct RequestSpan;

impl tracing_actix_web::RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &actix_web::dev::ServiceRequest) -> tracing::Span {
        use actix_web::HttpMessage;
        let request_id = request
            .extensions()
            .get::<tracing_actix_web::RequestId>()
            .map(ToString::to_string)
            .unwrap_or_default();
        tracing::info_span!(
            "HTTP request",
            http.method = %request.method(),
            http.route = request.match_pattern().unwrap_or_default(),
            http.target = %request.path(),
            http.client_ip = %request.connection_info().realip_remote_addr().unwrap_or(""),
            request_id = %request_id,
            http.status_code = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
            exception.message = tracing::field::Empty,
            exception.details = tracing::field::Empty,
        )
    }

    fn on_request_end<B: actix_web::body::MessageBody>(
        span: tracing::Span,
        outcome: &Result<actix_web::dev::ServiceResponse<B>, actix_web::Error>,
    ) {
        tracing_actix_web::DefaultRootSpanBuilder::on_request_end(span, outcome);
    }
}
