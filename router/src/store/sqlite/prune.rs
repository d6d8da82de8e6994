//! Upkeep of the delivery tables, in small steps: old deliveries forgotten, and the jobs of
//! routes the configuration no longer has failed. Each step is one write of the writer's
//! queue, committed with whatever webhooks queued beside it, so a backlog of any size
//! never holds ingest up for longer than one step.

use rusqlite::{params, Connection, OptionalExtension};

use super::SqliteStore;
use crate::domain::clock::Millis;
use crate::domain::delivery::Pruned;
use crate::domain::route::RouteName;
use crate::store::{Durability, StoreError};

/// Rows one step may delete or change, roughly: small enough that a webhook committed in
/// the same group hardly notices, large enough that a backlog of millions goes in minutes.
pub(super) const STEP_ROWS: usize = 1000;

/// How far a prune has got: the last job and delivery looked at, and whether each table
/// is done.
#[derive(Debug, Default, Clone, Copy)]
struct Cursor {
    job: i64,
    jobs_done: bool,
    delivery: i64,
    deliveries_done: bool,
}

impl SqliteStore {
    /// Prunes what is older than `before` in steps of about `step_rows` rows each, until
    /// nothing more can go.
    pub(super) async fn prune_in_steps(
        &self,
        before: Millis,
        step_rows: usize,
    ) -> Result<Pruned, StoreError> {
        let mut cursor = Cursor::default();
        let mut total = Pruned::default();
        while !(cursor.jobs_done && cursor.deliveries_done) {
            let (pruned, next) = self
                .write(Durability::Relaxed, move |conn| {
                    prune_step(conn, before, cursor, step_rows)
                })
                .await?;
            cursor = next;
            total.jobs += pruned.jobs;
            total.events += pruned.events;
            total.deliveries += pruned.deliveries;
        }
        Ok(total)
    }

    /// Fails the pending jobs of every route not in `keep`, `step_rows` jobs per write.
    pub(super) async fn fail_jobs_in_steps(
        &self,
        keep: &[RouteName],
        reason: &str,
        now: Millis,
        step_rows: usize,
    ) -> Result<u64, StoreError> {
        let pending: Vec<String> = self
            .read(|conn| {
                let routes = conn
                    .prepare_cached("SELECT DISTINCT route FROM jobs WHERE state = 'pending'")?
                    .query_map([], |row| row.get(0))?
                    .collect::<Result<_, _>>()?;
                Ok(routes)
            })
            .await?;
        let mut failed = 0;
        for route in pending {
            if keep.iter().any(|kept| kept.as_str() == route) {
                continue;
            }
            loop {
                let (route, reason) = (route.clone(), reason.to_owned());
                let changed = self
                    .write(Durability::Synced, move |conn| {
                        fail_step(conn, &route, &reason, now, step_rows)
                    })
                    .await?;
                failed += changed;
                if changed < u64::try_from(step_rows).unwrap_or(u64::MAX) {
                    break;
                }
            }
        }
        Ok(failed)
    }
}

/// One step of a prune: delivered jobs first, then deliveries (with their events) that no
/// job needs any more. Ids grow with time, so each table is walked from its oldest row in
/// windows of about `step_rows` rows, and left at the first row too recent to go.
fn prune_step(
    conn: &Connection,
    before: Millis,
    mut cursor: Cursor,
    step_rows: usize,
) -> Result<(Pruned, Cursor), StoreError> {
    let mut pruned = Pruned::default();
    if !cursor.jobs_done {
        pruned.jobs = prune_jobs(conn, before, &mut cursor, step_rows)?;
    } else {
        (pruned.events, pruned.deliveries) =
            prune_deliveries(conn, before, &mut cursor, step_rows)?;
    }
    Ok((pruned, cursor))
}

