//! Deliveries, their events and the jobs they owe: recorded atomically, claimed under
//! lease, settled, listed, retried, replayed and pruned.

use std::collections::BTreeSet;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use rusqlite::{params, Connection, OptionalExtension, Row};

use super::columns::{known, parsed, parsed_opt};
use super::prune::STEP_ROWS;
use super::SqliteStore;
use crate::domain::clock::Millis;
use crate::domain::delivery::{
    CallingEvent, ClaimedJob, JobBody, JobFilter, JobState, JobView, NewDelivery, NewEvent, Pruned,
    QueueDepth, Recorded, Settlement, StoredEvent,
};
use crate::domain::event::{EventId, EventKind};
use crate::domain::route::{ForwardMode, RouteName};
use crate::store::{DeliveryStore, Durability, StoreError};

fn record(conn: &Connection, delivery: &NewDelivery) -> Result<Recorded, StoreError> {
    conn.prepare_cached(
        "INSERT INTO deliveries (received_at, signature, body, event_count) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![
        delivery.received_at,
        delivery.signature,
        &delivery.body[..],
        i64::try_from(delivery.events.len()).unwrap_or(i64::MAX)
    ])?;
    let delivery_id = conn.last_insert_rowid();
    let mut recorded = Recorded {
        delivery_id,
        ..Recorded::default()
    };
    let mut woken = BTreeSet::new();
    let mut original_routes = BTreeSet::new();
    for (seq, event) in delivery.events.iter().enumerate() {
        let is_new = record_event(conn, delivery_id, seq, event, delivery.received_at)?;
        recorded.duplicates.push(!is_new);
        if !is_new {
            recorded.duplicate_events += 1;
            continue;
        }
        recorded.new_events += 1;
        for (route, mode) in &event.routes {
            match mode {
                ForwardMode::Event => {
                    insert_job(
                        conn,
                        route,
                        *mode,
                        Some(&event.id),
                        delivery_id,
                        delivery.received_at,
                    )?;
                    woken.insert(route.clone());
                }
                ForwardMode::Original => {
                    original_routes.insert(route.clone());
                }
            }
        }
    }
    for route in original_routes {
        insert_job(
            conn,
            &route,
            ForwardMode::Original,
            None,
            delivery_id,
            delivery.received_at,
        )?;
        woken.insert(route);
    }
    recorded.routes_with_jobs = woken.into_iter().collect();
    Ok(recorded)
}

/// Stores one event of a delivery (or counts it seen again) and its place in the delivery;
/// whether it was new.
fn record_event(
    conn: &Connection,
    delivery_id: i64,
    seq: usize,
    event: &NewEvent,
    received_at: Millis,
) -> Result<bool, StoreError> {
    let inserted = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO events (id, delivery_id, kind, payload, received_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![
            event.id.as_str(),
            delivery_id,
            event.kind.to_string(),
            &event.payload[..],
            received_at
        ])?;
    let is_new = inserted == 1;
    if !is_new {
        conn.prepare_cached("UPDATE events SET seen_count = seen_count + 1 WHERE id = ?1")?
            .execute([event.id.as_str()])?;
    }
    conn.prepare_cached(
        "INSERT INTO delivery_events (delivery_id, seq, event_id, duplicate) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![
        delivery_id,
        i64::try_from(seq).unwrap_or(i64::MAX),
        event.id.as_str(),
        !is_new
    ])?;
    Ok(is_new)
}

fn insert_job(
    conn: &Connection,
    route: &RouteName,
    mode: ForwardMode,
    event: Option<&EventId>,
    delivery_id: i64,
    now: Millis,
) -> Result<i64, StoreError> {
    conn.prepare_cached(
        "INSERT INTO jobs (route, mode, event_id, delivery_id, state, attempts, next_attempt_at, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, 'pending', 0, ?5, ?5, ?5)",
    )?
    .execute(params![
        route.as_str(),
        mode.as_str(),
        event.map(EventId::as_str),
        delivery_id,
        now
    ])?;
    Ok(conn.last_insert_rowid())
}

