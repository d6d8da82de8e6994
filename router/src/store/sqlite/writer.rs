//! The writer thread: every write of the store, committed in groups, each in its own
//! savepoint, with the WAL kept short between groups ([`WalKeeper`]).

use std::any::Any;
use std::panic::{self, AssertUnwindSafe};
use std::sync::mpsc;
use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::queue::Place;
use super::wal::WalKeeper;
use crate::store::{Durability, StoreError};

/// The most writes committed in one transaction.
const MAX_GROUP: usize = 1024;

/// A write queued for the writer thread, with the durability its commit must have.
pub(super) struct Write {
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
    /// Whether the caller stopped waiting (its time ran out, or it went away): a write
    /// nobody waits for any more is not begun, so a caller that heard it failed can rely
    /// on that unless it had already begun.
    fn abandoned(&self) -> bool;
}

/// A write and the channel its caller waits on.
struct Queued<T, F> {
    /// Taken out to run, so the reply can still be sent if the work panics.
    work: Option<F>,
    result: Option<Result<T, StoreError>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
    /// The write's place in the queue, given back when it is answered or dropped.
    _place: Option<Place>,
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

    fn abandoned(&self) -> bool {
        self.reply.is_closed()
    }
}

/// Wraps `work` for the writer thread, holding `place` until it is answered; the receiver
/// gets its outcome.
pub(super) fn queue_write<T, F>(
    durability: Durability,
    work: F,
    place: Option<Place>,
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
        _place: place,
    });
    (Write { durability, op }, answer)
}

/// How long the writer waits for a write before it looks after the WAL anyway.
const IDLE_LOOK: Duration = Duration::from_millis(250);

/// Commits what is queued, group after group, until every sender is gone; between groups
/// (and when idle) `keeper`, if any, keeps the WAL short.
pub(super) fn run_writer(
    conn: Connection,
    receiver: mpsc::Receiver<Write>,
    mut keeper: Option<WalKeeper>,
) {
    // `open_connection` left the connection at FULL.
    let mut synced = true;
    loop {
        let first = match receiver.recv_timeout(IDLE_LOOK) {
            Ok(write) => write,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if let Some(keeper) = &mut keeper {
                    keeper.between_groups(&conn);
                }
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match receiver.try_recv() {
                Ok(write) => group.push(write),
                Err(_) => break,
            }
        }
        write_group(&conn, &mut synced, group);
        if let Some(keeper) = &mut keeper {
            keeper.between_groups(&conn);
        }
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
    let mut abandoned = 0_usize;
    for write in group {
        if write.op.abandoned() {
            // Its caller was told it failed; dropping it gives back its place.
            abandoned += 1;
            continue;
        }
        if let Some(op) = run_in_savepoint(conn, write.op) {
            ran.push(op);
        }
    }
    if abandoned > 0 {
        tracing::warn!(
            writes = abandoned,
            "store: writes not begun: their callers stopped waiting"
        );
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

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
        let (first, first_answer) = queue_write(Durability::Synced, insert(1), None);
        let (bad, bad_answer) = queue_write(
            Durability::Synced,
            |conn| -> Result<(), StoreError> {
                insert(2)(conn)?;
                panic!("a bug in a write");
            },
            None,
        );
        let (last, last_answer) = queue_write(Durability::Synced, insert(3), None);
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
        let (write, reply) = queue_write(
            Durability::Relaxed,
            move |conn| {
                seen.store(true, std::sync::atomic::Ordering::SeqCst);
                insert(1)(conn)
            },
            None,
        );
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
    fn a_write_whose_caller_stopped_waiting_is_not_begun() {
        let conn = scratch_connection();
        let (kept, kept_answer) = queue_write(Durability::Synced, insert(1), None);
        let (dropped, dropped_answer) = queue_write(Durability::Synced, insert(2), None);
        drop(dropped_answer);
        commit_group(&conn, vec![kept, dropped]);
        assert!(answer(kept_answer).is_ok());
        assert_eq!(rows(&conn), vec![1]);
    }

    #[test]
    fn synced_writes_fail_rather_than_commit_without_an_fsync() {
        let conn = scratch_connection();
        // SQLite refuses to change `synchronous` inside a transaction.
        conn.execute_batch("BEGIN").unwrap();
        let mut synced = false;
        let (write, reply) = queue_write(Durability::Synced, insert(1), None);
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
        let (write, reply) = queue_write(Durability::Synced, insert(2), None);
        write_group(&conn, &mut synced, vec![write]);
        assert!(answer(reply).is_ok());
        assert!(synced);
        assert_eq!(rows(&conn), vec![2]);
    }
}
