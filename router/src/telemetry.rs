//! Logs (structured `tracing`) and Prometheus metrics.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};
use tracing_subscriber::{fmt, prelude::*, EnvFilter};

use crate::domain::event::{EventKind, Kind};

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
    /// Webhook deliveries by outcome: accepted, bad_signature, too_large, body_timeout,
    /// busy, store_error.
    pub deliveries: IntCounterVec,
    /// Events by `kind:detail` from a closed set ([`event_label`]), duplicates included.
    pub events: IntCounterVec,
    /// Deliveries kept whole as one `other:oversize` event, by reason: items, event_bytes.
    pub oversize_deliveries: IntCounterVec,
    /// Webhook bodies being read or stored now.
    pub webhooks_in_flight: IntGauge,
    /// Events already stored when they arrived again (Meta's retries and duplicates).
    pub duplicate_events: IntCounter,
    /// Forward attempts by route and outcome: delivered, retry, failed.
    pub forwards: IntCounterVec,
    pub forward_seconds: HistogramVec,
    /// Pending jobs per route, read from the store in the background (never per scrape).
    pub queue_depth: IntGaugeVec,
    /// The store's writer.
    pub store: StoreMetrics,
}

/// The store writer's queue: how full it is and what it refused.
#[derive(Clone)]
pub struct StoreMetrics {
    /// Writes queued for the writer or being written now.
    pub writes_waiting: IntGauge,
    /// Writes refused, by reason: `queue_full` (every place taken), `timeout` (not
    /// committed in time).
    pub writes_refused: IntCounterVec,
}

impl StoreMetrics {
    /// The store's metrics, registered in `registry`.
    fn registered(registry: &Registry) -> Self {
        let metrics = Self {
            writes_waiting: IntGauge::new(
                "store_writes_waiting",
                "Writes queued for the store's writer or being written",
            )
            .expect("valid metric"),
            writes_refused: IntCounterVec::new(
                Opts::new(
                    "store_writes_refused_total",
                    "Store writes refused, by reason (queue_full, timeout)",
                ),
                &["reason"],
            )
            .expect("valid metric"),
        };
        for collector in [
            Box::new(metrics.writes_waiting.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(metrics.writes_refused.clone()),
        ] {
            registry
                .register(collector)
                .expect("each metric is registered once");
        }
        metrics
    }
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
        let oversize_deliveries = IntCounterVec::new(
            Opts::new(
                "oversize_deliveries_total",
                "Deliveries too large to split, kept whole as one other:oversize event, by reason",
            ),
            &["reason"],
        )
        .expect("valid metric");
        let webhooks_in_flight = IntGauge::new(
            "webhooks_in_flight",
            "Webhook bodies being read or stored now",
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
            Box::new(oversize_deliveries.clone()),
            Box::new(webhooks_in_flight.clone()),
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
            deliveries,
            events,
            oversize_deliveries,
            webhooks_in_flight,
            duplicate_events,
            forwards,
            forward_seconds,
            queue_depth,
            store: StoreMetrics::registered(&registry),
            registry,
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

/// The `kind` label of `events_total` for an event: its `kind:detail` when the detail is
/// one Meta documents, else `kind:other`. Details come from Meta's payloads, so a label per
/// new string would let a sender make series without end; the set is closed instead.
pub fn event_label(event: &EventKind) -> &'static str {
    let (known, other): (&[&'static str], &'static str) = match event.kind {
        Kind::Message => (&MESSAGE_LABELS, "message:other"),
        Kind::CallPermissionReply => (
            &[
                "call_permission_reply:accept",
                "call_permission_reply:reject",
            ],
            "call_permission_reply:other",
        ),
        Kind::MessageStatus => (&MESSAGE_STATUS_LABELS, "message_status:other"),
        Kind::Call => (&["call:connect", "call:terminate"], "call:other"),
        Kind::CallStatus => (
            &[
                "call_status:ringing",
                "call_status:accepted",
                "call_status:rejected",
            ],
            "call_status:other",
        ),
        Kind::Other => (&OTHER_LABELS, "other:other"),
    };
    known
        .iter()
        .find(|label| label.split_once(':').map(|(_, detail)| detail) == Some(&event.detail))
        .copied()
        .unwrap_or(other)
}

/// Meta's message types.
const MESSAGE_LABELS: [&str; 16] = [
    "message:audio",
    "message:button",
    "message:contacts",
    "message:document",
    "message:image",
    "message:interactive",
    "message:location",
    "message:order",
    "message:reaction",
    "message:request_welcome",
    "message:sticker",
    "message:system",
    "message:text",
    "message:unknown",
    "message:unsupported",
    "message:video",
];

const MESSAGE_STATUS_LABELS: [&str; 6] = [
    "message_status:sent",
    "message_status:delivered",
    "message_status:read",
    "message_status:failed",
    "message_status:played",
    "message_status:deleted",
];

/// The router's own `other` details and the webhook fields of a WhatsApp Business Account.
const OTHER_LABELS: [&str; 14] = [
    "other:unparsed",
    "other:oversize",
    "other:messages",
    "other:calls",
    "other:account_alerts",
    "other:account_update",
    "other:account_review_update",
    "other:business_capability_update",
    "other:message_template_status_update",
    "other:message_template_quality_update",
    "other:phone_number_name_update",
    "other:phone_number_quality_update",
    "other:security",
    "other:template_category_update",
];

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_details_are_their_own_label_and_unknown_ones_count_as_other() {
        for (event, label) in [
            ("message:text", "message:text"),
            ("message_status:read", "message_status:read"),
            ("call_status:ringing", "call_status:ringing"),
            ("other:oversize", "other:oversize"),
            ("message:a-brand-new-type", "message:other"),
            ("message_status:x1", "message_status:other"),
            ("call:ring", "call:other"),
            ("call_permission_reply:maybe", "call_permission_reply:other"),
            ("call_status:", "call_status:other"),
            ("other:some_future_field", "other:other"),
        ] {
            let kind = EventKind::parse(event).expect("a kind");
            assert_eq!(event_label(&kind), label, "{event}");
        }
    }

    #[test]
    fn every_label_names_the_kind_of_its_event() {
        for kind in Kind::ALL {
            for detail in [
                "text", "read", "connect", "accept", "ringing", "unparsed", "?",
            ] {
                let label = event_label(&EventKind::new(kind, detail));
                assert_eq!(label.split_once(':').map(|(k, _)| k), Some(kind.as_str()));
            }
        }
    }
}