fn claim(
    conn: &Connection,
    route: &RouteName,
    now: Millis,
    lease_until: Millis,
    limit: usize,
) -> Result<Vec<ClaimedJob>, StoreError> {
    // A claim is not an attempt: jobs claimed and never tried (a shutdown, a crash) must
    // not lose one, so `attempts` only grows when an attempt is settled.
    let mut claimed: Vec<(i64, i64, u32, Option<String>, i64)> = conn
        .prepare_cached(
            "UPDATE jobs SET lease_until = ?1, updated_at = ?2
             WHERE id IN (
                 SELECT id FROM jobs
                 WHERE route = ?3 AND state = 'pending' AND next_attempt_at <= ?2
                   AND (lease_until IS NULL OR lease_until <= ?2)
                 ORDER BY next_attempt_at, id LIMIT ?4)
             RETURNING next_attempt_at, id, attempts + 1, event_id, delivery_id",
        )?
        .query_map(
            params![
                lease_until,
                now,
                route.as_str(),
                i64::try_from(limit).unwrap_or(i64::MAX)
            ],
            |row| {
                Ok((
                    row.get(0)?,
                    row.get(1)?,
                    row.get(2)?,
                    row.get(3)?,
                    row.get(4)?,
                ))
            },
        )?
        .collect::<Result<_, _>>()?;
    // RETURNING gives rows in no promised order; a worker sends in the order it gets them.
    claimed.sort_unstable_by_key(|&(due, id, ..)| (due, id));
    let mut jobs = Vec::with_capacity(claimed.len());
    for (_, id, attempt, event_id, delivery_id) in claimed {
        let body = match event_id {
            Some(event_id) => {
                let (kind, payload): (String, Vec<u8>) = conn
                    .prepare_cached("SELECT kind, payload FROM events WHERE id = ?1")?
                    .query_row([&event_id], |row| Ok((row.get(0)?, row.get(1)?)))?;
                JobBody::Event {
                    id: EventId::parse(&event_id)
                        .map_err(|e| StoreError::Unavailable(anyhow::anyhow!(e)))?,
                    kind: EventKind::parse(&kind).ok_or_else(|| {
                        StoreError::Unavailable(anyhow::anyhow!("stored kind `{kind}` is unknown"))
                    })?,
                    payload: Bytes::from(payload),
                }
            }
            None => {
                let (signature, body): (String, Vec<u8>) = conn
                    .prepare_cached("SELECT signature, body FROM deliveries WHERE id = ?1")?
                    .query_row([delivery_id], |row| Ok((row.get(0)?, row.get(1)?)))?;
                JobBody::Original {
                    delivery_id,
                    signature,
                    body: Bytes::from(body),
                }
            }
        };
        jobs.push(ClaimedJob {
            id,
            route: route.clone(),
            attempt,
            body,
        });
    }
    Ok(jobs)
}

fn settle(
    conn: &Connection,
    job: i64,
    settlement: &Settlement,
    now: Millis,
) -> Result<(), StoreError> {
    let (state, next, status, error) = match settlement {
        Settlement::Delivered { status } => (JobState::Delivered, None, Some(*status), None),
        Settlement::RetryAt { at, status, error } => {
            (JobState::Pending, Some(*at), *status, Some(error.as_str()))
        }
        Settlement::Failed { status, error } => {
            (JobState::Failed, None, *status, Some(error.as_str()))
        }
    };
    conn.prepare_cached(
        "UPDATE jobs SET state = ?2, next_attempt_at = ?3, lease_until = NULL,
                attempts = attempts + 1, last_status = ?4, last_error = ?5, updated_at = ?6
         WHERE id = ?1",
    )?
    .execute(params![job, state.as_str(), next, status, error, now])?;
    Ok(())
}

const JOB_COLUMNS: &str =
    "j.id, j.route, j.mode, j.state, j.event_id, e.kind, j.delivery_id, j.attempts,
     j.next_attempt_at, j.last_status, j.last_error, j.created_at, j.updated_at";

fn job_view(row: &Row<'_>) -> rusqlite::Result<JobView> {
    let state: String = row.get(3)?;
    Ok(JobView {
        id: row.get(0)?,
        route: parsed(row, 1, RouteName::parse)?,
        mode: parsed(row, 2, |t| known(ForwardMode::parse(t)))?,
        state: JobState::parse(&state).unwrap_or(JobState::Failed),
        event_id: parsed_opt(row, 4, EventId::parse)?,
        event_kind: parsed_opt(row, 5, |t| known(EventKind::parse(t)))?,
        delivery_id: row.get(6)?,
        attempts: row.get(7)?,
        next_attempt_at: row.get(8)?,
        last_status: row.get(9)?,
        last_error: row.get(10)?,
        created_at: row.get(11)?,
        updated_at: row.get(12)?,
    })
}

fn find_job(conn: &Connection, job: i64) -> Result<Option<JobView>, StoreError> {
    Ok(conn
        .query_row(
            &format!("SELECT {JOB_COLUMNS} FROM jobs j LEFT JOIN events e ON e.id = j.event_id WHERE j.id = ?1"),
            [job],
            job_view,
        )
        .optional()?)
}

#[async_trait]
impl DeliveryStore for SqliteStore {
    async fn record_delivery(&self, delivery: NewDelivery) -> Result<Recorded, StoreError> {
        self.write(Durability::Synced, move |conn| record(conn, &delivery))
            .await
    }

