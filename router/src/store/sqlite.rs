//! The embedded store: one SQLite file in `data_dir`, WAL mode, `synchronous = FULL`.
//!
//! All writes go through one writer thread that commits whatever has queued up in a single
//! transaction (group commit): a burst of webhooks costs one fsync, not one each, and every
//! caller hears back only after the commit that holds its write. Each write runs inside its
//! own savepoint, so one failing write does not undo the others in its group. Reads use a
//! second connection, which WAL lets run beside the writer.

use std::any::Any;
use std::collections::BTreeSet;
use std::fs::File;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use bytes::Bytes;
use rusqlite::{params, Connection, OptionalExtension, Row};
use tokio::sync::oneshot;

use super::{Durability, Store, StoreError, Versioned};
use crate::domain::call::Call;
use crate::domain::clock::Millis;
use crate::domain::delivery::{
    CallingEvent, ClaimedJob, JobBody, JobFilter, JobState, JobView, NewDelivery, Pruned,
    QueueDepth, Recorded, Settlement, StoredEvent,
};
use crate::domain::event::{EventId, EventKind};
use crate::domain::permission::Permission;
use crate::domain::route::{ForwardMode, RouteName};

/// Read connections beside the writer.
const READERS: usize = 4;

/// The most writes committed in one transaction.
const MAX_GROUP: usize = 1024;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS deliveries (
    id           INTEGER PRIMARY KEY,
    received_at  INTEGER NOT NULL,
    signature    TEXT NOT NULL,
    body         BLOB NOT NULL,
    event_count  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    id           TEXT PRIMARY KEY,
    delivery_id  INTEGER NOT NULL REFERENCES deliveries(id),
    kind         TEXT NOT NULL,
    payload      BLOB NOT NULL,
    received_at  INTEGER NOT NULL,
    seen_count   INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE IF NOT EXISTS delivery_events (
    delivery_id  INTEGER NOT NULL REFERENCES deliveries(id),
    seq          INTEGER NOT NULL,
    event_id     TEXT NOT NULL,
    duplicate    INTEGER NOT NULL,
    PRIMARY KEY (delivery_id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS jobs (
    id               INTEGER PRIMARY KEY,
    route            TEXT NOT NULL,
    mode             TEXT NOT NULL,
    event_id         TEXT,
    delivery_id      INTEGER NOT NULL,
    state            TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER,
    lease_until      INTEGER,
    last_status      INTEGER,
    last_error       TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_due ON jobs (route, next_attempt_at) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs (state, id);
CREATE INDEX IF NOT EXISTS events_by_delivery ON events (delivery_id);
CREATE INDEX IF NOT EXISTS events_by_time ON events (received_at);
CREATE TABLE IF NOT EXISTS calls (
    id           TEXT PRIMARY KEY,
    user_phone   TEXT,
    user_bsuid   TEXT,
    live         INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    doc          TEXT NOT NULL,
    version      INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS calls_live_phone ON calls (user_phone) WHERE live = 1;
CREATE INDEX IF NOT EXISTS calls_live_bsuid ON calls (user_bsuid) WHERE live = 1;
CREATE INDEX IF NOT EXISTS calls_by_time ON calls (created_at DESC, id);
CREATE TABLE IF NOT EXISTS permissions (
    id           INTEGER PRIMARY KEY,
    user_phone   TEXT UNIQUE,
    user_bsuid   TEXT UNIQUE,
    doc          TEXT NOT NULL,
    version      INTEGER NOT NULL
);
"#;

/// A write queued for the writer thread, with the durability its commit must have.
struct Write {
    durability: Durability,
    op: Box<dyn WriteOp>,
}

/// One caller's write. The writer answers each exactly once: `finish` after the commit
/// of a write that ran, `fail` for one that never ran or was undone. Keeping the answer
/// apart from the work is what lets the writer refuse a write without running it.
trait WriteOp: Send {
    /// Runs the work inside the write's savepoint; whether it succeeded, so the savepoint
    /// is kept or rolled back.
    fn run(&mut self, conn: &Connection) -> bool;
    /// Tells the caller how the commit holding its write ended.
    fn finish(self: Box<Self>, commit: Result<(), String>);
    /// Tells the caller its write did not happen.
    fn fail(self: Box<Self>, error: String);
}

/// A write and the channel its caller waits on.
struct Queued<T, F> {
    /// Taken out to run, so the reply can still be sent if the work panics.
    work: Option<F>,
    result: Option<Result<T, StoreError>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> WriteOp for Queued<T, F>
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
{
    fn run(&mut self, conn: &Connection) -> bool {
        let Some(work) = self.work.take() else {
            return false;
        };
        let result = work(conn);
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn finish(self: Box<Self>, commit: Result<(), String>) {
        let outcome = match (commit, self.result) {
            (Ok(()), Some(result)) => result,
            (Ok(()), None) => Err(StoreError::Unavailable(anyhow::anyhow!(
                "the write never ran"
            ))),
            (Err(e), _) => Err(StoreError::Unavailable(anyhow::anyhow!(
                "commit failed: {e}"
            ))),
        };
        // The caller may have gone away (a client hung up); the write stands.
        let _ = self.reply.send(outcome);
    }

    fn fail(self: Box<Self>, error: String) {
        // As in `finish`, a caller that went away needs no answer.
        let _ = self
            .reply
            .send(Err(StoreError::Unavailable(anyhow::anyhow!(error))));
    }
}

/// Wraps `work` for the writer thread; the receiver gets its outcome.
fn queue_write<T, F>(
    durability: Durability,
    work: F,
) -> (Write, oneshot::Receiver<Result<T, StoreError>>)
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
{
    let (reply, answer) = oneshot::channel();
    let op = Box::new(Queued {
        work: Some(work),
        result: None,
        reply,
    });
    (Write { durability, op }, answer)
}

/// Whether this process serves (and owns the queue) or is a tool reading beside a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    Server,
    Tool,
}

#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    writer: mpsc::Sender<Write>,
    /// Read connections: a slow read (a count over a large backlog) does not hold up the
    /// quick ones an agent's accept waits for.
    readers: Vec<Mutex<Connection>>,
    path: PathBuf,
    /// Held for the life of a serving store: two servers on one file would deliver twice.
    _lock: Option<File>,
    /// Dropped with the store, which stops the checkpoint thread.
    _stop_checkpoints: mpsc::Sender<()>,
}

impl SqliteStore {
    /// Opens (creating if needed) `data_dir/switchboard.db`.
    pub fn open(data_dir: &Path, mode: OpenMode) -> anyhow::Result<Self> {
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("cannot create data_dir {}", data_dir.display()))?;
        let lock = match mode {
            OpenMode::Server => Some(lock_data_dir(data_dir)?),
            OpenMode::Tool => None,
        };
        let path = data_dir.join("switchboard.db");
        let writer = open_connection(&path)?;
        writer
            .execute_batch(SCHEMA)
            .context("cannot create the schema")?;
        if mode == OpenMode::Server {
            // Leases held by a previous process of ours died with it.
            writer
                .execute(
                    "UPDATE jobs SET lease_until = NULL WHERE lease_until IS NOT NULL",
                    [],
                )
                .context("cannot release old leases")?;
        }
        // Checkpoints run on their own thread, so no webhook waits for one (SQLite would
        // otherwise run them inside whichever commit crosses the threshold).
        writer.pragma_update(None, "wal_autocheckpoint", 0)?;
        let (stop_checkpoints, stopped) = mpsc::channel::<()>();
        if mode == OpenMode::Server {
            let checkpointer = open_connection(&path)?;
            std::thread::Builder::new()
                .name("store-checkpoint".into())
                .spawn(move || run_checkpoints(checkpointer, stopped))
                .context("cannot start the store checkpointer")?;
        }
        let readers = (0..READERS)
            .map(|_| open_connection(&path).map(Mutex::new))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let (sender, receiver) = mpsc::channel::<Write>();
        std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || run_writer(writer, receiver))
            .context("cannot start the store writer")?;
        Ok(Self {
            inner: Arc::new(Inner {
                writer: sender,
                readers,
                path,
                _lock: lock,
                _stop_checkpoints: stop_checkpoints,
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    async fn write<T, F>(&self, durability: Durability, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (write, answer) = queue_write(durability, work);
        self.inner
            .writer
            .send(write)
            .map_err(|_| StoreError::Unavailable(anyhow::anyhow!("the store writer stopped")))?;
        answer
            .await
            .map_err(|_| StoreError::Unavailable(anyhow::anyhow!("the store writer stopped")))?
    }

    async fn read<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            // A free connection if there is one, else wait for the first.
            let free = inner
                .readers
                .iter()
                .find_map(|reader| reader.try_lock().ok());
            let conn = match free {
                Some(conn) => conn,
                None => inner.readers[0]
                    .lock()
                    .map_err(|_| StoreError::Unavailable(anyhow::anyhow!("reader poisoned")))?,
            };
            work(&conn)
        })
        .await
        .map_err(|e| StoreError::Unavailable(e.into()))?
    }
}

fn lock_data_dir(data_dir: &Path) -> anyhow::Result<File> {
    let path = data_dir.join("switchboard.lock");
    let file = File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
    file.try_lock().map_err(|_| {
        anyhow::anyhow!(
            "another switchboard server is using {}; two servers on one store would deliver twice",
            data_dir.display()
        )
    })?;
    Ok(file)
}

fn open_connection(path: &Path) -> anyhow::Result<Connection> {
    let conn = Connection::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    conn.busy_timeout(Duration::from_secs(10))?;
    // WAL lets reads run beside the writer; FULL makes each commit durable on its own.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(conn)
}

/// How often the WAL is copied back into the database.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

/// Copies committed WAL frames into the database without blocking the writer, until the
/// store is dropped (which drops the sender of `stop`).
fn run_checkpoints(conn: Connection, stop: mpsc::Receiver<()>) {
    while let Err(mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(CHECKPOINT_EVERY) {
        let result: rusqlite::Result<(i64, i64, i64)> =
            conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            });
        if let Err(e) = result {
            tracing::warn!(error = %e, "store: checkpoint failed");
        }
    }
}

fn run_writer(conn: Connection, receiver: mpsc::Receiver<Write>) {
    // `open_connection` left the connection at FULL.
    let mut synced = true;
    while let Ok(first) = receiver.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match receiver.try_recv() {
                Ok(write) => group.push(write),
                Err(_) => break,
            }
        }
        write_group(&conn, &mut synced, group);
    }
}

/// Sets the durability `group` needs, then commits it. `synced` is whether the connection
/// is at `synchronous = FULL`.
fn write_group(conn: &Connection, synced: &mut bool, group: Vec<Write>) {
    // `synchronous` is per connection and may change between transactions: a group
    // that holds any acknowledged write pays the fsync, a group of claims does not.
    let needs_sync = group.iter().any(|w| w.durability == Durability::Synced);
    if needs_sync != *synced {
        let level = if needs_sync { "FULL" } else { "NORMAL" };
        match conn.pragma_update(None, "synchronous", level) {
            Ok(()) => *synced = needs_sync,
            Err(e) if needs_sync => {
                // Committing without the fsync would acknowledge writes a power cut can
                // still take away; better that their callers hear they failed.
                tracing::error!(error = %e, "store: cannot set synchronous = FULL");
                fail_group(group, &format!("cannot make the commit durable: {e}"));
                return;
            }
            // Staying at FULL only costs an fsync the group did not need.
            Err(e) => tracing::warn!(error = %e, "store: cannot set synchronous = NORMAL"),
        }
    }
    commit_group(conn, group);
}

fn commit_group(conn: &Connection, group: Vec<Write>) {
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        tracing::error!(error = %e, "store: cannot begin a transaction");
        // Outside a transaction a write could not be undone, so none of them runs.
        fail_group(group, &format!("cannot begin a transaction: {e}"));
        return;
    }
    let mut ran = Vec::with_capacity(group.len());
    for write in group {
        if let Some(op) = run_in_savepoint(conn, write.op) {
            ran.push(op);
        }
    }
    let commit = conn.execute_batch("COMMIT").map_err(|e| e.to_string());
    if let Err(e) = &commit {
        tracing::error!(error = %e, "store: commit failed; the group is rolled back");
        let _ = conn.execute_batch("ROLLBACK");
    }
    for op in ran {
        op.finish(commit.clone());
    }
}

/// Runs one write inside its own savepoint and hands it back to hear of the commit. A
/// write that panics is rolled back and answered at once: one bug in one write must not
/// stop the writer thread, or every later write would fail.
fn run_in_savepoint(conn: &Connection, mut op: Box<dyn WriteOp>) -> Option<Box<dyn WriteOp>> {
    let savepoint = conn.execute_batch("SAVEPOINT write");
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| op.run(conn)));
    let release = match (savepoint, matches!(outcome, Ok(true))) {
        (Ok(()), true) => conn.execute_batch("RELEASE write"),
        (Ok(()), false) => conn.execute_batch("ROLLBACK TO write; RELEASE write"),
        (Err(e), _) => Err(e),
    };
    if let Err(e) = release {
        tracing::error!(error = %e, "store: savepoint failed");
    }
    match outcome {
        Ok(_) => Some(op),
        Err(payload) => {
            let message = panic_message(payload.as_ref());
            tracing::error!(panic = %message, "store: a write panicked and was rolled back");
            op.fail(format!("the write panicked: {message}"));
            None
        }
    }
}

