//! The systemd unit: `systemd-analyze security` rates it 2.0 or better, and `systemd-analyze verify` is clean on a copy that runs the built binary.

use crate::harness::repo;
use std::process::Command;

const HINT: &str = "apt-get install systemd (scripts/mailstack install installs it)";

/// Runs `systemd-analyze ARGS`, failing with the setup command when it is missing.
fn analyze(args: &[&str]) -> std::process::Output {
    Command::new("systemd-analyze")
        .args(args)
        .env("SYSTEMD_COLORS", "0")
        .env("SYSTEMD_PAGER", "")
        .output()
        .unwrap_or_else(|e| panic!("cannot run systemd-analyze ({e}): {HINT}"))
}

/// The overall exposure `systemd-analyze security` prints: "... ticketd.service: 1.1 OK".
fn exposure(report: &str) -> f64 {
    let line = report
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| panic!("no overall rating in:\n{report}"));
    line.rsplit(':')
        .next()
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("cannot read the rating in {line:?}"))
}

#[test]
fn the_unit_is_rated_two_or_better() {
    let unit = repo().join("systemd/ticketd.service");
    let out = analyze(&["security", "--offline=yes", unit.to_str().unwrap()]);
    let report = String::from_utf8_lossy(&out.stdout);
    let rating = exposure(&report);
    assert!(
        rating <= 2.0,
        "systemd-analyze security rates the unit {rating}, worse than 2.0:\n{report}"
    );
}

#[test]
fn the_unit_verifies_clean_with_the_built_binary() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(repo().join("systemd/ticketd.service")).unwrap();
    assert!(text.contains("ExecReload=/bin/kill -HUP $MAINPID"));
    let text = text.replace("/usr/bin/ticketd", env!("CARGO_BIN_EXE_ticketd"));
    let copy = dir.path().join("ticketd.service");
    std::fs::write(&copy, text).unwrap();
    let out = analyze(&["verify", copy.to_str().unwrap()]);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "systemd-analyze verify is not clean ({}; {HINT} if it is missing):\n{said}",
        out.status
    );
}
