//! What happens to a webhook: its signature checked, then split, matched to routes,
//! stored and workers woken; and Meta's subscription handshake.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::calls::{updates, Calling};
use crate::domain::clock::{now_millis, Millis};
use crate::domain::delivery::{NewDelivery, NewEvent};
use crate::domain::event::{EventId, EventKind};
use crate::fanout::routes::Routes;
use crate::fanout::Wakers;
use crate::meta::events::{self, Limits};
use crate::meta::signature::{self, AppSecret, SignatureError, VerifiedDelivery};
use crate::store::{Store, StoreError};
use crate::telemetry::{event_label, Metrics};

/// What a stored delivery held.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Receipt {
    /// 0 for a replay, which is not stored.
    pub delivery_id: i64,
    pub events: Vec<ReceivedEvent>,
    /// A replay of a delivery older than the store remembers: answered, not taken again.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub replay: bool,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ReceivedEvent {
    pub id: String,
    pub kind: String,
    pub duplicate: bool,
}

/// What webhooks are checked against.
pub struct WebhookAuth {
    /// Meta's app secrets; more than one while one is being rotated out.
    pub secrets: Vec<AppSecret>,
    /// The token Meta's subscription handshake must present.
    pub verify_token: SecretString,
    pub max_body_bytes: usize,
}

impl WebhookAuth {
    /// Meta's subscription handshake: the challenge to echo back when the mode is
    /// `subscribe` and the token matches (compared in constant time), else `None`.
    pub fn handshake<'a>(
        &self,
        mode: Option<&str>,
        token: Option<&str>,
        challenge: Option<&'a str>,
    ) -> Option<&'a str> {
        let token_matches = token.is_some_and(|token| {
            bool::from(
                token
                    .as_bytes()
                    .ct_eq(self.verify_token.expose_secret().as_bytes()),
            )
        });
        match (mode, challenge) {
            (Some("subscribe"), Some(challenge)) if token_matches => Some(challenge),
            _ => None,
        }
    }
}

/// How much webhook work is taken on at once, and how much one delivery may become.
pub struct WebhookLimits {
    in_flight: Arc<Semaphore>,
    max_in_flight: usize,
    /// Past these a delivery is kept whole, as one `other:oversize` event.
    pub delivery: Limits,
    /// A delivery all of whose events Meta dated longer ago than this is a replay of one
    /// whose record may already be pruned: answered 200 and not taken again. `None`: every
    /// delivery is taken.
    pub replay_horizon: Option<Duration>,
}

/// How much sooner than the store's retention a delivery counts as a replay: the events
/// of a delivery Meta sent late were received (and are kept) from later than Meta dated them.
const REPLAY_MARGIN: Duration = Duration::from_secs(24 * 3600);

impl WebhookLimits {
    /// `retention`, when replays are recognised, is how long the store remembers events
    /// (at least 8 days, longer than Meta's 7 days of retries).
    pub fn new(max_in_flight: usize, delivery: Limits, retention: Option<Duration>) -> Self {
        Self {
            in_flight: Arc::new(Semaphore::new(max_in_flight)),
            max_in_flight,
            delivery,
            replay_horizon: retention.map(|kept| kept.saturating_sub(REPLAY_MARGIN.min(kept / 2))),
        }
    }

    /// Whether every event is dated before the horizon (and there is at least one).
    fn is_replay(&self, events: &[events::Event], now: Millis) -> bool {
        let Some(horizon) = self.replay_horizon else {
            return false;
        };
        let horizon = now / 1000 - horizon.as_secs() as i64;
        !events.is_empty()
            && events
                .iter()
                .all(|e| e.sent_at.is_some_and(|sent| sent < horizon))
    }
}

/// A webhook under way: one of the `max_webhooks_in_flight` places, held while its body
/// is read and stored, and given back when dropped.
pub struct InFlight {
    _permit: OwnedSemaphorePermit,
    gauge: prometheus::IntGauge,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

/// Every place for a webhook is taken.
#[derive(Debug, thiserror::Error)]
#[error("{0} webhooks are already being taken; try again")]
pub struct Full(usize);

/// Why a webhook was not taken.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    BadSignature(#[from] SignatureError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A webhook's outcome, as counted in `webhook_deliveries_total`.
#[derive(Debug, Clone, Copy)]
enum Outcome {
    Accepted,
    BadSignature,
    TooLarge,
    BodyTimeout,
    Busy,
    StoreError,
    Replay,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Outcome::Accepted => "accepted",
            Outcome::BadSignature => "bad_signature",
            Outcome::TooLarge => "too_large",
            Outcome::BodyTimeout => "body_timeout",
            Outcome::Busy => "busy",
            Outcome::StoreError => "store_error",
            Outcome::Replay => "replay",
        }
    }
}

/// Everything ingest needs, shared by all requests.
#[derive(Clone)]
pub struct Ingest {
    pub auth: Arc<WebhookAuth>,
    pub limits: Arc<WebhookLimits>,
    pub store: Arc<dyn Store>,
    pub routes: Routes,
    pub wakers: Wakers,
    pub metrics: Metrics,
    /// The calling plane, told about new calling events once they are stored.
    pub calling: Option<Calling>,
}

impl Ingest {
    fn count(&self, outcome: Outcome) {
        self.metrics
            .deliveries
            .with_label_values(&[outcome.label()])
            .inc();
    }

    /// Counts a body refused for its size before it was read in full.
    pub fn refused_too_large(&self) {
        self.count(Outcome::TooLarge);
    }

    /// Counts a body that did not arrive before its deadline.
    pub fn timed_out(&self) {
        self.count(Outcome::BodyTimeout);
    }

