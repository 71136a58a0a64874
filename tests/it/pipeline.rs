//! The intake pipeline end to end: IMAP in, tickets in SQLite, replies out over SMTP.

use crate::harness::{Daemon, MailStack, Options, mail, wait_until};
use std::sync::Arc;
use std::time::Duration;
use ticketd::clock::{SharedClock, SystemClock};
use ticketd::config::Config;
use ticketd::parse::parse;
use ticketd::store::Store;

const WAIT: Duration = Duration::from_secs(20);
const DATE: &str = "02-Mar-2026 09:00:00 -0800";

fn clock() -> SharedClock {
    Arc::new(SystemClock)
}

async fn once(cfg: &Config) {
    ticketd::daemon::run_once(cfg.clone(), clock())
        .await
        .expect("run --once");
}

fn db(cfg: &Config) -> Store {
    Store::open_read_only_at(&cfg.database).expect("database")
}

fn subjects(stack: &MailStack) -> Vec<String> {
    stack
        .sink_messages()
        .iter()
        .map(|m| parse(m, chrono::DateTime::UNIX_EPOCH).subject)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_mail_gets_a_ticket_and_an_acknowledgement_with_the_tag() {
    let stack = MailStack::start();
    let cfg = stack.config(|_| {});
    let raw = mail(
        "Ann Customer <ann@example.net>",
        "support@vendor.test",
        "Pool degraded",
        "a1@example.net",
        "",
        "Serial: A1-12345\nMy pool is degraded.",
    );
    stack.deliver(&raw).await;
    once(&cfg).await;

    let tickets = db(&cfg).tickets().unwrap();
    assert_eq!(tickets.len(), 1);
    assert_eq!(tickets[0].requester, "ann@example.net");
    assert_eq!(tickets[0].subject, "Pool degraded");
    let sent = stack.sink_messages();
    assert_eq!(sent.len(), 1, "one acknowledgement");
    let ack = parse(&sent[0], chrono::DateTime::UNIX_EPOCH);
    assert_eq!(
        ack.subject,
        format!("Re: Pool degraded [TKT#{}]", tickets[0].id)
    );
    assert_eq!(ack.in_reply_to, vec!["a1@example.net"]);
    assert_eq!(ack.references, vec!["a1@example.net"]);
    assert_eq!(ack.header("auto-submitted"), Some("auto-replied"));
    assert_eq!(ack.header("x-ticketd-loop"), Some("tickets.vendor.test"));
    assert!(
        ack.message_id
            .as_deref()
            .unwrap()
            .ends_with("@tickets.vendor.test")
    );
    let outbox = db(&cfg).outbox(None).unwrap();
    assert_eq!(outbox.len(), 1);
    assert_eq!(outbox[0].status, "sent");
    assert_eq!(
        Some(outbox[0].message_id.as_str()),
        ack.message_id.as_deref(),
        "Message-ID fixed when queued"
    );
    // Acknowledged on IMAP only after the commit: moved to Processed.
    assert_eq!(stack.count("support@vendor.test", "INBOX").await, 0);
    assert_eq!(stack.count("support@vendor.test", "Processed").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tagged_reply_and_a_reply_with_only_references_update_the_same_ticket() {
    let stack = MailStack::start();
    let cfg = stack.config(|_| {});
    let first = mail(
        "ann@example.net",
        "support@vendor.test",
        "Pool degraded",
        "a1@example.net",
        "",
        "help",
    );
    stack.deliver(&first).await;
    once(&cfg).await;
    let ack = parse(&stack.sink_messages()[0], chrono::DateTime::UNIX_EPOCH);
    let ack_id = ack.message_id.clone().unwrap();

    // (a) the tag in the subject, behind the prefixes clients add.
    let tagged = mail(
        "ann@example.net",
        "support@vendor.test",
        "AW: RE: Pool degraded [TKT#1]",
        "a2@example.net",
        "",
        "more info",
    );
    stack.deliver(&tagged).await;
    once(&cfg).await;
    // (b) a reply whose client mangled the subject but kept References.
    let mangled = mail(
        "ann@example.net",
        "support@vendor.test",
        "what about my pool",
        "a3@example.net",
        &format!("In-Reply-To: <{ack_id}>\r\nReferences: <a1@example.net> <{ack_id}>\r\n"),
        "any news?",
    );
    stack.deliver(&mangled).await;
    once(&cfg).await;

    let st = db(&cfg);
    assert_eq!(
        st.tickets().unwrap().len(),
        1,
        "one ticket for the whole thread"
    );
    assert_eq!(st.tickets().unwrap()[0].messages, 3);
    let s = subjects(&stack);
    assert_eq!(s.len(), 3);
    // Every reply names the ticket as it was opened. Regression: a follow-up's
    // reply repeated the customer's prefixes and the tag, or took the new subject.
    assert!(s.iter().all(|x| x == "Re: Pool degraded [TKT#1]"), "{s:?}");
    let kinds: Vec<String> = st
        .outbox(None)
        .unwrap()
        .into_iter()
        .map(|r| r.kind)
        .collect();
    assert_eq!(kinds, vec!["ack_new", "ack_followup", "ack_followup"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_mail_in_two_mailboxes_makes_one_ticket() {
    let stack = MailStack::start();
    let cfg = stack.config(|c| c.mailboxes = vec![("support", "support"), ("rma", "rma")]);
    let raw = mail(
        "ann@example.net",
        "support@vendor.test, rma@vendor.test",
        "Replace my disk",
        "both@example.net",
        "",
        "disk died",
    );
    stack.deliver(&raw).await;
    stack.append("rma@vendor.test", "INBOX", &raw, DATE).await;
    once(&cfg).await;
    let st = db(&cfg);
    assert_eq!(st.tickets().unwrap().len(), 1);
    assert_eq!(stack.sink_messages().len(), 1, "answered once");
    assert_eq!(
        st.message_outcomes().unwrap(),
        vec![("duplicate".to_string(), 1), ("processed".to_string(), 1)]
    );
    assert_eq!(stack.count("rma@vendor.test", "Processed").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarting_reprocesses_nothing_even_after_a_crash_between_commit_and_ack() {
    let stack = MailStack::start();
    let cfg = stack.config(|_| {});
    let raw = mail(
        "ann@example.net",
        "support@vendor.test",
        "Crash me",
        "c1@example.net",
        "",
        "x",
    );
    stack.deliver(&raw).await;

    // Commit the message's effects without acknowledging it on IMAP, as a
    // crash right after the commit would leave it.
    {
        let shared = ticketd::shared::Shared::new(&cfg, clock()).unwrap();
        let mut s = stack.imap("support@vendor.test").await;
        let sel = s.select("INBOX").await.unwrap();
        let mb = &cfg.mailboxes[0];
        let f = ticketd::intake::Fetched {
            uidvalidity: sel.uid_validity.unwrap(),
            uid: 1,
            raw: raw.clone(),
            size: raw.len() as u64,
            arrival: clock().now(),
        };
        let now = shared.clock.now();
        let mut st = shared.store.lock();
        st.reset_mailbox(&mb.name, f.uidvalidity, now).unwrap();
        shared
            .engine()
            .ingest(&mut st, mb, &f, &*shared.clock)
            .unwrap();
    }
    assert_eq!(
        stack.count("support@vendor.test", "INBOX").await,
        1,
        "not yet acknowledged"
    );

    once(&cfg).await;
    once(&cfg).await;
    let st = db(&cfg);
    assert_eq!(st.tickets().unwrap().len(), 1, "no duplicate ticket");
    assert_eq!(st.outbox(None).unwrap().len(), 1, "one reply");
    assert_eq!(stack.sink_messages().len(), 1);
    assert_eq!(
        stack.count("support@vendor.test", "INBOX").await,
        0,
        "acknowledged on restart"
    );
    assert_eq!(stack.count("support@vendor.test", "Processed").await, 1);
}

// A batch is committed in one transaction and then moved by UID sets: a
// crash between the two must leave every mail of the batch, including one
// that was quarantined, acknowledged once and answered once on restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_a_batch_commit_and_its_move_doubles_nothing() {
    let stack = MailStack::start();
    let cfg = stack.config(|c| c.max_message_bytes = 4096);
    let mails = [
        mail(
            "ann@example.net",
            "support@vendor.test",
            "Disk",
            "b1@example.net",
            "",
            "x",
        ),
        mail(
            "eve@example.net",
            "support@vendor.test",
            "Huge",
            "b2@example.net",
            "",
            &"log line\n".repeat(2000),
        ),
        mail(
            "bob@example.net",
            "support@vendor.test",
            "Fan",
            "b3@example.net",
            "",
            "y",
        ),
    ];
    for m in &mails {
        stack.deliver(m).await;
    }
    let queued = {
        let shared = ticketd::shared::Shared::new(&cfg, clock()).unwrap();
        let mut s = stack.imap("support@vendor.test").await;
        let uidvalidity = s.select("INBOX").await.unwrap().uid_validity.unwrap();
        let mb = &cfg.mailboxes[0];
        let now = shared.clock.now();
        let mut st = shared.store.lock();
        st.reset_mailbox(&mb.name, uidvalidity, now).unwrap();
        let outcomes = st
            .in_batch(|st| {
                let mut out = Vec::new();
                for (i, raw) in mails.iter().enumerate() {
                    let f = ticketd::intake::Fetched {
                        uidvalidity,
                        uid: i as u32 + 1,
                        raw: raw.clone(),
                        size: raw.len() as u64,
                        arrival: now,
                    };
                    out.push(shared.engine().ingest(st, mb, &f, &*shared.clock)?.outcome);
                }
                Ok(out)
            })
            .unwrap();
        assert_eq!(
            outcomes.iter().map(|o| o.as_str()).collect::<Vec<_>>(),
            vec!["processed", "quarantined", "processed"]
        );
        st.outbox(None).unwrap().len()
    };
    assert_eq!(stack.count("support@vendor.test", "INBOX").await, 3);

    once(&cfg).await;
    once(&cfg).await;
    let st = db(&cfg);
    assert_eq!(st.tickets().unwrap().len(), 2, "no duplicate ticket");
    assert_eq!(
        st.outbox(None).unwrap().len(),
        queued,
        "nothing queued again"
    );
    assert_eq!(stack.sink_messages().len(), queued, "each mail sent once");
    assert_eq!(stack.count("support@vendor.test", "INBOX").await, 0);
    assert_eq!(stack.count("support@vendor.test", "Processed").await, 2);
    assert_eq!(stack.count("support@vendor.test", "Quarantine").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_uidvalidity_reset_rescans_without_duplicates() {
    let stack = MailStack::start();
    let cfg = stack.config(|c| c.after = "seen".into());
    let raw = mail(
        "ann@example.net",
        "support@vendor.test",
        "Seen mode",
        "s1@example.net",
        "",
        "x",
    );
    stack.deliver(&raw).await;
    once(&cfg).await;
    assert_eq!(
        stack.count("support@vendor.test", "INBOX").await,
        1,
        "seen mode leaves mail in place"
    );
    stack.doveadm(&[
        "mailbox",
        "update",
        "-u",
        "support@vendor.test",
        "--uid-validity",
        "777",
        "INBOX",
    ]);
    once(&cfg).await;
    let st = db(&cfg);
    assert_eq!(
        st.mailbox_state("support").unwrap().unwrap().uidvalidity,
        777
    );
    assert_eq!(st.tickets().unwrap().len(), 1);
    assert_eq!(stack.sink_messages().len(), 1);
    assert_eq!(
        st.message_outcomes().unwrap(),
        vec![("duplicate".to_string(), 1), ("processed".to_string(), 1)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mail_appended_while_running_is_picked_up_through_idle() {
    let stack = MailStack::start();
    // An hour's poll interval: only IDLE can bring the mail in time.
    let cfg = stack.config(|c| c.poll_interval_secs = 3600);
    let daemon = Daemon::start(&cfg, clock());
    let dbpath = cfg.database.sqlite_path().unwrap().to_path_buf();
    wait_until("the watcher to select its mailbox", WAIT, || {
        Store::open_read_only(&dbpath)
            .ok()
            .and_then(|s| s.mailbox_state("support").ok().flatten())
            .is_some()
    })
    .await;
    let raw = mail(
        "ann@example.net",
        "support@vendor.test",
        "Live mail",
        "live@example.net",
        "",
        "x",
    );
    stack.deliver(&raw).await;
    wait_until("the acknowledgement", WAIT, || {
        stack.sink_messages().len() == 1
    })
    .await;
    daemon.stop(WAIT).await;
    assert_eq!(db(&cfg).tickets().unwrap().len(), 1);
    assert!(subjects(&stack)[0].contains("Live mail [TKT#1]"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_japanese_iso_2022_jp_mail_is_stored_and_answered_with_its_subject_intact() {
    let stack = MailStack::with(Options {
        postfix: true,
        ..Default::default()
    });
    let cfg = stack.config(|c| c.pack = "qnap-jp".into());
    // Subject 障害について and a body, in ISO-2022-JP as Japanese clients send it.
    let raw = b"From: =?ISO-2022-JP?B?GyRCOzNFRBsoQg==?= <taro@example.jp>\r\nTo: support@vendor.test\r\nSubject: =?ISO-2022-JP?B?GyRCPmMzMiRLJEQkJCRGGyhC?=\r\nMessage-ID: <jp1@example.jp>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=ISO-2022-JP\r\nContent-Transfer-Encoding: 7bit\r\n\r\n\x1b$B%G%#%9%/$,2u$l$^$7$?!#\x1b(B\r\n";
    stack.deliver(raw).await;
    once(&cfg).await;

    let st = db(&cfg);
    let t = &st.tickets().unwrap()[0];
    assert_eq!(t.subject, "障害について");
    assert_eq!(t.language, "ja");
    // Read the reply back from the customer's own mailbox.
    stack
        .wait_for_count("taro@example.jp", "INBOX", 1, WAIT)
        .await;
    let got = stack.messages("taro@example.jp", "INBOX").await;
    let reply = parse(&got[0], chrono::DateTime::UNIX_EPOCH);
    assert_eq!(reply.subject, "Re: 障害について [TKT#1]");
    assert!(reply.text.contains("お問い合わせ"), "{}", reply.text);
    assert!(
        reply.text.contains("山田") || reply.text.contains("taro@example.jp"),
        "{}",
        reply.text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auto_reply_gets_no_reply() {
    let stack = MailStack::start();
    let cfg = stack.config(|_| {});
    let ooo = mail(
        "ann@example.net",
        "support@vendor.test",
        "Out of office",
        "ooo@example.net",
        "Auto-Submitted: auto-replied\r\n",
        "I am away.",
    );
    let bulk = mail(
        "news@example.net",
        "support@vendor.test",
        "Newsletter",
        "n1@example.net",
        "Precedence: bulk\r\nList-Id: <news.example.net>\r\n",
        "news",
    );
    let null = mail(
        "ann@example.net",
        "support@vendor.test",
        "Delivery",
        "d1@example.net",
        "Return-Path: <>\r\n",
        "x",
    );
    for raw in [&ooo, &bulk, &null] {
        stack.deliver(raw).await;
    }
    once(&cfg).await;
    assert!(stack.sink_messages().is_empty(), "no reply to a machine");
    assert!(db(&cfg).tickets().unwrap().is_empty());
    assert_eq!(
        stack.count("support@vendor.test", "Processed").await,
        3,
        "still acknowledged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_smtp_server_that_answers_4xx_first_gets_the_reply_once() {
    let stack = MailStack::with(Options {
        sink_flags: vec!["-r".into(), "MAIL".into()],
        ..Default::default()
    });
    let cfg = stack.config(|c| c.retry_base_ms = 200);
    let daemon = Daemon::start(&cfg, clock());
    let raw = mail(
        "ann@example.net",
        "support@vendor.test",
        "Retry me",
        "r1@example.net",
        "",
        "x",
    );
    stack.deliver(&raw).await;
    let dbpath = cfg.database.sqlite_path().unwrap().to_path_buf();
    let row = |p: &std::path::Path| {
        Store::open_read_only(p)
            .ok()
            .and_then(|s| s.outbox(None).ok())
            .and_then(|o| o.into_iter().next())
    };
    wait_until("a 4xx to be recorded", WAIT, || {
        row(&dbpath).is_some_and(|r| {
            r.attempts >= 1 && r.last_error.as_deref().is_some_and(|e| e.contains("450"))
        })
    })
    .await;
    assert_eq!(
        row(&dbpath).unwrap().status,
        "queued",
        "4xx is retried, not failed"
    );
    stack.stop_sink();
    stack.start_sink(&[]);
    wait_until("the reply to be accepted", WAIT, || {
        row(&dbpath).is_some_and(|r| r.status == "sent")
    })
    .await;
    daemon.stop(WAIT).await;
    assert_eq!(stack.sink_messages().len(), 1, "delivered exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_5xx_is_recorded_as_failed_and_staff_are_told() {
    let stack = MailStack::with(Options {
        sink_flags: vec!["-f".into(), "RCPT".into()],
        ..Default::default()
    });
    let cfg = stack.config(|_| {});
    let raw = mail(
        "ann@example.net",
        "support@vendor.test",
        "Reject me",
        "f1@example.net",
        "",
        "x",
    );
    stack.deliver(&raw).await;
    once(&cfg).await;
    let rows = db(&cfg).outbox(None).unwrap();
    assert_eq!(rows[0].kind, "ack_new");
    assert_eq!(rows[0].status, "failed");
    assert_eq!(rows[0].attempts, 1, "a 5xx is not retried");
    let notice = rows
        .iter()
        .find(|r| r.kind == "staff_send_failed")
        .expect("staff notice queued");
    assert_eq!(notice.rcpt_to, vec!["lead@vendor.test"]);
    assert_eq!(rows.len(), 2, "no notice about the notice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mail_that_cannot_be_handled_is_quarantined_and_the_next_is_processed() {
    let stack = MailStack::start();
    let cfg = stack.config(|c| c.max_message_bytes = 4096);
    let big = mail(
        "ann@example.net",
        "support@vendor.test",
        "Huge log",
        "big@example.net",
        "",
        &"log line\n".repeat(2000),
    );
    let fine = mail(
        "bob@example.net",
        "support@vendor.test",
        "Small",
        "small@example.net",
        "",
        "hello",
    );
    stack.deliver(&big).await;
    stack.deliver(&fine).await;
    once(&cfg).await;
    assert_eq!(stack.count("support@vendor.test", "Quarantine").await, 1);
    assert_eq!(stack.count("support@vendor.test", "Processed").await, 1);
    let st = db(&cfg);
    let q = st.quarantined().unwrap();
    assert_eq!(q.len(), 1);
    assert!(
        q[0].reason.as_deref().unwrap().contains("over the limit"),
        "{:?}",
        q[0].reason
    );
    assert_eq!(st.tickets().unwrap().len(), 1);
    assert_eq!(st.tickets().unwrap()[0].requester, "bob@example.net");
    let s = subjects(&stack);
    assert!(
        s.iter().any(|x| x.contains("quarantined")),
        "staff told: {s:?}"
    );
    assert!(s.iter().any(|x| x.contains("Small [TKT#1]")), "{s:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_one_clear_error_naming_the_mailbox() {
    let stack = MailStack::start();
    let cfg = stack.config(|c| c.password = "wrong".into());
    let err = ticketd::daemon::run_once(cfg, clock()).await.unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("login to mailbox support as support@vendor.test was refused"),
        "{msg}"
    );
}

/// Issue 12, defect 2: a follow-up stored before the mail it answers.
async fn follow_up_first(
    stack: &MailStack,
    parent_from: &str,
    follow_up_to: &str,
) -> (Config, Config) {
    let parent = mail(
        parent_from,
        "rma@vendor.test",
        "Drive failed in bay 3",
        "parent@customer.test",
        "",
        "The drive in bay 3 failed; please send a replacement.",
    );
    let follow_up = mail(
        "ann@customer.test",
        follow_up_to,
        "Re: Drive failed in bay 3",
        "child@customer.test",
        "In-Reply-To: <parent@customer.test>\r\nReferences: <parent@customer.test>\r\n",
        "Forgot to say: the serial is A1-B2C3D4E5.",
    );
    stack
        .append("rma@vendor.test", "INBOX", &parent, DATE)
        .await;
    stack
        .append("support@vendor.test", "INBOX", &follow_up, DATE)
        .await;
    // The support mailbox is read first: the follow-up is stored before its parent.
    let support_only = stack.config(|c| c.mailboxes = vec![("support", "support")]);
    let both = stack.config(|c| c.mailboxes = vec![("support", "support"), ("rma", "rma")]);
    (support_only, both)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follow_up_stored_before_the_mail_it_answers_is_on_one_ticket_with_it() {
    let stack = MailStack::start();
    let (support_only, both) =
        follow_up_first(&stack, "ann@customer.test", "support@vendor.test").await;
    once(&support_only).await;
    assert_eq!(db(&support_only).tickets().unwrap().len(), 1);
    once(&both).await;
    let st = db(&both);
    let tickets = st.tickets().unwrap();
    assert_eq!(
        tickets.len(),
        1,
        "one conversation, one ticket: {tickets:?}"
    );
    assert_eq!(tickets[0].messages, 2);
    let kinds: Vec<String> = st
        .outbox(None)
        .unwrap()
        .into_iter()
        .map(|r| r.kind)
        .collect();
    assert_eq!(
        kinds,
        ["ack_new", "ack_followup"],
        "the acknowledgements name one ticket"
    );
    let subjects = subjects(&stack);
    assert!(
        subjects.iter().all(|s| s.contains("[TKT#1]")),
        "{subjects:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_reference_does_not_pull_a_strangers_mail_into_someone_elses_ticket() {
    let stack = MailStack::start();
    // The "follow-up" is the forger's, sent to support@ alone; the mail it
    // names comes from someone who is neither on its ticket nor among its people.
    let (support_only, both) =
        follow_up_first(&stack, "bob@elsewhere.test", "support@vendor.test").await;
    once(&support_only).await;
    once(&both).await;
    let st = db(&both);
    assert_eq!(
        st.tickets().unwrap().len(),
        2,
        "Bob's mail gets its own ticket"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_on_the_same_database_refuses_to_start_while_the_other_commands_work() {
    let stack = MailStack::start();
    let cfg = stack.config(|_| {});
    let daemon = Daemon::start(&cfg, clock());
    wait_until("the run lock", WAIT, || {
        std::fs::read_to_string(
            cfg.database
                .sqlite_path()
                .unwrap()
                .with_extension("db.lock"),
        )
        .is_ok_and(|s| !s.trim().is_empty())
    })
    .await;
    let ticketd = |args: &[&str]| crate::harness::ticketd_cli(&cfg, args);
    let second = ticketd(&["run"]);
    assert_eq!(second.status.code(), Some(1));
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(err.contains("another ticketd run (pid "), "{err}");
    assert!(err.contains("only one may"), "{err}");
    let listing = ticketd(&["tickets"]);
    assert!(
        listing.status.success(),
        "{}",
        String::from_utf8_lossy(&listing.stderr)
    );
    daemon.stop(WAIT).await;
    // Once it stopped, a run starts.
    ticketd::daemon::run_once(cfg.clone(), clock())
        .await
        .unwrap();
}
