//! `ticketd run` as its own process (a given binary), its log in a file beside its config, stopped with SIGTERM or SIGKILL.

use super::wait::wait_until;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// `ticketd run` as its own process, its log (at trace level, every line
/// the code can write) in a file.
pub struct Ticketd {
    child: std::process::Child,
    pub log: PathBuf,
}

impl Ticketd {
    /// Runs `bin` with `RUST_LOG` at `level`, its log in the config's
    /// `.log` file, appended to the earlier runs' (a restart) when `append`.
    pub fn start_bin(bin: &Path, config: &Path, level: &str, append: bool) -> Ticketd {
        let log = config.with_extension("log");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(append)
            .truncate(!append)
            .open(&log)
            .unwrap();
        let child = Command::new(bin)
            .args(["run", "--config"])
            .arg(config)
            .env("RUST_LOG", level)
            .env("NO_COLOR", "1")
            .stdin(std::process::Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        Ticketd { child, log }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log has `n` lines containing `what`.
    pub async fn wait_for_log(&self, what: &str, n: usize, deadline: Duration) {
        wait_until(&format!("{n} log lines with `{what}`"), deadline, || {
            self.log().lines().filter(|l| l.contains(what)).count() >= n
        })
        .await;
    }

    /// SIGKILL, and reaped.
    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("ticketd reaped");
    }

    /// Whether it has exited (and how).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().expect("ticketd status")
    }

    /// SIGTERM, then waits for a clean exit; returns the whole log.
    pub async fn stop(self) -> String {
        let log = self.terminate().await;
        // What an admin would see (with --nocapture).
        for l in log
            .lines()
            .filter(|l| !l.contains(" TRACE ") && !l.contains(" DEBUG "))
        {
            println!("{l}");
        }
        log
    }

    /// [`Ticketd::stop`] without printing the log.
    pub async fn terminate(mut self) -> String {
        let pid = self.child.id().to_string();
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        let mut status = None;
        wait_until(
            "ticketd to exit after SIGTERM",
            Duration::from_secs(20),
            || {
                status = self.child.try_wait().expect("ticketd status");
                status.is_some()
            },
        )
        .await;
        let log = self.log();
        assert!(
            status.is_some_and(|s| s.success()),
            "ticketd exited with {status:?}:\n{log}"
        );
        log
    }
}

impl Drop for Ticketd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