/// Answers every write of a group that will not run, without running any.
fn fail_group(group: Vec<Write>, error: &str) {
    for write in group {
        write.op.fail(error.to_owned());
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("no message")
}

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
                delivery.received_at
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
    let claimed: Vec<(i64, u32, Option<String>, i64)> = conn
        .prepare_cached(
            "UPDATE jobs SET lease_until = ?1, updated_at = ?2
             WHERE id IN (
                 SELECT id FROM jobs
                 WHERE route = ?3 AND state = 'pending' AND next_attempt_at <= ?2
                   AND (lease_until IS NULL OR lease_until <= ?2)
                 ORDER BY next_attempt_at, id LIMIT ?4)
             RETURNING id, attempts + 1, event_id, delivery_id",
        )?
        .query_map(
            params![
                lease_until,
                now,
                route.as_str(),
                i64::try_from(limit).unwrap_or(i64::MAX)
            ],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
        )?
        .collect::<Result<_, _>>()?;
    let mut jobs = Vec::with_capacity(claimed.len());
    for (id, attempt, event_id, delivery_id) in claimed {
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
        route: row.get(1)?,
        mode: row.get(2)?,
        state: JobState::parse(&state).unwrap_or(JobState::Failed),
        event_id: row.get(4)?,
        event_kind: row.get(5)?,
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

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Unavailable(e.into()))
}

fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Unavailable(e.into()))
}

/// The keys a user is found by: phone number and BSUID, either may be missing.
fn user_keys(user: &switchboard_protocol::User) -> (Option<&str>, Option<&str>) {
    let bsuid = (!user.user_id.is_empty()).then_some(user.user_id.as_str());
    (user.wa_id.as_deref(), bsuid)
}

fn live_call_of_user(conn: &Connection, call: &Call) -> Result<Option<String>, StoreError> {
    let (phone, bsuid) = user_keys(&call.user);
    Ok(conn
        .prepare_cached(
            "SELECT id FROM calls WHERE live = 1 AND id != ?3
               AND ((?1 IS NOT NULL AND user_phone = ?1) OR (?2 IS NOT NULL AND user_bsuid = ?2))
             LIMIT 1",
        )?
        .query_row(params![phone, bsuid, call.id], |row| row.get(0))
        .optional()?)
}

fn write_call(conn: &Connection, call: &Call, version: i64) -> Result<(), StoreError> {
    let (phone, bsuid) = user_keys(&call.user);
    conn.prepare_cached(
        "INSERT INTO calls (id, user_phone, user_bsuid, live, created_at, doc, version)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (id) DO UPDATE SET user_phone = ?2, user_bsuid = ?3, live = ?4,
             created_at = ?5, doc = ?6, version = ?7",
    )?
    .execute(params![
        call.id,
        phone,
        bsuid,
        call.is_live(),
        call.created_at,
        to_json(call)?,
        version
    ])?;
    Ok(())
}

