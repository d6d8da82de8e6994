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
        let calling_events: Vec<(usize, EventKind, bytes::Bytes)> = events
            .iter()
            .enumerate()
            .filter(|(_, e)| updates::wants(&e.kind))
            .map(|(i, e)| (i, e.kind.clone(), e.payload.clone()))
            .collect();
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
        self.tell_calling(calling_events, &recorded.duplicates);
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

    /// Hands new calling events to the calling plane without holding up Meta's `200`.
    /// They are already stored: if the process dies first, start-up replays them.
    fn tell_calling(&self, events: Vec<(usize, EventKind, bytes::Bytes)>, duplicates: &[bool]) {
        let Some(calling) = self.calling.clone() else {
            return;
        };
        let fresh: Vec<_> = events
            .into_iter()
            .filter(|(i, _, _)| !duplicates.get(*i).copied().unwrap_or(false))
            .collect();
        if fresh.is_empty() {
            return;
        }
        tokio::spawn(async move {
            for (_, kind, payload) in fresh {
                if let Err(e) = calling.apply_event(&kind, &payload).await {
                    tracing::error!(error = %e, %kind, "the calling plane could not apply an event");
                }
            }
        });
    }
}
