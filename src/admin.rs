//! The admin's maintenance commands: `backup`, `contacts`, `quarantine show|release`, with progress bars on a terminal only.

use crate::clock::SharedClock;
use crate::config::Config;
use crate::imap;
use crate::model::Outcome;
use crate::shared::Shared;
use crate::store::Store;
use anyhow::{Context, Result, anyhow, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::path::Path;

/// A progress bar of `total` steps on stderr when it is a terminal; hidden otherwise.
pub fn progress(total: u64, what: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({elapsed}, {eta} left)")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_string());
    bar
}

/// `ticketd backup FILE`: a consistent copy of the database, taken while
/// the daemon runs. Returns the number of pages copied.
pub fn backup(config: &Config, dest: &Path) -> Result<u64> {
    let st = Store::open_read_only_at(&config.database)?;
    let bar = progress(0, "backup");
    let mut pages = 0;
    st.backup_to(dest, &mut |done, total| {
        bar.set_length(total);
        bar.set_position(done);
        pages = total;
    })?;
    bar.finish_and_clear();
    Ok(pages)
}

/// What releasing one quarantined row came to, for the command's output.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReleaseOutcome {
    pub row: i64,
    pub outcome: String,
    pub ticket: Option<i64>,
    pub replies: usize,
    pub reasons: Vec<String>,
}

/// `ticketd quarantine release ROW...`: each row fetched whole from its
/// mailbox's quarantine folder and processed as new. Stops at the first
/// row that cannot be released, after reporting the ones before it.
pub async fn release(
    config: &Config,
    clock: SharedClock,
    rows: &[i64],
) -> Result<Vec<ReleaseOutcome>> {
    let shared = Shared::beside_daemon(config, clock)?;
    let bar = progress(rows.len() as u64, "release");
    let mut out = Vec::new();
    for &row in rows {
        let stored = shared
            .with_store(move |st| st.quarantined_message(row))
            .await?
            .ok_or_else(|| anyhow!("message row {row} is not a quarantined message"))?;
        if !stored.quarantined {
            bail!("message row {row} was released already");
        }
        let m = config.mailbox(&stored.mailbox).ok_or_else(|| {
            anyhow!(
                "message row {row} came from mailbox {}, which the config no longer has",
                stored.mailbox
            )
        })?;
        let done = imap::release(&shared, m, &stored)
            .await
            .with_context(|| format!("releasing message row {row}"))?;
        out.push(ReleaseOutcome {
            row,
            outcome: done.outcome.as_str().to_string(),
            ticket: done.ticket_id.map(|t| t.0),
            replies: done.queued,
            reasons: if done.outcome == Outcome::Quarantined {
                done.reasons
            } else {
                Vec::new()
            },
        });
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(out)
}
