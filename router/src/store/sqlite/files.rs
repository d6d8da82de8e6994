//! The store's directory and files, readable by their owner only: they hold message bodies
//! and call logs. New ones are created so; older ones left open to others are tightened
//! when the store opens, and the change is logged.

use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use anyhow::Context;

/// The data directory's mode: its owner may list, create and open.
const DIR_MODE: u32 = 0o700;
/// Every file's mode: its owner may read and write.
const FILE_MODE: u32 = 0o600;

/// What SQLite keeps beside the database in WAL mode.
const SIDE_FILES: [&str; 2] = ["-wal", "-shm"];

/// Creates `data_dir` (owner only) if needed, and tightens it and the store's files
/// (`database`, its WAL and shared-memory files, `lock`) where they are open to others.
pub(super) fn secure_data_dir(data_dir: &Path, database: &Path, lock: &Path) -> anyhow::Result<()> {
    create_private_dir(data_dir)?;
    restrict(data_dir, DIR_MODE)?;
    restrict(database, FILE_MODE)?;
    restrict(lock, FILE_MODE)?;
    check_side_files(database)
}

/// The database's side files are owner-only. SQLite creates them with the database's own
/// mode; this checks they were, once it has opened the database.
pub(super) fn check_side_files(database: &Path) -> anyhow::Result<()> {
    for path in side_files(database) {
        restrict(&path, FILE_MODE)?;
    }
    Ok(())
}

/// Creates `path` empty and owner-only if it does not exist (SQLite would create it
/// readable by everyone the umask allows).
pub(super) fn create_private_file(path: &Path) -> anyhow::Result<()> {
    match private_options().create_new(true).open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot create {}", path.display())),
    }
}

/// Opens `path` for writing, creating it owner-only if needed.
pub(super) fn open_private_file(path: &Path) -> anyhow::Result<File> {
    private_options()
        .create(true)
        .truncate(false)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))
}

fn side_files(database: &Path) -> [PathBuf; 2] {
    SIDE_FILES.map(|suffix| {
        let mut name = database.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    })
}

fn private_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.write(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, FILE_MODE);
    options
}

#[cfg(unix)]
fn create_private_dir(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    match std::fs::DirBuilder::new().mode(DIR_MODE).create(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::AlreadyExists && path.is_dir() => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot create data_dir {}", path.display())),
    }
}

#[cfg(not(unix))]
fn create_private_dir(path: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(path)
        .with_context(|| format!("cannot create data_dir {}", path.display()))
}

/// Takes away whatever `path` allows beyond `mode` (group and others), logging it; a
/// path that does not exist yet is left alone.
#[cfg(unix)]
fn restrict(path: &Path, mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let metadata = match std::fs::metadata(path) {
        Ok(metadata) => metadata,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let was = metadata.permissions().mode() & 0o7777;
    if was & !mode == 0 {
        return Ok(());
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).with_context(|| {
        format!(
            "{} is open to other users ({was:o}) and cannot be restricted to its owner",
            path.display()
        )
    })?;
    tracing::warn!(
        path = %path.display(),
        was = %format!("{was:o}"),
        now = %format!("{mode:o}"),
        "the store was open to other users; now only its owner can read it"
    );
    Ok(())
}

#[cfg(not(unix))]
fn restrict(_path: &Path, _mode: u32) -> anyhow::Result<()> {
    Ok(())
}
