//! The daemon as systemd runs it, over the sd_notify protocol on a NOTIFY_SOCKET of the test's own: READY after the IMAP logins, STATUS, WATCHDOG only while every loop is live, RELOADING/READY around SIGHUP.

use crate::harness::{ImapProxy, MailStack, NotifySocket, Service, free_port, mail};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_comes_only_after_every_mailbox_logged_in_and_selected() {
    let stack = MailStack::start();
    let proxy = ImapProxy::start(stack.imap_port).await;
    let path = stack.write_config(|c| {
        c.imap_port = proxy.port;
        c.mailboxes = vec![("support", "support"), ("rma", "rma")];
    });
    let notify = NotifySocket::bind();
    let _svc = Service::start(&path, &notify, Duration::from_secs(2));
    let (i, ready_at) = notify.wait_for(0, "READY=1", WAIT).await;
    let selects = proxy.selects();
    assert!(
        selects.len() >= 2 && selects.iter().take(2).all(|t| *t < ready_at),
        "READY before both SELECTs completed: {selects:?}\n{}",
        notify.dump()
    );
    let msgs = notify.messages();
    assert!(
        msgs[..i]
            .iter()
            .any(|(_, m)| m.contains("STATUS=starting: logging in to support, rma")),
        "{}",
        notify.dump()
    );
    assert!(
        msgs[i].1.contains("STATUS=watching support, rma"),
        "{}",
        notify.dump()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_after_a_bounded_wait_names_the_mailbox_that_did_not_log_in() {
    let stack = MailStack::start();
    let dead = free_port();
    let path = stack.write_config(|c| {
        c.ready_timeout_secs = 2;
        c.extra = format!(
            r#"
[[mailbox]]
name = "rma"
role = "rma"
address = "rma@vendor.test"
host = "127.0.0.1"
port = {dead}
tls = "none"
username = "rma@vendor.test"
password_file = "{dir}/imap-password"
"#,
            dir = stack.dir.display()
        );
    });
    let notify = NotifySocket::bind();
    let _svc = Service::start(&path, &notify, Duration::from_secs(2));
    let (i, _) = notify.wait_for(0, "READY=1", WAIT).await;
    assert!(
        notify.messages()[i]
            .1
            .contains("STATUS=watching support; not logged in: rma"),
        "{}",
        notify.dump()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watchdog_stops_while_a_watcher_hangs_on_a_server_that_never_answers() {
    let stack = MailStack::start();
    let proxy = ImapProxy::start(stack.imap_port).await;
    let path = stack.write_config(|c| {
        c.imap_port = proxy.port;
        c.idle = false;
        c.poll_interval_secs = 1;
        c.imap_timeout_secs = 2;
    });
    let notify = NotifySocket::bind();
    let _svc = Service::start(&path, &notify, Duration::from_secs(1));
    let (r, _) = notify.wait_for(0, "READY=1", WAIT).await;
    // Pinged while healthy, and quiet poll cycles (waiting) count as live.
    let (p, _) = notify.wait_for(r, "WATCHDOG=1", WAIT).await;
    let (p, _) = notify.wait_for(p + 1, "WATCHDOG=1", WAIT).await;
    notify.wait_for(p + 1, "WATCHDOG=1", WAIT).await;
    // The server goes silent mid-session: the next NOOP never gets its answer.
    proxy.stall(true);
    let (s, stuck_at) = notify
        .wait_for(0, "STATUS=stuck: mailbox support", WAIT)
        .await;
    let status = notify.messages()[s].1.clone();
    assert!(status.contains("in NOOP"), "{status}");
    // Not pinged for four watchdog intervals (every 0.5 s when live).
    notify
        .assert_none_for(s + 1, "WATCHDOG=1", Duration::from_secs(2))
        .await;
    // The answer arrives after all: the loop is live again, and so is the watchdog.
    proxy.stall(false);
    let (_, back_at) = notify.wait_for(s + 1, "WATCHDOG=1", WAIT).await;
    assert!(back_at.duration_since(stuck_at) >= Duration::from_secs(2));
    notify
        .wait_for(s + 1, "STATUS=watching support", WAIT)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_with_a_broken_config_logs_every_problem_and_keeps_the_running_one() {
    let stack = MailStack::start();
    let path = stack.write_config(|_| {});
    let notify = NotifySocket::bind();
    let svc = Service::start(&path, &notify, Duration::from_secs(10));
    let (r, _) = notify.wait_for(0, "READY=1", WAIT).await;
    let good = std::fs::read_to_string(&path).unwrap();
    let broken = good
        .replace("pack = \"ixsystems\"", "pack = \"nosuchpack\"")
        .replace(
            "tls = \"none\"\nretry_base_ms",
            "tls = \"sometimes\"\nretry_base_ms",
        );
    assert_ne!(broken, good);
    std::fs::write(&path, &broken).unwrap();
    let line = |needle: &str| broken.lines().position(|l| l.contains(needle)).unwrap() + 1;
    svc.reload();
    let (rl, _) = notify.wait_for(r + 1, "RELOADING=1", WAIT).await;
    let reloading = notify.messages()[rl].1.clone();
    assert!(
        reloading.lines().any(|l| l.starts_with("MONOTONIC_USEC=")),
        "{reloading}"
    );
    let (rd, _) = notify.wait_for(rl + 1, "READY=1", WAIT).await;
    assert!(
        notify.messages()[rd]
            .1
            .contains("STATUS=reload rejected (2 problems"),
        "{}",
        notify.dump()
    );
    let log = svc.log_text();
    for (needle, what) in [
        ("nosuchpack", "pack `nosuchpack`"),
        ("sometimes", "sometimes"),
    ] {
        let want = format!("{}:{}:", path.display(), line(needle));
        assert!(
            log.lines()
                .any(|l| l.contains("reload rejected") && l.contains(&want) && l.contains(what)),
            "no logged problem {want} {what}:\n{log}"
        );
    }
    // The running config still answers mail.
    stack
        .deliver(&mail(
            "Ann <ann@customer.test>",
            "support@vendor.test",
            "Pool degraded",
            "reload-1@customer.test",
            "",
            "Serial A1-123456 degraded.",
        ))
        .await;
    stack
        .wait_for_count("support@vendor.test", "Processed", 1, WAIT)
        .await;
    crate::harness::wait_until("the reply", WAIT, || stack.sink_messages().len() == 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_that_adds_a_mailbox_starts_its_watcher() {
    let stack = MailStack::start();
    let path = stack.write_config(|_| {});
    let notify = NotifySocket::bind();
    let svc = Service::start(&path, &notify, Duration::from_secs(10));
    let (r, _) = notify.wait_for(0, "READY=1", WAIT).await;
    stack
        .append(
            "rma@vendor.test",
            "INBOX",
            &mail(
                "Bob <bob@customer.test>",
                "rma@vendor.test",
                "Replacement disk",
                "rma-1@customer.test",
                "",
                "Serial A1-654321 needs a new disk.",
            ),
            "02-Mar-2026 09:00:00 -0800",
        )
        .await;
    stack.write_config(|c| c.mailboxes = vec![("support", "support"), ("rma", "rma")]);
    svc.reload();
    let (rl, _) = notify.wait_for(r + 1, "RELOADING=1", WAIT).await;
    let (rd, _) = notify.wait_for(rl + 1, "READY=1", WAIT).await;
    assert!(
        notify.messages()[rd]
            .1
            .contains("STATUS=watching support, rma"),
        "{}",
        notify.dump()
    );
    stack
        .wait_for_count("rma@vendor.test", "Processed", 1, WAIT)
        .await;
    assert!(
        svc.log_text()
            .contains("mailbox added: starting its watcher")
    );
}