fn call_version(conn: &Connection, id: &str) -> Result<Option<i64>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT version FROM calls WHERE id = ?1")?
        .query_row([id], |row| row.get(0))
        .optional()?)
}

fn check_version(found: Option<i64>, expected: Option<i64>, what: &str) -> Result<i64, StoreError> {
    if found == expected {
        Ok(expected.map_or(1, |v| v + 1))
    } else {
        Err(StoreError::Conflict(format!("{what} changed meanwhile")))
    }
}

fn permission_rows(
    conn: &Connection,
    phone: Option<&str>,
    bsuid: Option<&str>,
) -> Result<Vec<(i64, String, i64)>, StoreError> {
    let rows = conn
        .prepare_cached(
            "SELECT id, doc, version FROM permissions
             WHERE (?1 IS NOT NULL AND user_phone = ?1) OR (?2 IS NOT NULL AND user_bsuid = ?2)
             ORDER BY version DESC",
        )?
        .query_map(params![phone, bsuid], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

#[async_trait]
impl Store for SqliteStore {
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
                            id: row.get(0)?,
                            kind: row.get(1)?,
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
                        route: row.get(0)?,
                        pending: u64::try_from(row.get::<_, i64>(1)?).unwrap_or(0),
                    })
                })?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
        .await
    }

    async fn prune(&self, before: Millis) -> Result<Pruned, StoreError> {
        self.write(Durability::Relaxed, move |conn| {
            let jobs = conn.execute(
                "DELETE FROM jobs WHERE state = 'delivered' AND updated_at < ?1",
                [before],
            )?;
            // What a pending or failed job will still send must stay.
            let kept = "SELECT delivery_id FROM jobs";
            conn.execute(
                &format!(
                    "DELETE FROM delivery_events WHERE delivery_id IN
                     (SELECT id FROM deliveries WHERE received_at < ?1 AND id NOT IN ({kept}))"
                ),
                [before],
            )?;
            let events = conn.execute(
                "DELETE FROM events WHERE received_at < ?1
                   AND id NOT IN (SELECT event_id FROM jobs WHERE event_id IS NOT NULL)
                   AND delivery_id NOT IN (SELECT delivery_id FROM jobs)",
                [before],
            )?;
            let deliveries = conn.execute(
                &format!(
                    "DELETE FROM deliveries WHERE received_at < ?1 AND id NOT IN ({kept})
                       AND id NOT IN (SELECT delivery_id FROM events)"
                ),
                [before],
            )?;
            let count = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
            Ok(Pruned {
                jobs: count(jobs),
                events: count(events),
                deliveries: count(deliveries),
            })
        })
        .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.read(|conn| Ok(conn.query_row("SELECT 1", [], |_| Ok(()))?))
            .await?;
        self.write(Durability::Relaxed, |_| Ok(())).await
    }

    async fn insert_call(
        &self,
        call: &Call,
        one_per_user: bool,
        durability: Durability,
    ) -> Result<i64, StoreError> {
        let call = call.clone();
        self.write(durability, move |conn| {
            if call_version(conn, &call.id)?.is_some() {
                return Err(StoreError::Conflict(format!(
                    "call {} already exists",
                    call.id
                )));
            }
            if one_per_user {
                if let Some(live) = live_call_of_user(conn, &call)? {
                    return Err(StoreError::Conflict(format!(
                        "{} already has a live call ({live})",
                        call.user.display_name()
                    )));
                }
            }
            write_call(conn, &call, 1)?;
            Ok(1)
        })
        .await
    }

    async fn load_call(&self, id: &str) -> Result<Option<Versioned<Call>>, StoreError> {
        let id = id.to_owned();
        self.read(move |conn| {
            let row: Option<(String, i64)> = conn
                .prepare_cached("SELECT doc, version FROM calls WHERE id = ?1")?
                .query_row([&id], |row| Ok((row.get(0)?, row.get(1)?)))
                .optional()?;
            row.map(|(doc, version)| {
                Ok(Versioned {
                    value: from_json(&doc)?,
                    version,
                })
            })
            .transpose()
        })
        .await
    }

    async fn update_call(
        &self,
        call: &Call,
        version: i64,
        durability: Durability,
    ) -> Result<i64, StoreError> {
        let call = call.clone();
        self.write(durability, move |conn| {
            let next = check_version(call_version(conn, &call.id)?, Some(version), "the call")?;
            write_call(conn, &call, next)?;
            Ok(next)
        })
        .await
    }

    async fn promote_call(
        &self,
        local_id: &str,
        call: &Call,
        version: Option<i64>,
    ) -> Result<i64, StoreError> {
        let (local_id, call) = (local_id.to_owned(), call.clone());
        self.write(Durability::Synced, move |conn| {
            let next = check_version(call_version(conn, &call.id)?, version, "the call")?;
            conn.prepare_cached("DELETE FROM calls WHERE id = ?1")?
                .execute([&local_id])?;
            write_call(conn, &call, next)?;
            Ok(next)
        })
        .await
    }

    async fn list_calls(&self, before: Option<i64>, limit: usize) -> Result<Vec<Call>, StoreError> {
        self.read(move |conn| {
            let docs: Vec<String> = conn
                .prepare_cached(
                    "SELECT doc FROM calls WHERE (?1 IS NULL OR created_at < ?1)
                     ORDER BY created_at DESC, id LIMIT ?2",
                )?
                .query_map(
                    params![before, i64::try_from(limit).unwrap_or(i64::MAX)],
                    |row| row.get(0),
                )?
                .collect::<Result<_, _>>()?;
            docs.iter().map(|d| from_json(d)).collect()
        })
        .await
    }

    async fn live_calls(&self) -> Result<Vec<Call>, StoreError> {
        self.read(|conn| {
            let docs: Vec<String> = conn
                .prepare_cached("SELECT doc FROM calls WHERE live = 1 ORDER BY created_at")?
                .query_map([], |row| row.get(0))?
                .collect::<Result<_, _>>()?;
            docs.iter().map(|d| from_json(d)).collect()
        })
        .await
    }

    async fn load_permission(
        &self,
        phone: Option<&str>,
        bsuid: Option<&str>,
    ) -> Result<Option<Versioned<Permission>>, StoreError> {
        let (phone, bsuid) = (phone.map(str::to_owned), bsuid.map(str::to_owned));
        self.read(move |conn| {
            permission_rows(conn, phone.as_deref(), bsuid.as_deref())?
                .into_iter()
                .next()
                .map(|(_, doc, version)| {
                    Ok(Versioned {
                        value: from_json(&doc)?,
                        version,
                    })
                })
                .transpose()
        })
        .await
    }

    async fn save_permission(
        &self,
        permission: &Permission,
        version: Option<i64>,
    ) -> Result<i64, StoreError> {
        let permission = permission.clone();
        self.write(Durability::Synced, move |conn| {
            let (phone, bsuid) = user_keys(&permission.user);
            let rows = permission_rows(conn, phone, bsuid)?;
            let next = check_version(rows.first().map(|r| r.2), version, "the permission")?;
            // A user first known by number and later by BSUID (or the reverse) may have two
            // records; the one being saved carries what both knew, so the others go.
            for (id, _, _) in &rows {
                conn.prepare_cached("DELETE FROM permissions WHERE id = ?1")?
                    .execute([id])?;
            }
            conn.prepare_cached(
                "INSERT INTO permissions (user_phone, user_bsuid, doc, version) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![phone, bsuid, to_json(&permission)?, next])?;
            Ok(next)
        })
        .await
    }

    async fn calling_events_since(&self, since: Millis) -> Result<Vec<CallingEvent>, StoreError> {
        self.read(move |conn| {
            let rows: Vec<(String, Vec<u8>)> = conn
                .prepare_cached(
                    "SELECT kind, payload FROM events
                     WHERE received_at >= ?1
                       AND (kind LIKE 'call:%' OR kind LIKE 'call_status:%' OR kind LIKE 'call_permission_reply:%')
                     ORDER BY delivery_id, rowid",
                )?
                .query_map([since], |row| Ok((row.get(0)?, row.get(1)?)))?
                .collect::<Result<_, _>>()?;
            Ok(rows
                .into_iter()
                .filter_map(|(kind, payload)| {
                    Some(CallingEvent {
                        kind: EventKind::parse(&kind)?,
                        payload: Bytes::from(payload),
                    })
                })
                .collect())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::clock::now_millis;
    use crate::domain::delivery::NewEvent;
    use crate::domain::event::Kind;

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
    async fn pruning_forgets_old_delivered_webhooks_and_keeps_what_is_still_owed() {
        let dir = tempfile::TempDir::new().unwrap();
        let store = SqliteStore::open(dir.path(), OpenMode::Server).unwrap();
        let route = RouteName::parse("crm").unwrap();
        let now = now_millis();
        store
            .record_delivery(delivery(1, 1_000, &route))
            .await
            .unwrap();
        store
            .record_delivery(delivery(2, 2_000, &route))
            .await
            .unwrap();
        store
            .record_delivery(delivery(3, now + 60_000, &route))
            .await
            .unwrap();
        let jobs = store
            .claim_jobs(&route, now + 120_000, Duration::from_secs(60), 10)
            .await
            .unwrap();
        assert_eq!(jobs.len(), 3);
        // The first and the recent one were delivered; the second failed and is kept.
        for job in &jobs {
            let settlement = if job.attempt == 1
                && matches!(&job.body, JobBody::Event { id, .. } if id.as_str().starts_with("evt_0202"))
            {
                Settlement::Failed {
                    status: Some(500),
                    error: "down".into(),
                }
            } else {
                Settlement::Delivered { status: 200 }
            };
            store.settle_job(job.id, settlement).await.unwrap();
        }
        let pruned = store.prune(now + 30_000).await.unwrap();
        assert_eq!(
            pruned.jobs, 2,
            "both delivered jobs are old enough by update time"
        );
        assert_eq!(pruned.events, 1);
        assert_eq!(pruned.deliveries, 1);
        assert_eq!(count(&store, "deliveries"), 2);
        assert_eq!(count(&store, "events"), 2);
        assert_eq!(count(&store, "jobs"), 1);
        // The failed job can still be retried: its event and delivery are there.
        let failed = store
            .list_jobs(JobFilter {
                state: Some(JobState::Failed),
                limit: 10,
                ..JobFilter::default()
            })
            .await
            .unwrap();
        store.retry_job(failed[0].id, now).await.unwrap();
        let again = store
            .claim_jobs(&route, now + 120_000, Duration::from_secs(60), 10)
            .await
            .unwrap();
        assert_eq!(again.len(), 1);
    }

    fn open_store(dir: &tempfile::TempDir) -> SqliteStore {
        SqliteStore::open(dir.path(), OpenMode::Server).unwrap()
    }

    async fn the_job(store: &SqliteStore) -> JobView {
        let jobs = store
            .list_jobs(JobFilter {
                limit: 10,
                ..JobFilter::default()
            })
            .await
            .unwrap();
        assert_eq!(jobs.len(), 1);
        jobs.into_iter().next().unwrap()
    }

    #[tokio::test]
    async fn a_job_a_worker_is_delivering_cannot_be_retried_until_its_lease_runs_out() {
        let dir = tempfile::TempDir::new().unwrap();
        let store = open_store(&dir);
        let route = RouteName::parse("crm").unwrap();
        let now = 1_000_000;
        store
            .record_delivery(delivery(1, now, &route))
            .await
            .unwrap();
        // Pending and held by nobody: a retry just makes it due now.
        let job = the_job(&store).await.id;
        store.retry_job(job, now).await.unwrap();

        let lease = Duration::from_secs(60);
        let claimed = store.claim_jobs(&route, now, lease, 10).await.unwrap();
        assert_eq!(claimed.len(), 1);
        let refused = store.retry_job(job, now + 1_000).await;
        assert!(
            matches!(&refused, Err(StoreError::Conflict(why)) if why.contains("being delivered right now")),
            "{refused:?}"
        );
        // The lease still stands, so no second worker gets the job.
        let second = store
            .claim_jobs(&route, now + 1_000, lease, 10)
            .await
            .unwrap();
        assert!(second.is_empty());

        // The worker died: once its lease ran out, the job can be retried.
        let later = now + 60_000;
        let view = store.retry_job(job, later).await.unwrap();
        assert_eq!(view.state, JobState::Pending);
        assert_eq!(view.next_attempt_at, Some(later));
        let again = store.claim_jobs(&route, later, lease, 10).await.unwrap();
        assert_eq!(again.len(), 1);

        store
            .settle_job(job, Settlement::Delivered { status: 200 })
            .await
            .unwrap();
        let delivered = store.retry_job(job, later).await;
        assert!(
            matches!(&delivered, Err(StoreError::Conflict(why)) if why.contains("already delivered")),
            "{delivered:?}"
        );
    }

    #[tokio::test]
    async fn a_job_claimed_but_never_tried_keeps_its_attempts_across_a_restart() {
        let dir = tempfile::TempDir::new().unwrap();
        let route = RouteName::parse("crm").unwrap();
        let now = 1_000_000;
        let lease = Duration::from_secs(60);
        {
            let store = open_store(&dir);
            store
                .record_delivery(delivery(1, now, &route))
                .await
                .unwrap();
            let first = store.claim_jobs(&route, now, lease, 10).await.unwrap();
            assert_eq!(first[0].attempt, 1);
            store
                .settle_job(
                    first[0].id,
                    Settlement::RetryAt {
                        at: now,
                        status: Some(503),
                        error: "busy".into(),
                    },
                )
                .await
                .unwrap();
            assert_eq!(the_job(&store).await.attempts, 1);
            // Claimed into a worker's buffer, then the process stops before trying it.
            let second = store.claim_jobs(&route, now, lease, 10).await.unwrap();
            assert_eq!(second[0].attempt, 2);
            assert_eq!(the_job(&store).await.attempts, 1);
        }
        let store = open_store(&dir);
        assert_eq!(the_job(&store).await.attempts, 1);
        let after_restart = store.claim_jobs(&route, now, lease, 10).await.unwrap();
        assert_eq!(after_restart.len(), 1, "the old lease was cleared");
        assert_eq!(after_restart[0].attempt, 2);
        store
            .settle_job(
                after_restart[0].id,
                Settlement::Failed {
                    status: Some(500),
                    error: "down".into(),
                },
            )
            .await
            .unwrap();
        let failed = the_job(&store).await;
        assert_eq!(failed.state, JobState::Failed);
        assert_eq!(failed.attempts, 2);
    }

    #[tokio::test]
    async fn a_write_that_panics_is_answered_with_an_error_and_the_writer_goes_on() {
        let dir = tempfile::TempDir::new().unwrap();
        let store = open_store(&dir);
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

    /// A connection with one table, for driving the writer's steps directly.
    fn scratch_connection() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (n INTEGER NOT NULL)")
            .unwrap();
        conn
    }

    fn insert(n: i64) -> impl FnOnce(&Connection) -> Result<(), StoreError> + Send + 'static {
        move |conn| {
            conn.execute("INSERT INTO t (n) VALUES (?1)", [n])?;
            Ok(())
        }
    }

    fn rows(conn: &Connection) -> Vec<i64> {
        conn.prepare("SELECT n FROM t ORDER BY n")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    fn answer<T>(mut answer: oneshot::Receiver<Result<T, StoreError>>) -> Result<T, StoreError> {
        answer.try_recv().expect("the write was answered")
    }

    #[test]
    fn a_panicking_write_does_not_undo_the_others_in_its_group() {
        let conn = scratch_connection();
        let (first, first_answer) = queue_write(Durability::Synced, insert(1));
        let (bad, bad_answer) = queue_write(Durability::Synced, |conn| -> Result<(), StoreError> {
            insert(2)(conn)?;
            panic!("a bug in a write");
        });
        let (last, last_answer) = queue_write(Durability::Synced, insert(3));
        commit_group(&conn, vec![first, bad, last]);
        assert!(answer(first_answer).is_ok());
        assert!(matches!(
            answer(bad_answer),
            Err(StoreError::Unavailable(_))
        ));
        assert!(answer(last_answer).is_ok());
        assert_eq!(rows(&conn), vec![1, 3]);
    }

    #[test]
    fn a_group_whose_transaction_cannot_begin_runs_none_of_its_writes() {
        let conn = scratch_connection();
        // A transaction already open makes `BEGIN IMMEDIATE` fail.
        conn.execute_batch("BEGIN").unwrap();
        let ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let seen = ran.clone();
        let (write, reply) = queue_write(Durability::Relaxed, move |conn| {
            seen.store(true, std::sync::atomic::Ordering::SeqCst);
            insert(1)(conn)
        });
        commit_group(&conn, vec![write]);
        let failed = answer(reply);
        assert!(
            matches!(&failed, Err(StoreError::Unavailable(e)) if e.to_string().contains("cannot begin")),
            "{failed:?}"
        );
        assert!(!ran.load(std::sync::atomic::Ordering::SeqCst));
        conn.execute_batch("ROLLBACK").unwrap();
        assert!(rows(&conn).is_empty());
    }

    #[test]
    fn synced_writes_fail_rather_than_commit_without_an_fsync() {
        let conn = scratch_connection();
        // SQLite refuses to change `synchronous` inside a transaction.
        conn.execute_batch("BEGIN").unwrap();
        let mut synced = false;
        let (write, reply) = queue_write(Durability::Synced, insert(1));
        write_group(&conn, &mut synced, vec![write]);
        let failed = answer(reply);
        assert!(
            matches!(&failed, Err(StoreError::Unavailable(e)) if e.to_string().contains("durable")),
            "{failed:?}"
        );
        assert!(!synced);
        conn.execute_batch("ROLLBACK").unwrap();
        assert!(rows(&conn).is_empty());
        // Once the pragma can be set, the next synced group goes through.
        let (write, reply) = queue_write(Durability::Synced, insert(2));
        write_group(&conn, &mut synced, vec![write]);
        assert!(answer(reply).is_ok());
        assert!(synced);
        assert_eq!(rows(&conn), vec![2]);
    }
}