/// Deletes the delivered jobs settled before `before` among the next `step_rows`
/// delivered jobs; how many.
fn prune_jobs(
    conn: &Connection,
    before: Millis,
    cursor: &mut Cursor,
    step_rows: usize,
) -> Result<u64, StoreError> {
    // The window's last job, if there are that many more.
    let last: Option<(i64, Millis)> = conn
        .prepare_cached(
            "SELECT id, created_at FROM jobs WHERE state = 'delivered' AND id > ?1
             ORDER BY id LIMIT 1 OFFSET ?2",
        )?
        .query_row(params![cursor.job, offset(step_rows)], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .optional()?;
    let end = last.map_or(i64::MAX, |(id, _)| id);
    // Old by when it was settled, not created: a job retried yesterday stays.
    let deleted = conn
        .prepare_cached(
            "DELETE FROM jobs WHERE state = 'delivered' AND id > ?1 AND id <= ?2
               AND updated_at < ?3",
        )?
        .execute(params![cursor.job, end, before])?;
    // A job created since `before` was settled since too, as is every later one.
    cursor.jobs_done = last.is_none_or(|(_, created_at)| created_at >= before);
    cursor.job = end;
    Ok(count(deleted))
}

/// Deletes the deliveries received before `before` that no job needs among the next
/// ones, up to about `step_rows` rows with their events and places; the events and
/// deliveries deleted.
fn prune_deliveries(
    conn: &Connection,
    before: Millis,
    cursor: &mut Cursor,
    step_rows: usize,
) -> Result<(u64, u64), StoreError> {
    let rows: Vec<(i64, Millis, bool, i64)> = conn
        .prepare_cached(
            "SELECT d.id, d.received_at, EXISTS (SELECT 1 FROM jobs j WHERE j.delivery_id = d.id),
                    d.event_count
             FROM deliveries d WHERE d.id > ?1 ORDER BY d.id LIMIT ?2",
        )?
        .query_map(params![cursor.delivery, offset(step_rows) + 1], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })?
        .collect::<Result<_, _>>()?;
    let start = cursor.delivery;
    cursor.deliveries_done = rows.len() < step_rows;
    let mut budget = i64::try_from(step_rows).unwrap_or(i64::MAX);
    for (id, received_at, owed, events) in rows {
        if received_at >= before {
            cursor.deliveries_done = true;
            break;
        }
        if budget <= 0 {
            // The rest waits for the next step.
            cursor.deliveries_done = false;
            break;
        }
        cursor.delivery = id;
        if !owed {
            // The delivery, its place for each event, and the events it brought first.
            budget -= 1 + 2 * events.max(0);
        }
    }
    forget_deliveries(conn, start, cursor.delivery, before)
}

/// Deletes the deliveries with ids in `(after, through]` received before `before` that no
/// job needs, with their events (those they brought first) and their places in them; the
/// events and deliveries deleted.
fn forget_deliveries(
    conn: &Connection,
    after: i64,
    through: i64,
    before: Millis,
) -> Result<(u64, u64), StoreError> {
    const UNOWED: &str = "SELECT d.id FROM deliveries d
         WHERE d.id > ?1 AND d.id <= ?2 AND d.received_at < ?3
           AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.delivery_id = d.id)";
    conn.prepare_cached(&format!(
        "DELETE FROM delivery_events WHERE delivery_id IN ({UNOWED})"
    ))?
    .execute(params![after, through, before])?;
    // Every job of an event names the delivery that brought it, so with no job on the
    // delivery, none of its events is owed anything.
    let events = conn
        .prepare_cached(&format!(
            "DELETE FROM events WHERE received_at < ?3 AND delivery_id IN ({UNOWED})"
        ))?
        .execute(params![after, through, before])?;
    let deliveries = conn
        .prepare_cached(&format!(
            "DELETE FROM deliveries WHERE id IN ({UNOWED})
               AND NOT EXISTS (SELECT 1 FROM events e WHERE e.delivery_id = deliveries.id)"
        ))?
        .execute(params![after, through, before])?;
    Ok((count(events), count(deliveries)))
}

/// `step_rows - 1` as SQL's `OFFSET` of a window's last row.
fn offset(step_rows: usize) -> i64 {
    i64::try_from(step_rows.max(1) - 1).unwrap_or(i64::MAX)
}

/// Fails up to `step_rows` pending jobs of `route`; how many.
fn fail_step(
    conn: &Connection,
    route: &str,
    reason: &str,
    now: Millis,
    step_rows: usize,
) -> Result<u64, StoreError> {
    let changed = conn
        .prepare_cached(
            "UPDATE jobs SET state = 'failed', lease_until = NULL, last_error = ?2,
                    updated_at = ?3
             WHERE id IN (SELECT id FROM jobs WHERE state = 'pending' AND route = ?1 LIMIT ?4)",
        )?
        .execute(params![
            route,
            reason,
            now,
            i64::try_from(step_rows.max(1)).unwrap_or(i64::MAX)
        ])?;
    Ok(count(changed))
}

