//! The admin's maintenance commands against a running daemon: `backup` during a burst of intake, `quarantine show|release` (of quarantined mail and of mail set aside as spam), and the staff templates naming only commands that exist.

use crate::harness::{Daemon, MailStack, mail, repo, ticketd_command, wait_until};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use ticketd::clock::{SharedClock, SystemClock};
use ticketd::store::Store;

const WAIT: Duration = Duration::from_secs(60);

fn cli(config: &Path, args: &[&str]) -> std::process::Output {
    ticketd_command()
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .expect("run ticketd")
}

fn ok(out: std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stored(db: &Path) -> i64 {
    try_stored(db).unwrap()
}

/// The mails stored in `db` (an error while the daemon is still creating it).
fn try_stored(db: &Path) -> anyhow::Result<i64> {
    Ok(Store::open_read_only(db)?
        .message_outcomes()?
        .iter()
        .map(|(_, n)| n)
        .sum())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_during_a_burst_of_intake_is_a_complete_consistent_database() {
    let stack = Arc::new(MailStack::start());
    let cfg = stack.config(|_| {});
    let clock: SharedClock = Arc::new(SystemClock);
    let daemon = Daemon::start(&cfg, clock);
    const BURST: i64 = 300;
    let s = stack.clone();
    let mails: Vec<Vec<u8>> = (0..BURST)
        .map(|i| {
            mail(
                &format!("Customer {i} <c{i}@customer.test>"),
                "support@vendor.test",
                &format!("Question {i}"),
                &format!("burst-{i}@customer.test"),
                "",
                "Serial A1-123456 reports a degraded pool.",
            )
        })
        .collect();
    let burst = tokio::spawn(async move {
        // In slices, so that intake runs between them.
        for slice in mails.chunks(10) {
            s.append_many("support@vendor.test", "INBOX", slice).await;
        }
    });
    wait_until("intake under way", WAIT, || {
        try_stored(cfg.database.sqlite_path().unwrap()).is_ok_and(|n| n >= 20)
    })
    .await;
    let before = stored(cfg.database.sqlite_path().unwrap());
    let file = stack.dir.join("copy.db");
    let path = cfg.path.clone();
    let f = file.clone();
    let said =
        ok(
            tokio::task::spawn_blocking(move || cli(&path, &["backup", f.to_str().unwrap()]))
                .await
                .unwrap(),
        );
    let after = stored(cfg.database.sqlite_path().unwrap());
    assert!(said.contains("pages copied"), "{said}");
    assert!(before < BURST, "the backup was not taken during the burst");

    let copy = Store::open_read_only(&file).expect("the backup opens");
    copy.require_current().unwrap();
    let n = stored(&file);
    assert!(
        (before..=after).contains(&n),
        "the copy holds {n} mails, committed were {before} before and {after} after"
    );
    // Each mail's effects are all there or not at all: a ticket and an ack each.
    assert_eq!(copy.tickets().unwrap().len() as i64, n);
    assert_eq!(copy.outbox(None).unwrap().len() as i64, n);

    burst.await.unwrap();
    wait_until("the whole burst stored", WAIT, || {
        stored(cfg.database.sqlite_path().unwrap()) == BURST
    })
    .await;
    let path = cfg.path.clone();
    let f = file.clone();
    ok(
        tokio::task::spawn_blocking(move || cli(&path, &["backup", f.to_str().unwrap()]))
            .await
            .unwrap(),
    );
    assert_eq!(stored(&file), BURST, "a second backup replaces the first");
    daemon.stop(WAIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_released_quarantined_mail_gets_its_ticket_and_reply() {
    let stack = MailStack::start();
    let cfg = stack.config(|c| c.max_message_bytes = 2048);
    let clock: SharedClock = Arc::new(SystemClock);
    let daemon = Daemon::start(&cfg, clock);
    let body = "My pool is degraded; the log follows.\r\n".repeat(120);
    stack
        .deliver(&mail(
            "Bob <bob@customer.test>",
            "support@vendor.test",
            "Big log attached",
            "big-1@customer.test",
            "",
            &body,
        ))
        .await;
    stack
        .wait_for_count("support@vendor.test", "Quarantine", 1, WAIT)
        .await;
    let listed = ok(cli(&cfg.path, &["quarantine"]));
    let row: i64 = listed
        .split_whitespace()
        .nth(1)
        .and_then(|r| r.parse().ok())
        .unwrap_or_else(|| panic!("{listed}"));
    assert!(listed.contains("over the limit"), "{listed}");
    let shown = ok(cli(&cfg.path, &["quarantine", "show", &row.to_string()]));
    assert!(shown.contains("big-1@customer.test"), "{shown}");
    assert!(shown.contains("Subject: Big log attached"), "{shown}");

    // The admin raises the limit, then releases the mail.
    let cfg2 = stack.config(|c| c.max_message_bytes = 1024 * 1024);
    let released = ok(cli(
        &cfg2.path,
        &["quarantine", "release", &row.to_string()],
    ));
    assert!(released.contains("processed on ticket 1"), "{released}");
    let st = Store::open_read_only_at(&cfg.database).unwrap();
    let t = st.tickets().unwrap();
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].requester, "bob@customer.test");
    assert!(
        st.quarantined().unwrap().is_empty(),
        "still listed as quarantined"
    );
    // The whole message was processed, and leaves the quarantine folder.
    stack
        .wait_for_count("support@vendor.test", "Processed", 1, WAIT)
        .await;
    assert_eq!(stack.count("support@vendor.test", "Quarantine").await, 0);
    // The running daemon's outbox sends the reply queued by the command.
    wait_until("the acknowledgement to Bob", WAIT, || {
        stack.sink_messages().iter().any(|m| {
            let text = String::from_utf8_lossy(m);
            text.contains("To: bob@customer.test") && text.contains("[TKT#1]")
        })
    })
    .await;
    // Released once only.
    let again = cli(&cfg2.path, &["quarantine", "release", &row.to_string()]);
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("released already"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    daemon.stop(WAIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_23_item_9_a_mail_flagged_as_spam_gets_no_reply_and_once_released_its_ticket_and_reply()
 {
    let stack = MailStack::start();
    let cfg = stack.config(|_| {});
    let clock: SharedClock = Arc::new(SystemClock);
    let daemon = Daemon::start(&cfg, clock);
    stack
        .deliver(&mail(
            "Eve <eve@customer.test>",
            "support@vendor.test",
            "Pool degraded",
            "flagged-1@customer.test",
            "X-Spam-Flag: YES\r\nX-Spam-Status: Yes, score=6.2 required=5.0\r\n",
            "Disk 3 of our unit failed overnight. Can you send a new one?\r\n\r\nEve",
        ))
        .await;
    stack
        .wait_for_count("support@vendor.test", "Quarantine", 1, WAIT)
        .await;
    // Stored as spam: no ticket, nothing queued for Eve, listed for staff.
    let st = Store::open_read_only_at(&cfg.database).unwrap();
    assert!(st.tickets().unwrap().is_empty());
    assert!(st.outbox(None).unwrap().is_empty(), "a reply was queued");
    let listed = ok(cli(&cfg.path, &["quarantine"]));
    assert!(listed.contains("spam"), "{listed}");
    assert!(listed.contains("X-Spam-Flag"), "{listed}");
    let row: i64 = listed
        .split_whitespace()
        .nth(1)
        .and_then(|r| r.parse().ok())
        .unwrap_or_else(|| panic!("{listed}"));
    let shown = ok(cli(&cfg.path, &["quarantine", "show", &row.to_string()]));
    assert!(shown.contains("flagged-1@customer.test"), "{shown}");

    // The admin releases it: handled as a person's mail.
    let released = ok(cli(&cfg.path, &["quarantine", "release", &row.to_string()]));
    assert!(released.contains("processed on ticket 1"), "{released}");
    let t = st.tickets().unwrap();
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].requester, "eve@customer.test");
    assert!(st.quarantined().unwrap().is_empty(), "still listed");
    stack
        .wait_for_count("support@vendor.test", "Processed", 1, WAIT)
        .await;
    wait_until("the acknowledgement to Eve", WAIT, || {
        stack.sink_messages().iter().any(|m| {
            let text = String::from_utf8_lossy(m);
            text.contains("To: eve@customer.test") && text.contains("[TKT#1]")
        })
    })
    .await;
    daemon.stop(WAIT).await;
}

#[test]
fn staff_templates_name_only_commands_that_exist() {
    let mut checked = 0;
    for lang in ["en", "ja", "es"] {
        let dir = repo().join("templates").join(lang);
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.starts_with("staff_") {
                continue;
            }
            let text = std::fs::read_to_string(e.path()).unwrap();
            for (i, part) in text.split('`').enumerate() {
                if i % 2 == 0 || !part.starts_with("ticketd ") {
                    continue;
                }
                let words: Vec<&str> = part.split_whitespace().skip(1).collect();
                let verbs: Vec<&str> = words
                    .iter()
                    .take_while(|w| {
                        w.chars().all(|c| c.is_ascii_lowercase() || c == '-') && !w.starts_with('-')
                    })
                    .copied()
                    .collect();
                let out = ticketd_command()
                    .args(&verbs)
                    .arg("--help")
                    .output()
                    .unwrap();
                let help = String::from_utf8_lossy(&out.stdout);
                assert!(
                    out.status.success(),
                    "{lang}/{name}: `{part}` is no command:\n{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                for flag in words.iter().filter(|w| w.starts_with("--")) {
                    assert!(help.contains(*flag), "{lang}/{name}: `{part}`: no {flag}");
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 12, "only {checked} commands named");
}