    /// Takes one of the places for a webhook under way, or says they are all taken (then
    /// nothing is read or stored, and Meta sends the delivery again later).
    pub fn admit(&self) -> Result<InFlight, Full> {
        match self.limits.in_flight.clone().try_acquire_owned() {
            Ok(permit) => {
                self.metrics.webhooks_in_flight.inc();
                Ok(InFlight {
                    _permit: permit,
                    gauge: self.metrics.webhooks_in_flight.clone(),
                })
            }
            Err(_) => {
                self.count(Outcome::Busy);
                tracing::warn!(
                    limit = self.limits.max_in_flight,
                    "webhook refused: too many in flight"
                );
                Err(Full(self.limits.max_in_flight))
            }
        }
    }

    /// Checks the signature of a webhook's raw bytes, then takes it as [`Ingest::receive`]
    /// does. Nothing is stored for a bad signature.
    pub async fn receive_signed(
        &self,
        signature_header: Option<&str>,
        body: Bytes,
    ) -> Result<Receipt, IngestError> {
        let delivery = match signature::verify(&self.auth.secrets, signature_header, body) {
            Ok(delivery) => delivery,
            Err(e) => {
                self.count(Outcome::BadSignature);
                tracing::warn!(error = %e, "webhook refused");
                return Err(e.into());
            }
        };
        match self.receive(delivery).await {
            Ok(receipt) => {
                self.count(if receipt.replay {
                    Outcome::Replay
                } else {
                    Outcome::Accepted
                });
                Ok(receipt)
            }
            Err(e) => {
                // Not a 200, so Meta keeps the delivery and sends it again.
                self.count(Outcome::StoreError);
                Err(e.into())
            }
        }
    }

    /// Returns once the delivery, its events and every job they owe are durable.
    #[tracing::instrument(name = "ingest", skip_all, fields(bytes = delivery.body().len()))]
    pub async fn receive(&self, delivery: VerifiedDelivery) -> Result<Receipt, StoreError> {
        let received_at = now_millis();
        let Some(split) = self.split(&delivery, received_at) else {
            return Ok(Receipt {
                delivery_id: 0,
                events: Vec::new(),
                replay: true,
            });
        };
        let events: Vec<NewEvent> = split
            .events
            .into_iter()
            .map(|event| NewEvent {
                routes: self
                    .routes
                    .matching(&event.kind)
                    .map(|r| (r.name.clone(), r.mode))
                    .collect(),
                id: event.id,
                kind: event.kind,
                payload: event.payload,
            })
            .collect();
        let summary: Vec<(EventId, EventKind)> = events
            .iter()
            .map(|e| (e.id.clone(), e.kind.clone()))
            .collect();
        let calling_events: Vec<(EventKind, bytes::Bytes)> = events
            .iter()
            .filter(|e| updates::wants(&e.kind))
            .map(|e| (e.kind.clone(), e.payload.clone()))
            .collect();
        self.tell_calling(calling_events, received_at);
        let recorded = self
            .store
            .record_delivery(NewDelivery {
                received_at,
                signature: delivery.signature_header().to_owned(),
                body: delivery.body().clone(),
                events,
            })
            .await?;
        for route in &recorded.routes_with_jobs {
            self.wakers.wake(route);
        }
        let mut receipt = Receipt {
            delivery_id: recorded.delivery_id,
            events: Vec::with_capacity(summary.len()),
            replay: false,
        };
        for ((id, kind), duplicate) in summary.into_iter().zip(&recorded.duplicates) {
            self.metrics
                .events
                .with_label_values(&[event_label(&kind)])
                .inc();
            receipt.events.push(ReceivedEvent {
                id: id.to_string(),
                kind: kind.to_string(),
                duplicate: *duplicate,
            });
        }
        self.metrics
            .duplicate_events
            .inc_by(recorded.duplicate_events as u64);
        tracing::info!(
            delivery = recorded.delivery_id,
            new_events = recorded.new_events,
            duplicates = recorded.duplicate_events,
            "delivery stored"
        );
        Ok(receipt)
    }

    /// The delivery's events, or `None` for a replay from before the store's memory.
    fn split(&self, delivery: &VerifiedDelivery, received_at: Millis) -> Option<events::Split> {
        let split = events::split_within(delivery, self.limits.delivery);
        if self.limits.is_replay(&split.events, received_at) {
            tracing::warn!(
                horizon_secs = self.limits.replay_horizon.map_or(0, |h| h.as_secs()),
                events = split.events.len(),
                "a delivery dated past the replay horizon: answered, not taken again"
            );
            return None;
        }
        if let Some(why) = split.oversize {
            self.metrics
                .oversize_deliveries
                .with_label_values(&[why.label()])
                .inc();
            tracing::warn!(
                reason = why.label(),
                limits = ?self.limits.delivery,
                "delivery too large to split: kept whole as one other:oversize event"
            );
        }
        Some(split)
    }

    /// Hands calling events to the calling plane while the delivery is being stored, so
    /// agents hear of a call without waiting for the disk. Applying an event twice (a
    /// Meta retry, or the start-up replay after a crash) changes nothing the second time.
    fn tell_calling(&self, events: Vec<(EventKind, bytes::Bytes)>, received_at: Millis) {
        let Some(calling) = self.calling.clone() else {
            return;
        };
        if events.is_empty() {
            return;
        }
        tokio::spawn(async move {
            for (kind, payload) in events {
                if let Err(e) = calling.apply_event(&kind, &payload, received_at).await {
                    tracing::error!(error = %e, %kind, "the calling plane could not apply an event");
                }
            }
        });
    }
}
