//! The embedded store: one SQLite file in `data_dir`, WAL mode, `synchronous = FULL`.
//!
//! All writes go through one writer thread ([`writer`]) that commits whatever has queued up
//! in a single transaction (group commit): a burst of webhooks costs one fsync, not one
//! each, and every caller hears back only after the commit that holds its write. Each write
//! runs inside its own savepoint, so one failing write does not undo the others in its
//! group. Reads use their own connections, which WAL lets run beside the writer.
//!
//! - `schema.sql`: the tables.
//! - [`writer`]: the writer thread and group commit.
//! - [`queue`]: the writer's queue, bounded in places and in time.
//! - [`wal`]: checkpoints, so the WAL stays short under any load.
//! - [`deliveries`]: deliveries, events and jobs ([`DeliveryStore`]).
//! - [`prune`]: old deliveries forgotten in small steps; jobs of removed routes failed.
//! - `columns`: typed values read out of rows.
//! - `files`: the data directory and the store's files, owner-only.
//! - [`calls`]: calls and permissions with versions for compare-and-set ([`CallStore`]).
//! - [`sessions`]: agents' sessions ended early ([`SessionStore`]).

mod calls;
mod columns;
mod deliveries;
mod files;
mod prune;
mod queue;
mod sessions;
mod wal;
mod writer;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};

use anyhow::Context;
use async_trait::async_trait;
use rusqlite::Connection;

pub use self::queue::QueueLimits;
use self::queue::WriteQueue;
use self::wal::{run_checkpoints, WalKeeper, WalWatch};
use self::writer::{queue_write, run_writer, Write};
#[cfg(doc)]
use super::{CallStore, DeliveryStore, SessionStore};
use super::{Durability, Store, StoreError};
use crate::telemetry::StoreMetrics;

/// Read connections beside the writer.
const READERS: usize = 4;

const SCHEMA: &str = include_str!("schema.sql");

/// Whether this process serves (and owns the queue) or is a tool reading beside a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    Server,
    Tool,
}

/// How a store is opened beyond its directory and mode.
#[derive(Clone, Default)]
pub struct Options {
    /// The writer's queue: places and patience.
    pub queue: QueueLimits,
    /// Where the writer's queue is counted, if anywhere.
    pub metrics: Option<StoreMetrics>,
}

#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    writer: mpsc::Sender<Write>,
    queue: WriteQueue,
    /// Read connections: a slow read (a count over a large backlog) does not hold up the
    /// quick ones an agent's accept waits for.
    readers: Vec<Mutex<Connection>>,
    path: PathBuf,
    /// Held for the life of a serving store: two servers on one file would deliver twice.
    lock: Mutex<Option<File>>,
    /// Dropped with the store, which stops the checkpoint thread.
    _stop_checkpoints: mpsc::Sender<()>,
}

impl SqliteStore {
    /// Opens (creating if needed) `data_dir/switchboard.db` with the default [`Options`].
    /// The directory and every file of the store are made readable by their owner only.
    pub fn open(data_dir: &Path, mode: OpenMode) -> anyhow::Result<Self> {
        Self::open_with(data_dir, mode, Options::default())
    }

    /// Opens (creating if needed) `data_dir/switchboard.db`, owner-only, as [`Self::open`]
    /// does, with `options`.
    pub fn open_with(data_dir: &Path, mode: OpenMode, options: Options) -> anyhow::Result<Self> {
        let path = data_dir.join("switchboard.db");
        let lock_path = data_dir.join("switchboard.lock");
        files::secure_data_dir(data_dir, &path, &lock_path)?;
        let lock = match mode {
            OpenMode::Server => Some(lock_data_dir(data_dir, &lock_path)?),
            OpenMode::Tool => None,
        };
        files::create_private_file(&path)?;
        let writer = open_connection(&path)?;
        writer
            .execute_batch(SCHEMA)
            .context("cannot create the schema")?;
        files::check_side_files(&path)?;
        if mode == OpenMode::Server {
            // Leases held by a previous process of ours died with it.
            writer
                .execute(
                    "UPDATE jobs SET lease_until = NULL WHERE lease_until IS NOT NULL",
                    [],
                )
                .context("cannot release old leases")?;
        }
        // Checkpoints are the checkpointer's and the writer's own (`wal.rs`), so no
        // webhook waits for one (SQLite would otherwise run them inside whichever commit
        // crosses the threshold).
        writer.pragma_update(None, "wal_autocheckpoint", 0)?;
        writer.pragma_update(None, "journal_size_limit", wal::WAL_SIZE_LIMIT)?;
        let (stop_checkpoints, stopped) = mpsc::channel::<()>();
        let keeper = match mode {
            OpenMode::Server => {
                let watch = Arc::new(WalWatch::default());
                let checkpointer = open_connection(&path)?;
                let seen = watch.clone();
                std::thread::Builder::new()
                    .name("store-checkpoint".into())
                    .spawn(move || run_checkpoints(checkpointer, seen, stopped))
                    .context("cannot start the store checkpointer")?;
                Some(WalKeeper::new(watch, wal::RESTART_FRAMES))
            }
            OpenMode::Tool => None,
        };
        let readers = (0..READERS)
            .map(|_| open_connection(&path).map(Mutex::new))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let (sender, receiver) = mpsc::channel::<Write>();
        std::thread::Builder::new()
            .name("store-writer".into())
            .spawn(move || run_writer(writer, receiver, keeper))
            .context("cannot start the store writer")?;
        Ok(Self {
            inner: Arc::new(Inner {
                writer: sender,
                queue: WriteQueue::new(options.queue, options.metrics),
                readers,
                path,
                lock: Mutex::new(lock),
                _stop_checkpoints: stop_checkpoints,
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Lets another server open this data directory. A stopped server calls it once its
    /// requests and workers are done: handles to the store may outlive the server for a
    /// moment (worker threads drop theirs as they exit), and the lock must not wait for
    /// them. Dropping the last handle releases it too.
    pub fn release_lock(&self) {
        let mut lock = self.inner.lock.lock().unwrap_or_else(|e| e.into_inner());
        *lock = None;
    }

    /// Queues `work` for the writer and waits for the commit that holds it: `Busy` at once
    /// if the queue has no place, or once the queue's timeout passes (the write is then
    /// not begun if it had not been; one already begun may still be committed, whole).
    async fn write<T, F>(&self, durability: Durability, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let queue = &self.inner.queue;
        let place = queue.admit()?;
        let (write, answer) = queue_write(durability, work, Some(place));
        let stopped = || StoreError::Unavailable(anyhow::anyhow!("the store writer stopped"));
        self.inner.writer.send(write).map_err(|_| stopped())?;
        match tokio::time::timeout(queue.limits.timeout, answer).await {
            Ok(answer) => answer.map_err(|_| stopped())?,
            Err(_) => Err(queue.timed_out()),
        }
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

fn lock_data_dir(data_dir: &Path, path: &Path) -> anyhow::Result<File> {
    let file = files::open_private_file(path)?;
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
    conn.busy_timeout(wal::BUSY_TIMEOUT)?;
    // WAL lets reads run beside the writer; FULL makes each commit durable on its own.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(conn)
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.read(|conn| Ok(conn.query_row("SELECT 1", [], |_| Ok(()))?))
            .await?;
        self.write(Durability::Relaxed, |_| Ok(())).await
    }
}