fn count(rows: usize) -> u64 {
    u64::try_from(rows).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    //! Steps and their edges; what every backend's prune keeps is in `store::contract`.

    use std::time::Duration;

    use bytes::Bytes;

    use super::*;
    use crate::domain::delivery::{NewDelivery, NewEvent, Settlement};
    use crate::domain::event::{EventId, EventKind, Kind};
    use crate::domain::route::ForwardMode;
    use crate::store::sqlite::OpenMode;
    use crate::store::DeliveryStore;

    fn delivery(n: u32, received_at: Millis, routes: &[&RouteName]) -> NewDelivery {
        let events = (0..2)
            .map(|i| NewEvent {
                id: EventId::parse(&format!("evt_{:032x}", n * 2 + i)).unwrap(),
                kind: EventKind::new(Kind::Message, "text"),
                payload: Bytes::from_static(b"{}"),
                routes: routes
                    .iter()
                    .map(|r| ((*r).clone(), ForwardMode::Event))
                    .collect(),
            })
            .collect();
        NewDelivery {
            received_at,
            signature: "sha256=00".into(),
            body: Bytes::from(n.to_string()),
            events,
        }
    }

    fn count_rows(store: &SqliteStore, table: &str) -> i64 {
        let conn = Connection::open(store.path()).unwrap();
        conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    }

    #[tokio::test]
    async fn a_prune_in_steps_smaller_than_the_backlog_removes_all_of_it_and_only_that() {
        let dir = tempfile::TempDir::new().unwrap();
        let store = SqliteStore::open(dir.path(), OpenMode::Server).unwrap();
        let (crm, erp) = (
            RouteName::parse("crm").unwrap(),
            RouteName::parse("erp").unwrap(),
        );
        // 60 old deliveries: every one delivered to crm, except each tenth, still owed to erp.
        for n in 0..60 {
            let routes: &[&RouteName] = if n % 10 == 0 { &[&crm, &erp] } else { &[&crm] };
            store
                .record_delivery(delivery(n, 1_000 + i64::from(n), routes))
                .await
                .unwrap();
        }
        // And one received after the prune's `before` below, delivered, that must stay.
        let now = crate::domain::clock::now_millis();
        let later = now + 120_000;
        store
            .record_delivery(delivery(100, later, &[&crm]))
            .await
            .unwrap();
        let lease = Duration::from_secs(60);
        let jobs = store.claim_jobs(&crm, later, lease, 1_000).await.unwrap();
        assert_eq!(jobs.len(), 61 * 2);
        for job in jobs {
            let delivered = Settlement::Delivered { status: 200 };
            store.settle_job(job.id, delivered).await.unwrap();
        }

        // Steps of 7 rows: many steps for each table.
        let pruned = store.prune_in_steps(now - 1, 7).await.unwrap();

        // Settled just now, every delivered job is too recent to go.
        assert_eq!(pruned, Pruned::default());
        let pruned = store.prune_in_steps(now + 60_000, 7).await.unwrap();
        assert_eq!(pruned.jobs, 61 * 2, "every delivered job");
        assert_eq!(
            pruned.deliveries, 54,
            "all but the six still owed to erp and the later one"
        );
        assert_eq!(pruned.events, 54 * 2);
        assert_eq!(count_rows(&store, "deliveries"), 7);
        assert_eq!(count_rows(&store, "events"), 14);
        assert_eq!(count_rows(&store, "delivery_events"), 14);
        assert_eq!(count_rows(&store, "jobs"), 12, "erp's pending jobs stay");
    }

    #[tokio::test]
    async fn failing_the_jobs_of_a_removed_route_goes_in_steps_and_leaves_the_others() {
        let dir = tempfile::TempDir::new().unwrap();
        let store = SqliteStore::open(dir.path(), OpenMode::Server).unwrap();
        let (crm, gone) = (
            RouteName::parse("crm").unwrap(),
            RouteName::parse("gone").unwrap(),
        );
        for n in 0..10 {
            store
                .record_delivery(delivery(n, 1_000, &[&crm, &gone]))
                .await
                .unwrap();
        }
        let failed = store
            .fail_jobs_in_steps(std::slice::from_ref(&crm), "route removed", 5_000, 3)
            .await
            .unwrap();
        assert_eq!(failed, 20);
        let conn = Connection::open(store.path()).unwrap();
        let states: Vec<(String, String, i64)> = conn
            .prepare("SELECT route, state, COUNT(*) FROM jobs GROUP BY route, state ORDER BY route")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            states,
            vec![
                ("crm".into(), "pending".into(), 20),
                ("gone".into(), "failed".into(), 20)
            ]
        );
    }
}