    async fn claim_jobs(
        &self,
        route: &RouteName,
        now: Millis,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<ClaimedJob>, StoreError> {
        let route = route.clone();
        let lease_until = now.saturating_add(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX));
        self.write(Durability::Relaxed, move |conn| {
            claim(conn, &route, now, lease_until, limit)
        })
        .await
    }

    async fn settle_job(&self, job: i64, settlement: Settlement) -> Result<(), StoreError> {
        let now = crate::domain::clock::now_millis();
        self.write(Durability::Relaxed, move |conn| {
            settle(conn, job, &settlement, now)
        })
        .await
    }

    async fn list_jobs(&self, filter: JobFilter) -> Result<Vec<JobView>, StoreError> {
        self.read(move |conn| {
            let sql = format!(
                "SELECT {JOB_COLUMNS} FROM jobs j LEFT JOIN events e ON e.id = j.event_id
                 WHERE (?1 IS NULL OR j.state = ?1) AND (?2 IS NULL OR j.route = ?2)
                   AND (?3 IS NULL OR j.id < ?3)
                 ORDER BY j.id DESC LIMIT ?4"
            );
            let rows = conn
                .prepare_cached(&sql)?
                .query_map(
                    params![
                        filter.state.map(JobState::as_str),
                        filter.route.as_ref().map(RouteName::as_str),
                        filter.before_id,
                        i64::try_from(filter.limit).unwrap_or(i64::MAX)
                    ],
                    job_view,
                )?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
        .await
    }

    async fn retry_job(&self, job: i64, now: Millis) -> Result<JobView, StoreError> {
        self.write(Durability::Synced, move |conn| {
            // A pending job under a live lease is in a worker's hands: making it due again
            // would have a second worker send it beside the first.
            let changed = conn
                .prepare_cached(
                    "UPDATE jobs SET state = 'pending', attempts = 0, next_attempt_at = ?2,
                            lease_until = NULL, updated_at = ?2
                     WHERE id = ?1 AND (state = 'failed' OR (state = 'pending'
                           AND (lease_until IS NULL OR lease_until <= ?2)))",
                )?
                .execute(params![job, now])?;
            let view = find_job(conn, job)?
                .ok_or_else(|| StoreError::NotFound(format!("delivery job {job}")))?;
            if changed == 0 {
                return Err(StoreError::Conflict(match view.state {
                    JobState::Pending => {
                        format!("delivery job {job} is being delivered right now")
                    }
                    JobState::Delivered => format!(
                        "delivery job {job} was already delivered; replay its event to send it again"
                    ),
                    // A failed job is always retried above; only a stored state this
                    // version does not know is shown as failed and ends up here.
                    JobState::Failed => format!("delivery job {job} cannot be retried"),
                }));
            }
            Ok(view)
        })
        .await
    }

    async fn event(&self, id: &EventId) -> Result<Option<StoredEvent>, StoreError> {
        let id = id.clone();
        self.read(move |conn| {
            Ok(conn
                .query_row(
                    "SELECT id, kind, delivery_id, received_at, seen_count FROM events WHERE id = ?1",
                    [id.as_str()],
                    |row| {
                        Ok(StoredEvent {
                            id: parsed(row, 0, EventId::parse)?,
                            kind: parsed(row, 1, |t| known(EventKind::parse(t)))?,
                            delivery_id: row.get(2)?,
                            received_at: row.get(3)?,
                            seen_count: row.get(4)?,
                        })
                    },
                )
                .optional()?)
        })
        .await
    }

    async fn replay_event(
        &self,
        id: &EventId,
        routes: Vec<(RouteName, ForwardMode)>,
        now: Millis,
    ) -> Result<Vec<i64>, StoreError> {
        let id = id.clone();
        self.write(Durability::Synced, move |conn| {
            let delivery_id: i64 = conn
                .query_row(
                    "SELECT delivery_id FROM events WHERE id = ?1",
                    [id.as_str()],
                    |row| row.get(0),
                )
                .optional()?
                .ok_or_else(|| StoreError::NotFound(format!("event {id}")))?;
            routes
                .iter()
                .map(|(route, mode)| {
                    let event = (*mode == ForwardMode::Event).then_some(&id);
                    insert_job(conn, route, *mode, event, delivery_id, now)
                })
                .collect()
        })
        .await
    }

    async fn queue_depth(&self) -> Result<Vec<QueueDepth>, StoreError> {
        self.read(|conn| {
            let rows = conn
                .prepare_cached(
                    "SELECT route, COUNT(*) FROM jobs WHERE state = 'pending' GROUP BY route",
                )?
                .query_map([], |row| {
                    Ok(QueueDepth {
                        route: parsed(row, 0, RouteName::parse)?,
                        pending: u64::try_from(row.get::<_, i64>(1)?).unwrap_or(0),
                    })
                })?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
        .await
    }

    async fn prune(&self, before: Millis) -> Result<Pruned, StoreError> {
        self.prune_in_steps(before, STEP_ROWS).await
    }

    async fn fail_jobs_of_other_routes(
        &self,
        routes: &[RouteName],
        reason: &str,
        now: Millis,
    ) -> Result<u64, StoreError> {
        self.fail_jobs_in_steps(routes, reason, now, STEP_ROWS)
            .await
    }

    async fn calling_events_since(&self, since: Millis) -> Result<Vec<CallingEvent>, StoreError> {
        self.read(move |conn| {
            let rows: Vec<(String, Vec<u8>, Millis)> = conn
                .prepare_cached(
                    "SELECT kind, payload, received_at FROM events
                     WHERE received_at >= ?1
                       AND (kind LIKE 'call:%' OR kind LIKE 'call_status:%' OR kind LIKE 'call_permission_reply:%')
                     ORDER BY delivery_id, rowid",
                )?
                .query_map([since], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
                .collect::<Result<_, _>>()?;
            Ok(rows
                .into_iter()
                .filter_map(|(kind, payload, received_at)| {
                    Some(CallingEvent {
                        kind: EventKind::parse(&kind)?,
                        payload: Bytes::from(payload),
                        received_at,
                    })
                })
                .collect())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    //! What is SQLite's own; the behaviour every backend shares is in `store::contract`.

    use super::*;
    use crate::domain::delivery::NewEvent;
    use crate::domain::event::Kind;
    use crate::store::sqlite::OpenMode;

    fn delivery(n: u8, received_at: Millis, route: &RouteName) -> NewDelivery {
        let id = EventId::parse(&format!("evt_{}", format!("{n:02x}").repeat(16))).unwrap();
        NewDelivery {
            received_at,
            signature: "sha256=00".into(),
            body: Bytes::from(vec![n]),
            events: vec![NewEvent {
                id,
                kind: EventKind::new(Kind::Message, "text"),
                payload: Bytes::from_static(b"{}"),
                routes: vec![(route.clone(), ForwardMode::Event)],
            }],
        }
    }

    fn count(store: &SqliteStore, table: &str) -> i64 {
        let conn = Connection::open(store.path()).unwrap();
        conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    }

    #[tokio::test]
    async fn a_server_opening_the_file_releases_the_leases_the_last_process_held() {
        let dir = tempfile::TempDir::new().unwrap();
        let route = RouteName::parse("crm").unwrap();
        let now = 1_000_000;
        let lease = Duration::from_secs(60);
        {
            let store = SqliteStore::open(dir.path(), OpenMode::Server).unwrap();
            store
                .record_delivery(delivery(1, now, &route))
                .await
                .unwrap();
            assert_eq!(
                store
                    .claim_jobs(&route, now, lease, 10)
                    .await
                    .unwrap()
                    .len(),
                1
            );
        }
        {
            // A tool beside a running server must not free the jobs its workers hold.
            let tool = SqliteStore::open(dir.path(), OpenMode::Tool).unwrap();
            assert!(tool
                .claim_jobs(&route, now, lease, 10)
                .await
                .unwrap()
                .is_empty());
        }
        // The process that held the lease is gone: the job is free at once, not in a minute.
        let store = SqliteStore::open(dir.path(), OpenMode::Server).unwrap();
        let after_restart = store.claim_jobs(&route, now, lease, 10).await.unwrap();
        assert_eq!(after_restart.len(), 1, "the old lease was cleared");
        assert_eq!(after_restart[0].attempt, 1);
    }

    #[tokio::test]
    async fn a_write_that_panics_is_answered_with_an_error_and_the_writer_goes_on() {
        let dir = tempfile::TempDir::new().unwrap();
        let store = SqliteStore::open(dir.path(), OpenMode::Server).unwrap();
        let route = RouteName::parse("crm").unwrap();
        let panicked = store
            .write(Durability::Synced, |conn| -> Result<(), StoreError> {
                conn.execute(
                    "INSERT INTO deliveries (received_at, signature, body, event_count)
                     VALUES (1, 'sha256=00', x'00', 0)",
                    [],
                )?;
                panic!("a bug in a write");
            })
            .await;
        assert!(
            matches!(&panicked, Err(StoreError::Unavailable(e)) if e.to_string().contains("a bug in a write")),
            "{panicked:?}"
        );
        assert_eq!(count(&store, "deliveries"), 0, "the write was rolled back");
        store
            .record_delivery(delivery(1, 1_000, &route))
            .await
            .unwrap();
        assert_eq!(count(&store, "deliveries"), 1);
    }
}
