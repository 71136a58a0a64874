//! Issue 26 end to end, with a real mutt in tmux against Dovecot and Postfix: a member forwards a customer's mail (through the staff domain's signing server) and the customer gets the acknowledgement in their own thread; `#rma shipped` with a tracking number reaches the customer; a `#merge` reply moves the history and the customer is told once.

use crate::harness::*;
use crate::mutt::Mutt;
use crate::submission::Submission;
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::Duration;
use ticketd::clock::FixedClock;
use ticketd::config::Config;
use ticketd::model::{TicketId, TicketStatus};
use ticketd::parse::{Inbound, parse};
use ticketd::store::Store;

const WAIT: Duration = Duration::from_secs(30);
const ALICE: &str = "alice@staff.test";
const DANA: &str = "dana@example.net";

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

fn db(cfg: &Config) -> Store {
    Store::open_read_only_at(&cfg.database).expect("database")
}

fn events(cfg: &Config, id: i64) -> Vec<String> {
    db(cfg)
        .history(TicketId(id))
        .unwrap()
        .expect("the ticket")
        .events
        .iter()
        .map(|e| format!("{}: {}", e.kind, e.detail))
        .collect()
}

async fn inbox(stack: &MailStack, user: &str) -> Vec<Inbound> {
    stack
        .messages(user, "INBOX")
        .await
        .iter()
        .map(|m| parse(m, chrono::DateTime::UNIX_EPOCH))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_26_forward_rma_shipped_and_merge_from_mutt_reach_the_customer() {
    let stack = MailStack::with(Options {
        postfix: true,
        ..Default::default()
    });
    // alice's domain signs her mail, as OpenDKIM would; the daemon asks
    // the test's DNS server for the key.
    let dns = DnsServer::start(&[("sel._domainkey.staff.test", &test_key_txt())], 600);
    let signer = Submission::start("staff.test", "sel", stack.smtp_port).await;
    let cfg = alice_config(
        &stack,
        ALICE,
        &format!("dkim_nameservers = [\"{}\"]\n", dns.addr),
    );
    stack
        .create_users(&["support@vendor.test", ALICE, DANA])
        .await;
    // Dana's contract: advance exchange (IX-07's deadlines count from the shipment).
    let contracts = stack.dir.join("contracts.csv");
    std::fs::write(
        &contracts,
        format!("serial,email,company,tax_id,tier,model,purchased_on,plans\nA1-24017,{DANA},Dana Storage,,silver,TrueNAS M40,2025-06-01,advance_exchange\n"),
    )
    .unwrap();
    let out = ticketd_cli(
        &cfg,
        &["contracts", "import", &contracts.display().to_string()],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let clock = FixedClock::new(at("2026-03-02T09:05:00-08:00"));
    let daemon = Daemon::start(&cfg, Arc::new(clock.clone()));
    let mut mutt = Mutt::open_via(
        &stack,
        ALICE,
        &format!("Alice Staff <{ALICE}>"),
        signer.port,
    )
    .await;

    // 1. Dana writes to alice directly; alice forwards it with commands on top.
    let direct = mail(
        &format!("Dana Customer <{DANA}>"),
        ALICE,
        "Failed drive in the pool",
        "dana-1@example.net",
        "",
        "Hello Alice,\n\na drive failed in our TrueNAS A1-24017, please send a replacement.\n#close\nDana",
    );
    stack
        .append(ALICE, "INBOX", &direct, "02-Mar-2026 09:00:00 -0800")
        .await;
    mutt.forward(
        "Failed drive",
        "support@vendor.test",
        "#open\n#severity 2\nDana phoned: their backups run on this pool.",
    )
    .await;
    stack.wait_for_count(DANA, "INBOX", 1, WAIT).await;
    let ack = inbox(&stack, DANA).await.remove(0);
    assert!(ack.subject.contains("[TKT#1]"), "{}", ack.subject);
    assert_eq!(
        ack.in_reply_to,
        ["dana-1@example.net"],
        "in Dana's own thread"
    );
    assert!(
        ack.text.contains("[TKT#1] also serves as the RMA number"),
        "the pack's acknowledgement (IX-05, IX-06):\n{}",
        ack.text
    );
    let t = db(&cfg).ticket(TicketId(1)).unwrap().expect("ticket 1");
    assert_eq!(t.requester, DANA, "the forwarded sender's, not alice's");
    assert_eq!(t.owner.as_deref(), Some("alice"));
    assert_eq!(t.severity, Some(2));
    assert_ne!(t.status, TicketStatus::Closed, "Dana's #close is her text");
    let history = events(&cfg, 1);
    assert!(
        history
            .iter()
            .any(|e| e == "note: alice by mail (DKIM d=staff.test s=sel): Dana phoned: their backups run on this pool."),
        "{history:#?}"
    );
    assert!(
        history
            .iter()
            .any(|e| e.starts_with("staff_mail:") && e.contains("#open, #severity 2")),
        "{history:#?}"
    );
    // alice: the ticket's notification and the confirmation.
    stack.wait_for_count(ALICE, "INBOX", 3, WAIT).await;

    // 2. `#rma shipped` with the tracking number, from a reply to the notification.
    mutt.reply(
        "New ticket: Failed drive",
        "#rma shipped UPS 1Z999AA10123456784",
        &[],
    )
    .await;
    stack.wait_for_count(DANA, "INBOX", 2, WAIT).await;
    let notice = inbox(&stack, DANA).await.remove(1);
    assert!(notice.subject.starts_with("RMA 1:"), "{}", notice.subject);
    assert!(
        notice
            .text
            .contains("shipped with UPS, tracking number 1Z999AA10123456784"),
        "{}",
        notice.text
    );
    assert!(
        notice.text.contains("return label is valid for 10 days"),
        "{}",
        notice.text
    );
    let timers = db(&cfg).ticket(TicketId(1)).unwrap().unwrap().timers;
    let ix07: Vec<_> = timers
        .iter()
        .filter(|p| {
            p.cause.to_string().starts_with("return_label")
                || p.cause.to_string().starts_with("parts_invoiced")
        })
        .collect();
    assert_eq!(
        ix07.len(),
        3,
        "IX-07's label, reminder and invoice: {timers:?}"
    );

    // 3. Dana opens a second ticket about the same pool; alice merges it into 1.
    let again = mail(
        &format!("Dana Customer <{DANA}>"),
        "support@vendor.test",
        "Pool still degraded",
        "dana-2@example.net",
        "",
        "Hello, the pool is still degraded. Dana",
    );
    stack.deliver(&again).await;
    stack.wait_for_count(DANA, "INBOX", 3, WAIT).await;
    mutt.reply("New ticket: Pool still degraded", "#merge 1", &[])
        .await;
    wait_until("ticket 2 is merged into 1", WAIT, || {
        db(&cfg).ticket(TicketId(2)).unwrap().unwrap().merged_into == Some(TicketId(1))
    })
    .await;
    stack.wait_for_count(DANA, "INBOX", 4, WAIT).await;
    let two = db(&cfg).ticket(TicketId(2)).unwrap().unwrap();
    assert_eq!(two.status, TicketStatus::Closed);
    let one = db(&cfg).history(TicketId(1)).unwrap().unwrap();
    let from_dana = one
        .messages
        .iter()
        .filter(|m| m.sender.as_deref() == Some(DANA))
        .count();
    assert_eq!(from_dana, 1, "Dana's second mail is on ticket 1 now");
    assert!(
        events(&cfg, 2)
            .iter()
            .any(|e| e == "merged_into: merged into ticket 1 by alice by mail (reply token)")
    );
    // Dana is told once, naming the surviving ticket.
    let merged: Vec<Inbound> = inbox(&stack, DANA)
        .await
        .into_iter()
        .filter(|m| m.subject.contains("(was [TKT#2])"))
        .collect();
    assert_eq!(merged.len(), 1);
    assert!(
        merged[0].subject.contains("[TKT#1]"),
        "{}",
        merged[0].subject
    );
    assert!(
        merged[0].text.contains("[TKT#1] now holds both"),
        "{}",
        merged[0].text
    );

    // Later mail to the merged ticket lands on ticket 1.
    let later = mail(
        &format!("Dana Customer <{DANA}>"),
        "support@vendor.test",
        "Re: [TKT#2] Pool still degraded",
        "dana-3@example.net",
        "",
        "The resilver finished overnight.",
    );
    stack.deliver(&later).await;
    wait_until("Dana's later mail lands on ticket 1", WAIT, || {
        db(&cfg)
            .history(TicketId(1))
            .unwrap()
            .unwrap()
            .messages
            .iter()
            .filter(|m| m.sender.as_deref() == Some(DANA))
            .count()
            == 2
    })
    .await;
    assert_eq!(db(&cfg).tickets().unwrap().len(), 2, "no third ticket");
    daemon.stop(WAIT).await;
    drop(signer);
}

/// The shell twin: `ticketd merge SOURCE INTO` runs the same decision, and
/// refuses across customers' organisations unless `--force`.
#[test]
fn issue_26_ticketd_merge_moves_a_ticket_and_refuses_across_organisations() {
    use crate::kit::offline::{LOAD_LIMITS, dev_config_file};
    use ticketd::intake::{Engine, Fetched};
    let dir = tempfile::tempdir().unwrap();
    let cfg = dev_config_file(dir.path(), "ixsystems", LOAD_LIMITS);
    let engine = Engine::from_config(&cfg).unwrap();
    let mut st = Store::open_at(&cfg.database).unwrap();
    let support = cfg.mailbox("support").unwrap();
    for (uid, from, id) in [
        (1, DANA, "m1@example.net"),
        (2, DANA, "m2@example.net"),
        (3, "eve@other.example", "m3@example.net"),
    ] {
        let raw = mail(
            from,
            "support@vendor.test",
            "Pool degraded",
            id,
            "",
            "Help, the pool is degraded.",
        );
        let f = Fetched {
            uidvalidity: 1,
            uid,
            size: raw.len() as u64,
            raw,
            arrival: at("2026-03-02T09:00:00-08:00") + chrono::Duration::minutes(uid as i64),
        };
        engine
            .ingest(&mut st, support, &f, &FixedClock::new(f.arrival))
            .unwrap();
    }
    drop(st);
    let out = ticketd_cli(&cfg, &["merge", "2", "1", "--as", "lead@vendor.test"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with("ticket 2 merged into ticket 1 by lead@vendor.test"),
        "{text}"
    );
    assert!(
        text.contains("dana@example.net told of the merge"),
        "{text}"
    );
    assert_eq!(
        db(&cfg).ticket(TicketId(2)).unwrap().unwrap().merged_into,
        Some(TicketId(1))
    );
    let notices = db(&cfg)
        .outbox(None)
        .unwrap()
        .into_iter()
        .filter(|o| o.kind == "merged")
        .count();
    assert_eq!(notices, 1, "Dana is told once");
    // Again: ticket 2 is merged already.
    let out = ticketd_cli(&cfg, &["merge", "2", "1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("ticket 2 was already merged into ticket 1")
    );
    // Eve's ticket is another customer's: refused, then forced.
    let out = ticketd_cli(&cfg, &["merge", "3", "1"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("different customers' organisations") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(
        db(&cfg).ticket(TicketId(3)).unwrap().unwrap().merged_into,
        None
    );
    let out = ticketd_cli(&cfg, &["merge", "3", "1", "--force"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let history = events(&cfg, 1);
    assert!(
        history
            .iter()
            .any(|e| e.starts_with("merged: ticket 3 merged into this one by ")),
        "{history:#?}"
    );
}
