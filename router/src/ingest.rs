//! What happens to a verified delivery: split, matched to routes, stored, workers woken.

use std::sync::Arc;

use crate::calls::{updates, Calling};
use crate::fanout::routes::Routes;
use crate::fanout::Wakers;
use crate::meta::events;
use crate::meta::events::{EventId, EventKind};
use crate::meta::signature::VerifiedDelivery;
use crate::store::{now_millis, NewDelivery, NewEvent, Store, StoreError};
use crate::telemetry::Metrics;

/// What a stored delivery held.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Receipt {
    pub delivery_id: i64,
    pub events: Vec<ReceivedEvent>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ReceivedEvent {
    pub id: String,
    pub kind: String,
    pub duplicate: bool,
}

/// Everything ingest needs, shared by all requests.
#[derive(Clone)]
pub struct Ingest {
    pub store: Arc<dyn Store>,
    pub routes: Routes,
    pub wakers: Wakers,
    pub metrics: Metrics,
    /// The calling plane, told about new calling events once they are stored.
    pub calling: Option<Calling>,
}

impl Ingest {
    /// Returns once the delivery, its events and every job they owe are durable.
    #[tracing::instrument(name = "ingest", skip_all, fields(bytes = delivery.body().len()))]
    pub async fn receive(&self, delivery: VerifiedDelivery) -> Result<Receipt, StoreError> {
        let events: Vec<NewEvent> = events::split(&delivery)
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
        self.tell_calling(calling_events);
        let recorded = self
            .store
            .record_delivery(NewDelivery {
                received_at: now_millis(),
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
        };
        for ((id, kind), duplicate) in summary.into_iter().zip(&recorded.duplicates) {
            let kind = kind.to_string();
            self.metrics.events.with_label_values(&[&kind]).inc();
            receipt.events.push(ReceivedEvent {
                id: id.to_string(),
                kind,
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

    /// Hands calling events to the calling plane while the delivery is being stored, so
    /// agents hear of a call without waiting for the disk. Applying an event twice (a
    /// Meta retry, or the start-up replay after a crash) changes nothing the second time.
    fn tell_calling(&self, events: Vec<(EventKind, bytes::Bytes)>) {
        let Some(calling) = self.calling.clone() else {
            return;
        };
        if events.is_empty() {
            return;
        }
        tokio::spawn(async move {
            for (kind, payload) in events {
                if let Err(e) = calling.apply_event(&kind, &payload).await {
                    tracing::error!(error = %e, %kind, "the calling plane could not apply an event");
                }
            }
        });
    }
}
