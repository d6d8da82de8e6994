//! Keeping the write-ahead log small. Commits append to the WAL; a checkpoint copies its
//! frames back into the database, and the WAL starts over from its beginning only when a
//! write begins at a moment every frame has been copied and no read is still using it.
//!
//! Two parts share the work:
//! - the checkpointer thread ([`run_checkpoints`]) copies frames beside the writer
//!   (`PASSIVE`: it never blocks a commit), so no webhook waits for that copy;
//! - the writer thread ([`WalKeeper`]) finishes the job between two groups. Under a steady
//!   stream of commits the checkpointer alone never catches up with the writer, and the
//!   WAL would grow for as long as the stream lasts; the writer, copying the few frames
//!   left while it writes nothing, lets its next commit start the WAL over. When no frame
//!   has been added for a while it also truncates the file to nothing (after a prune, say).
//!
//! `journal_size_limit` cuts a WAL that grew past [`WAL_SIZE_LIMIT`] (while a long read
//! held it) back to that size when it starts over.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use rusqlite::Connection;

/// How often the checkpointer copies the WAL back into the database: often enough that
/// little is left for the writer's turn.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(50);
/// WAL frames (pages) past which the writer lets the WAL start over: 64 MiB of 4 KiB
/// pages. Each start over costs commits one sync of the database (milliseconds on a slow
/// disk), so not much less: at 5,000 webhooks a second that is about one a second.
pub(super) const RESTART_FRAMES: i64 = 16_384;
/// How soon the writer tries again after a checkpoint of its own that could not copy
/// everything (the checkpointer was copying, or a read still used old frames); doubled at
/// each failed try, up to [`RESTART_RETRY_MAX`]. Each try costs the writer a sync of the
/// database, so reads that never stop cost it one a second at most.
const RESTART_RETRY: Duration = Duration::from_millis(50);
const RESTART_RETRY_MAX: Duration = Duration::from_secs(1);
/// How long the WAL must not have grown before the writer truncates it.
const IDLE_TRUNCATE: Duration = Duration::from_secs(1);
/// How long a truncation may wait for reads to finish before it gives up until next time:
/// the writer holds no commit back longer than this for it.
const TRUNCATE_PATIENCE: Duration = Duration::from_millis(50);
/// The writer connection's usual patience with locks (a tool's write beside the server).
pub(super) const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// The most a WAL file keeps once it starts over (`journal_size_limit`): above what it
/// reaches under steady load, so it is not cut and grown again at every start over.
pub(super) const WAL_SIZE_LIMIT: i64 = 128 * 1024 * 1024;

/// What the checkpointer last saw of the WAL, for the writer to act on.
#[derive(Debug, Default)]
pub(super) struct WalWatch {
    /// Frames in the WAL at the checkpointer's last pass.
    frames: AtomicI64,
    /// Passes so far, so the writer acts on each report once.
    passes: AtomicU64,
}

impl WalWatch {
    /// The frames last reported, and which report that was.
    fn frames(&self) -> (i64, u64) {
        let pass = self.passes.load(Ordering::Acquire);
        (self.frames.load(Ordering::Relaxed), pass)
    }

    fn set_frames(&self, frames: i64) {
        self.frames.store(frames, Ordering::Relaxed);
        self.passes.fetch_add(1, Ordering::Release);
    }
}

