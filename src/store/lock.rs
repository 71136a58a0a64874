//! The run lock: one `ticketd run` (or `run --once`) per SQLite database, held as an exclusive lock on `<database>.lock` for the life of the process and released by the OS however it ends. (On PostgreSQL several daemons share the store: `cluster`.)

use anyhow::{Context, Result, bail};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Held while a daemon works on a database.
pub struct RunLock {
    _held: Held,
    /// What is locked: the lock file, or the database's URL.
    pub path: PathBuf,
}

impl std::fmt::Debug for RunLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RunLock({})", self.path.display())
    }
}

enum Held {
    File(#[allow(dead_code)] File),
}

/// How long a start waits for a lock that a stopping run still holds.
const TRIES: u32 = 50;
const PAUSE: Duration = Duration::from_millis(100);

impl RunLock {
    /// Takes the lock of `database`, waiting up to five seconds for a run
    /// that is stopping; a running daemon makes this fail with its pid.
    pub fn acquire(database: &Path) -> Result<RunLock> {
        let mut name = database.as_os_str().to_owned();
        name.push(".lock");
        let path = PathBuf::from(name);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("cannot open the lock file {}", path.display()))?;
        for _ in 0..TRIES {
            match file.try_lock() {
                Ok(()) => {
                    file.set_len(0)?;
                    file.rewind()?;
                    writeln!(file, "{}", std::process::id())?;
                    return Ok(RunLock {
                        _held: Held::File(file),
                        path,
                    });
                }
                Err(TryLockError::WouldBlock) => std::thread::sleep(PAUSE),
                Err(TryLockError::Error(e)) => {
                    return Err(e).with_context(|| format!("cannot lock {}", path.display()));
                }
            }
        }
        let mut pid = String::new();
        let _ = file.read_to_string(&mut pid);
        bail!(
            "another ticketd run (pid {}) is working on the database {}: only one may (lock {}); \
             the other commands work beside it",
            pid.trim(),
            database.display(),
            path.display()
        )
    }
}
