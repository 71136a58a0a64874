//! The sent journal: a file beside the database where the outbox notes each mail the server accepted, right after its 250, without taking the store's lock.
//!
//! One `write` per accepted mail, no fsync: what was written survives a
//! process kill (it is in the kernel), not a power loss. The outbox records
//! the same mail in the database with the rest of its chunk as before; the
//! journal only closes the window in between. At start the outbox marks every
//! id the journal holds as sent (those still queued), then empties it; it
//! empties it again whenever the queue is drained and nothing is in flight.
//!
//! It also notes each chunk the outbox claims (`c 1 2 3`) and each mail as a
//! connection starts on it (`t 2`), so that at start the claims of the mail
//! a killed process never put on the wire are given back: the crash guard
//! (`MAX_CLAIMS`) counts only the mail that was being sent when it died.

use anyhow::{Context, Result};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub struct SentJournal {
    path: PathBuf,
    file: Mutex<File>,
    /// On PostgreSQL, a session of its own where each accepted mail is
    /// also recorded sent at once: another node that takes this one's
    /// claims after a kill must not send it again, and it cannot read this
    /// file.
    shared: Option<Mutex<Shared>>,
}

struct Shared {
    target: super::target::PgTarget,
    /// This process's claims of queued mail (`outbox.claimed_by`).
    claimer: String,
    client: Option<super::target::DropOffAsync<postgres::Client>>,
}

impl std::fmt::Debug for SentJournal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SentJournal({})", self.path.display())
    }
}

impl SentJournal {
    /// Opens (creating) the journal of the database at `db`: `<db>-sent`.
    pub fn open(db: &Path) -> Result<SentJournal> {
        let mut name = db.as_os_str().to_owned();
        name.push("-sent");
        SentJournal::open_file(Path::new(&name))
    }