/// Copies committed WAL frames into the database without blocking the writer, until the
/// store is dropped (which drops the sender of `stop`), telling `watch` how long the WAL is.
pub(super) fn run_checkpoints(conn: Connection, watch: Arc<WalWatch>, stop: mpsc::Receiver<()>) {
    while let Err(mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(CHECKPOINT_EVERY) {
        match checkpoint(&conn, Mode::Passive) {
            Ok(done) if !done.busy => watch.set_frames(done.frames),
            // The writer is finishing a checkpoint of its own; the next pass sees the result.
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "store: checkpoint failed"),
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Mode {
    /// Copies what it can without waiting for anyone.
    Passive,
    /// Copies everything, waits (up to the busy timeout) for reads to let go of the WAL,
    /// and truncates the WAL file to nothing.
    Truncate,
}

/// What a checkpoint did.
#[derive(Debug, Clone, Copy)]
struct Checkpoint {
    /// It could not run, or not finish: another checkpoint was running, or (truncating) a
    /// read still used the WAL.
    busy: bool,
    /// Frames in the WAL.
    frames: i64,
    /// Frames of the WAL now copied into the database.
    copied: i64,
}

fn checkpoint(conn: &Connection, mode: Mode) -> rusqlite::Result<Checkpoint> {
    let sql = match mode {
        Mode::Passive => "PRAGMA wal_checkpoint(PASSIVE)",
        Mode::Truncate => "PRAGMA wal_checkpoint(TRUNCATE)",
    };
    conn.query_row(sql, [], |row| {
        Ok(Checkpoint {
            busy: row.get::<_, i64>(0)? != 0,
            frames: row.get(1)?,
            copied: row.get(2)?,
        })
    })
}

/// The writer's share of the checkpoints: called between groups, on the writer's own
/// connection, while no transaction is open.
pub(super) struct WalKeeper {
    watch: Arc<WalWatch>,
    /// WAL frames past which the WAL is to start over.
    restart_frames: i64,
    /// When the writer may next try a checkpoint of its own, and the wait after that.
    next_try: Instant,
    retry: Duration,
    /// The checkpointer's report after which the writer last copied all of the WAL: until
    /// the next report, there is nothing more to do.
    copied: Option<u64>,
    /// The WAL's length as last seen, and since when it has not changed.
    still: (i64, Instant),
}

impl WalKeeper {
    /// The writer's share of the checkpoints, letting the WAL start over past
    /// `restart_frames` frames ([`RESTART_FRAMES`] in a server).
    pub(super) fn new(watch: Arc<WalWatch>, restart_frames: i64) -> Self {
        Self {
            watch,
            restart_frames,
            next_try: Instant::now(),
            retry: RESTART_RETRY,
            copied: None,
            still: (0, Instant::now()),
        }
    }

    /// Lets the WAL start over once it is long, and truncates it once it has been still.
    pub(super) fn between_groups(&mut self, conn: &Connection) {
        let (frames, pass) = self.watch.frames();
        let now = Instant::now();
        if frames != self.still.0 {
            self.still = (frames, now);
        }
        if frames < self.restart_frames {
            // Short again: the last try worked, or none was needed.
            self.retry = RESTART_RETRY;
        } else if self.copied != Some(pass) && now >= self.next_try {
            if self.copy_all(conn) {
                self.copied = Some(pass);
                self.retry = RESTART_RETRY;
            } else {
                // A read holds frames back (or the checkpointer was copying): each try
                // costs a sync, so try less and less often while that lasts.
                self.next_try = now + self.retry;
                self.retry = (self.retry * 2).min(RESTART_RETRY_MAX);
            }
            return;
        }
        if frames > 0 && now.duration_since(self.still.1) >= IDLE_TRUNCATE {
            self.truncate(conn, now);
        }
    }

    /// Copies what the checkpointer has not yet; whether that was everything, so the next
    /// commit starts the WAL over.
    fn copy_all(&self, conn: &Connection) -> bool {
        let started = Instant::now();
        let result = checkpoint(conn, Mode::Passive);
        // What the writer's turn cost: commits wait this long.
        tracing::debug!(took = ?started.elapsed(), ?result, "store: the writer's checkpoint");
        match result {
            Ok(done) if !done.busy && done.frames == done.copied => true,
            // The checkpointer is copying: try again shortly.
            Ok(done) if done.busy => false,
            // A read still uses frames the copy could not pass: try again shortly.
            Ok(done) => {
                tracing::debug!(?done, "store: a read holds the WAL back");
                false
            }
            Err(e) => {
                tracing::warn!(error = %e, "store: checkpoint failed");
                false
            }
        }
    }

    /// Copies the whole WAL back and truncates its file to nothing, waiting a moment at
    /// most for reads to let go of it.
    fn truncate(&mut self, conn: &Connection, now: Instant) {
        if let Err(e) = conn.busy_timeout(TRUNCATE_PATIENCE) {
            tracing::warn!(error = %e, "store: cannot shorten the busy timeout");
            return;
        }
        match checkpoint(conn, Mode::Truncate) {
            Ok(done) if !done.busy => {
                self.watch.set_frames(0);
                self.still = (0, now);
                self.copied = None;
            }
            // Reads are still going on: not idle enough; wait another while.
            Ok(_) => self.still.1 = now,
            Err(e) => {
                tracing::warn!(error = %e, "store: cannot truncate the WAL");
                self.still.1 = now;
            }
        }
        if let Err(e) = conn.busy_timeout(BUSY_TIMEOUT) {
            tracing::error!(error = %e, "store: cannot restore the busy timeout");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A WAL-mode database with SQLite's own checkpoints off, as the store opens it.
    fn open(path: &std::path::Path) -> Connection {
        let conn = Connection::open(path).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.pragma_update(None, "synchronous", "NORMAL").unwrap();
        conn.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
        conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)
            .unwrap();
        conn
    }

    /// Commits `megabytes` MiB of new rows, one MiB a commit.
    fn write(conn: &Connection, megabytes: usize) {
        for _ in 0..megabytes {
            conn.execute("INSERT INTO t (b) VALUES (randomblob(1048576))", [])
                .unwrap();
        }
    }

    fn wal_bytes(path: &std::path::Path) -> u64 {
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        std::fs::metadata(wal).map(|m| m.len()).unwrap_or(0)
    }

    #[test]
    fn commits_that_never_pause_keep_the_wal_near_its_restart_length() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("wal.db");
        let writer = open(&path);
        writer
            .execute_batch("CREATE TABLE t (b BLOB NOT NULL)")
            .unwrap();
        let checkpointer = open(&path);
        let watch = Arc::new(WalWatch::default());
        // A restart length of 4 MiB stands for the server's 64.
        let restart_frames = 1024;
        let mut keeper = WalKeeper::new(watch.clone(), restart_frames);
        // 50 MiB written in rounds of 10 MiB (past the restart length each time). In each,
        // the checkpointer's pass runs while the writer has a transaction open, as it does
        // under a stream of commits; then comes the writer's turn, as between two groups.
        for _ in 0..5 {
            write(&writer, 9);
            writer.execute_batch("BEGIN IMMEDIATE").unwrap();
            write(&writer, 1);
            let pass = checkpoint(&checkpointer, Mode::Passive).unwrap();
            writer.execute_batch("COMMIT").unwrap();
            watch.set_frames(pass.frames);
            keeper.between_groups(&writer);
        }
        // Without the writer's turn the WAL would hold all 50 MiB: the checkpointer alone
        // copies, but a WAL starts over only when a write begins with all of it copied.
        let bound = u64::try_from(2 * restart_frames * 4096 + 10 * 1024 * 1024).unwrap();
        let size = wal_bytes(&path);
        assert!(size < bound, "the WAL is {size} bytes");
        let rows: i64 = writer
            .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 5 * 10);
    }

    #[test]
    fn a_read_holding_old_frames_only_delays_the_start_over() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("wal.db");
        let writer = open(&path);
        writer
            .execute_batch("CREATE TABLE t (b BLOB NOT NULL)")
            .unwrap();
        write(&writer, 8);
        let reader = open(&path);
        reader.execute_batch("BEGIN").unwrap();
        let _: i64 = reader
            .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
            .unwrap();
        let watch = Arc::new(WalWatch::default());
        let frames = checkpoint(&open(&path), Mode::Passive).unwrap().frames;
        watch.set_frames(frames);
        WalKeeper::new(watch.clone(), 1024).between_groups(&writer);
        write(&writer, 1);
        let held = checkpoint(&open(&path), Mode::Passive).unwrap();
        assert!(
            held.frames > frames,
            "the read kept the WAL from starting over"
        );

        reader.execute_batch("COMMIT").unwrap();
        watch.set_frames(held.frames);
        WalKeeper::new(watch, 1024).between_groups(&writer);
        write(&writer, 1);
        let after = checkpoint(&open(&path), Mode::Passive).unwrap();
        assert!(after.frames < 1024, "the WAL started over: {after:?}");
    }
}