    /// Opens (creating) the journal at `path` (`[daemon] journal`).
    pub fn open_file(path: &Path) -> Result<SentJournal> {
        let path = path.to_path_buf();
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("cannot open the sent journal {}", path.display()))?;
        Ok(SentJournal {
            path,
            file: Mutex::new(file),
            shared: None,
        })
    }

    /// Records each accepted mail in the PostgreSQL store at once too.
    pub fn share_with(mut self, target: &super::target::PgTarget, claimer: &str) -> SentJournal {
        self.shared = Some(Mutex::new(Shared {
            target: target.clone(),
            claimer: claimer.to_string(),
            client: None,
        }));
        self
    }

    /// Whether queued mail `id` is still this process's to send (always on
    /// SQLite): a node whose row ran out (paused, cut off) while it held a
    /// chunk finds another took it, and sends nothing of it. Unsure (the
    /// database unreachable), it sends nothing.
    pub fn still_mine(&self, id: i64) -> bool {
        let Some(shared) = &self.shared else {
            return true;
        };
        let mut s = shared.lock().unwrap_or_else(|e| e.into_inner());
        let claimer = s.claimer.clone();
        Self::on_session(&mut s, |c| {
            Ok(c.query_opt(
                "SELECT 1 FROM outbox WHERE id = $1 AND status = 'queued' AND claimed_by = $2",
                &[&id, &claimer],
            )?
            .is_some())
        })
        .unwrap_or(false)
    }

    /// Runs `f` on the journal's own session (opened again when closed).
    fn on_session<T>(
        s: &mut Shared,
        f: impl FnOnce(&mut postgres::Client) -> Result<T, postgres::Error>,
    ) -> Result<T> {
        super::db::blocking(|| -> Result<T> {
            if s.client.as_ref().is_none_or(|c| c.is_closed()) {
                let mut c = s.target.connect()?;
                // Flushed here, not waited for on a standby: the file keeps
                // it for this node meanwhile.
                c.batch_execute("SET synchronous_commit = local")?;
                s.client = Some(super::target::DropOffAsync::new(c));
            }
            let client = s.client.as_mut().expect("connected above");
            match f(client) {
                Ok(v) => Ok(v),
                Err(e) => {
                    s.client = None;
                    Err(e.into())
                }
            }
        })
    }

    /// The mail is recorded sent in the shared store (a fresh session when
    /// the last one failed); the file keeps it meanwhile.
    fn record_shared(&self, id: i64) -> Result<()> {
        let Some(shared) = &self.shared else {
            return Ok(());
        };
        let mut s = shared.lock().unwrap_or_else(|e| e.into_inner());
        let sql = format!(
            "UPDATE outbox SET status = 'sent', sent_at = {}, last_error = NULL,
                    attempts = attempts + 1, claims = 0
             WHERE id = $1 AND status = 'queued'",
            super::cluster::NOW
        );
        Self::on_session(&mut s, |c| c.execute(sql.as_str(), &[&id]).map(|_| ()))
    }

    /// Notes that outbox row `id` was accepted: one line, one write.
    pub fn record(&self, id: i64) -> Result<()> {
        self.line(format!("{id}\n"))?;
        self.record_shared(id)
            .context("recording a sent mail in the shared store (the journal keeps it)")
    }

    /// Notes the chunk the outbox just claimed (before any of it is sent).
    pub fn record_claims(&self, ids: &[i64]) -> Result<()> {
        let list: Vec<String> = ids.iter().map(i64::to_string).collect();
        self.line(format!("c {}\n", list.join(" ")))
    }

    /// Notes that a connection starts sending outbox row `id`.
    pub fn record_try(&self, id: i64) -> Result<()> {
        self.line(format!("t {id}\n"))
    }

    fn line(&self, line: String) -> Result<()> {
        let mut f = self.file.lock().unwrap_or_else(|e| e.into_inner());
        f.write_all(line.as_bytes())
            .with_context(|| format!("cannot write the sent journal {}", self.path.display()))
    }

    /// Every accepted id noted since the journal was last emptied (a torn
    /// last line is skipped).
    pub fn ids(&self) -> Result<Vec<i64>> {
        Ok(self
            .lines()?
            .iter()
            .filter_map(|l| l.trim().parse().ok())
            .collect())
    }

    /// The ids claimed since the journal was last emptied that no
    /// connection started on (and so none accepted).
    pub fn claimed_untried(&self) -> Result<Vec<i64>> {
        let lines = self.lines()?;
        let ids = |prefix: &str| -> std::collections::BTreeSet<i64> {
            lines
                .iter()
                .filter_map(|l| l.strip_prefix(prefix))
                .flat_map(|rest| rest.split(' ').filter_map(|n| n.parse().ok()))
                .collect()
        };
        let tried = ids("t ");
        Ok(ids("c ").difference(&tried).copied().collect())
    }

    fn lines(&self) -> Result<Vec<String>> {
        let mut f = self.file.lock().unwrap_or_else(|e| e.into_inner());
        f.rewind()?;
        let mut text = String::new();
        f.read_to_string(&mut text)
            .with_context(|| format!("cannot read the sent journal {}", self.path.display()))?;
        // A line without its newline is a torn write: "57" cut to "5" must not count.
        let complete = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
        Ok(complete.split_terminator('\n').map(String::from).collect())
    }

    /// Empties the journal: call only when every id in it is recorded in the database.
    pub fn clear(&self) -> Result<()> {
        let f = self.file.lock().unwrap_or_else(|e| e.into_inner());
        f.set_len(0)
            .with_context(|| format!("cannot empty the sent journal {}", self.path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_journal_keeps_ids_across_a_reopen_until_cleared() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("t.db");
        let j = SentJournal::open(&db).unwrap();
        j.record(3).unwrap();
        j.record(41).unwrap();
        drop(j);
        // A torn write at the end, as a crash mid-line could leave.
        std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join("t.db-sent"))
            .unwrap()
            .write_all(b"5")
            .unwrap();
        let j = SentJournal::open(&db).unwrap();
        assert_eq!(j.ids().unwrap(), [3, 41], "the torn line is not an id");
        j.clear().unwrap();
        assert!(j.ids().unwrap().is_empty());
        j.record(7).unwrap();
        assert_eq!(j.ids().unwrap(), [7]);
    }

    #[test]
    fn claims_no_connection_started_on_are_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let j = SentJournal::open(&dir.path().join("t.db")).unwrap();
        j.record_claims(&[1, 2, 3, 4]).unwrap();
        j.record_try(1).unwrap();
        j.record(1).unwrap();
        j.record_try(2).unwrap();
        j.record_claims(&[5]).unwrap();
        assert_eq!(j.claimed_untried().unwrap(), [3, 4, 5]);
        assert_eq!(j.ids().unwrap(), [1], "only accepted mail is an id");
    }
}
