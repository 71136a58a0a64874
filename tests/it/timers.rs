//! Timers end to end: NX-03 escalation notices fired by the scheduler at their minute on a test clock, read back from the recipients' mailboxes, once each across a restart.

use crate::harness::ticketd_cli as ticketd;
use crate::harness::{Daemon, MailStack, Options, mail, wait_until};
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::Duration;
use ticketd::clock::{FixedClock, SharedClock};
use ticketd::config::Config;
use ticketd::model::{TicketId, TimerKind};
use ticketd::store::Store;

const WAIT: Duration = Duration::from_secs(30);

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("an RFC 3339 instant")
        .to_utc()
}

/// The pending escalation steps (the SLA timers of the same ticket aside).
fn pending(cfg: &Config) -> Vec<ticketd::model::TimerRow> {
    Store::open_read_only_at(&cfg.database)
        .ok()
        .and_then(|s| s.pending_timers(None, 100).ok())
        .unwrap_or_default()
        .into_iter()
        .filter(|t| t.plan.kind == TimerKind::Escalation)
        .collect()
}

/// A NetEx severity 1 report in support@, arrived Saturday 02:00 Central.
async fn saturday_severity_1_report(stack: &MailStack, message_id: &str) {
    let report = mail(
        "ann@customer.test",
        "support@vendor.test",
        "Severity 1: replication down",
        message_id,
        "",
        "HyperIP version 7.0 on Red Hat Enterprise Linux 9 drops every transfer since the upgrade; the log shows retransmission timeouts on the WAN side.",
    );
    stack
        .append(
            "support@vendor.test",
            "INBOX",
            &report,
            "21-Nov-2026 02:00:00 -0600",
        )
        .await;
}

fn subjects(raws: &[Vec<u8>]) -> Vec<String> {
    raws.iter()
        .map(|m| ticketd::parse::parse(m, DateTime::UNIX_EPOCH).subject)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nx_03_severity_1_escalates_to_the_director_at_8_hours_and_the_president_at_24_once_each_across_a_restart()
 {
    nx_03_severity_1_escalates_to_the_director_at_8_hours_and_the_president_at_24_once_each_across_a_restart_on(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_22_on_postgresql_nx_03_severity_1_escalates_to_the_director_at_8_hours_and_the_president_at_24_once_each_across_a_restart()
 {
    let pg = crate::kit::postgres::Postgres::start();
    nx_03_severity_1_escalates_to_the_director_at_8_hours_and_the_president_at_24_once_each_across_a_restart_on(Some(&pg)).await;
}

async fn nx_03_severity_1_escalates_to_the_director_at_8_hours_and_the_president_at_24_once_each_across_a_restart_on(
    pg: Option<&crate::kit::postgres::Postgres>,
) {
    let stack = MailStack::with(Options {
        postfix: true,
        ..Options::default()
    });
    let cfg = stack.config(|c| c.pack = "netex".into());
    let cfg = match pg {
        Some(pg) => crate::harness::onto_postgres(&cfg, pg, "timers"),
        None => cfg,
    };
    // Saturday 02:00 Central: a severity 1 report, outside business hours.
    saturday_severity_1_report(&stack, "s1@customer.test").await;
    let clock = FixedClock::new(at("2026-11-21T02:00:30-06:00"));
    let daemon = Daemon::start(&cfg, Arc::new(clock.clone()));
    wait_until("the ladder's two timers", WAIT, || pending(&cfg).len() == 2).await;
    let timers = pending(&cfg);
    assert!(timers.iter().all(|t| t.plan.kind == TimerKind::Escalation
        && t.plan.rule == "NX-03"
        && t.ticket == TicketId(1)));
    assert_eq!(timers[0].plan.due, at("2026-11-21T10:00:00-06:00"));
    assert_eq!(
        timers[0].plan.to.as_deref(),
        Some("Director of Customer Services")
    );
    assert_eq!(timers[1].plan.due, at("2026-11-22T02:00:00-06:00"));
    assert_eq!(
        timers[1].plan.to.as_deref(),
        Some("President and General Manager")
    );
    stack
        .wait_for_count("ann@customer.test", "INBOX", 1, WAIT)
        .await;

    // A minute before the step nothing is sent; at 10:00 the Director's notice is.
    let engine = ticketd::intake::Engine::from_config(&cfg).unwrap();
    let store = parking_lot::Mutex::new(Store::open_at(&cfg.database).unwrap());
    ticketd::scheduler::tick(&engine, &store, at("2026-11-21T09:59:00-06:00")).unwrap();
    assert_eq!(pending(&cfg).len(), 2, "no step fires before its minute");
    clock.set(at("2026-11-21T10:00:00-06:00"));
    stack
        .wait_for_count("director@vendor.test", "INBOX", 1, WAIT)
        .await;
    let director = stack.messages("director@vendor.test", "INBOX").await;
    let s = &subjects(&director)[0];
    assert!(
        s.contains("escalated to Director of Customer Services"),
        "{s}"
    );
    assert!(s.contains("[TKT#1]"), "{s}");
    let body = ticketd::parse::parse(&director[0], DateTime::UNIX_EPOCH).text;
    assert!(body.contains("open for 8 hours"), "{body}");
    assert!(!body.contains("sent late"), "on time: {body}");
    assert_eq!(stack.count("president@vendor.test", "INBOX").await, 0);
    daemon.stop(WAIT).await;

    // Restarted: the fired step stays fired; the President's comes at Sunday 02:00.
    let daemon = Daemon::start(&cfg, Arc::new(clock.clone()));
    clock.set(at("2026-11-22T02:00:00-06:00"));
    stack
        .wait_for_count("president@vendor.test", "INBOX", 1, WAIT)
        .await;
    wait_until("both timers settled", WAIT, || pending(&cfg).is_empty()).await;
    let st = Store::open_read_only_at(&cfg.database).unwrap();
    wait_until("the outbox drained", WAIT, || {
        Store::open_read_only_at(&cfg.database)
            .and_then(|s| s.outbox(Some("queued")))
            .is_ok_and(|q| q.is_empty())
    })
    .await;
    daemon.stop(WAIT).await;
    assert_eq!(
        stack.count("director@vendor.test", "INBOX").await,
        1,
        "once"
    );
    assert_eq!(
        stack.count("president@vendor.test", "INBOX").await,
        1,
        "once"
    );
    let fired: Vec<_> = st
        .ticket_events(TicketId(1))
        .unwrap()
        .into_iter()
        .filter(|(k, d)| k == "timer_fired" && d.contains("\"escalation\""))
        .collect();
    assert_eq!(fired.len(), 2, "{fired:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nx_03_a_step_due_while_the_daemon_was_down_fires_once_at_start_and_says_when_it_was_due() {
    let stack = MailStack::start();
    let cfg = stack.config(|c| c.pack = "netex".into());
    saturday_severity_1_report(&stack, "s1b@customer.test").await;
    let clock = FixedClock::new(at("2026-11-21T02:00:30-06:00"));
    let shared: SharedClock = Arc::new(clock.clone());
    ticketd::daemon::run_once(cfg.clone(), shared.clone())
        .await
        .unwrap();
    assert_eq!(pending(&cfg).len(), 2);
    // Down until Saturday 13:00: the 10:00 step is three hours overdue.
    clock.set(at("2026-11-21T13:00:00-06:00"));
    ticketd::daemon::run_once(cfg.clone(), shared.clone())
        .await
        .unwrap();
    ticketd::daemon::run_once(cfg.clone(), shared.clone())
        .await
        .unwrap();
    let notices: Vec<ticketd::parse::Inbound> = stack
        .sink_messages()
        .iter()
        .map(|m| ticketd::parse::parse(m, DateTime::UNIX_EPOCH))
        .filter(|m| m.subject.contains("escalated to"))
        .collect();
    assert_eq!(notices.len(), 1, "one notice however often it starts");
    let n = &notices[0];
    assert!(
        n.text
            .contains("due at 2026-11-21 10:00 CST and is sent late, at 2026-11-21 13:00 CST"),
        "{}",
        n.text
    );
    assert_eq!(n.to[0].address, "director@vendor.test");
    assert_eq!(pending(&cfg).len(), 1, "the President's step waits");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nx_03_closing_a_ticket_from_the_shell_cancels_its_ladder_and_names_who_closed_it() {
    let stack = MailStack::start();
    let cfg = stack.config(|c| c.pack = "netex".into());
    saturday_severity_1_report(&stack, "s1c@customer.test").await;
    let clock = FixedClock::new(at("2026-11-21T02:00:30-06:00"));
    let shared: SharedClock = Arc::new(clock.clone());
    ticketd::daemon::run_once(cfg.clone(), shared.clone())
        .await
        .unwrap();
    let listed = ticketd(&cfg, &["timers", "--json"]);
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let steps: Vec<&serde_json::Value> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["kind"] == "escalation")
        .collect();
    assert_eq!(steps[0]["at"], "2026-11-21T10:00:00-06:00");
    assert_eq!(steps.len(), 2);

    let out = ticketd(&cfg, &["close", "1", "--as", "lead@vendor.test"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(pending(&cfg).is_empty(), "closing cancels the ladder");
    assert!(
        Store::open_read_only_at(&cfg.database)
            .unwrap()
            .pending_timers(None, 100)
            .unwrap()
            .is_empty(),
        "and the SLA timers"
    );
    let again = ticketd(&cfg, &["close", "1"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("ticket 1 is already closed"));
    let unknown = ticketd(&cfg, &["close", "99"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("ticket 99 does not exist"));

    // Past both steps: nothing is sent for a closed ticket.
    clock.set(at("2026-11-22T03:00:00-06:00"));
    ticketd::daemon::run_once(cfg.clone(), shared.clone())
        .await
        .unwrap();
    let escalations = stack
        .sink_messages()
        .iter()
        .filter(|m| {
            ticketd::parse::parse(m, DateTime::UNIX_EPOCH)
                .subject
                .contains("escalated to")
        })
        .count();
    assert_eq!(escalations, 0);
    let st = Store::open_read_only_at(&cfg.database).unwrap();
    let events = st.ticket_events(TicketId(1)).unwrap();
    assert!(
        events
            .iter()
            .any(|(k, d)| k == "status_changed" && d == "closed by lead@vendor.test (was open)"),
        "{events:?}"
    );
    assert_eq!(
        events
            .iter()
            .filter(|(k, d)| k == "timer_cancelled" && d.contains("\"escalation\""))
            .count(),
        2,
        "{events:?}"
    );

    let out = ticketd(&cfg, &["reopen", "1", "--as", "lead@vendor.test"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let not_closed = ticketd(&cfg, &["reopen", "1"]);
    assert_eq!(not_closed.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&not_closed.stderr).contains("is not closed (it is open)"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nx_04_a_ticket_waiting_on_the_customer_is_reminded_then_closed_with_a_notice_and_its_sla_clock_paused()
 {
    let stack = MailStack::start();
    let cfg = stack.config(|c| {
        c.pack = "netex".into();
        c.sla_notices = true;
    });
    // Friday 20 November 10:00 Central (a date past on any day the suite
    // runs: Dovecot dates a future APPEND now), severity 3, without the
    // product's version or OS.
    let report = mail(
        "ann@customer.test",
        "support@vendor.test",
        "Transfers are slow",
        "w1@customer.test",
        "",
        "Since last week our transfers between the two sites are slow, about half the usual rate; nothing else changed.",
    );
    stack
        .append(
            "support@vendor.test",
            "INBOX",
            &report,
            "20-Nov-2026 10:00:00 -0600",
        )
        .await;
    let clock = FixedClock::new(at("2026-11-20T10:00:30-06:00"));
    let shared: SharedClock = Arc::new(clock.clone());
    ticketd::daemon::run_once(cfg.clone(), shared.clone())
        .await
        .unwrap();
    let st = Store::open_read_only_at(&cfg.database).unwrap();
    let t = st.ticket(TicketId(1)).unwrap().unwrap();
    assert_eq!(t.status, ticketd::model::TicketStatus::WaitingCustomer);
    let kinds: Vec<(TimerKind, bool)> = t
        .timers
        .iter()
        .map(|p| (p.kind, p.due().is_none()))
        .collect();
    assert!(
        kinds.contains(&(TimerKind::SlaBreach, true)),
        "paused: {kinds:?}"
    );
    assert!(
        kinds.contains(&(TimerKind::CustomerReminder, false)),
        "{kinds:?}"
    );

    // Wednesday 10:00 (3 business days): the reminder, naming what is missing.
    clock.set(at("2026-11-25T10:00:30-06:00"));
    ticketd::daemon::run_once(cfg.clone(), shared.clone())
        .await
        .unwrap();
    let reminders: Vec<ticketd::parse::Inbound> = stack
        .sink_messages()
        .iter()
        .map(|m| ticketd::parse::parse(m, DateTime::UNIX_EPOCH))
        .filter(|m| m.text.contains("have not received it yet"))
        .collect();
    assert_eq!(reminders.len(), 1);
    assert_eq!(reminders[0].to[0].address, "ann@customer.test");
    assert!(
        reminders[0].text.contains("On 2026-11-20"),
        "{}",
        reminders[0].text
    );
    assert!(
        reminders[0].in_reply_to.first().map(String::as_str) == Some("w1@customer.test"),
        "threaded"
    );
    assert!(
        !stack
            .sink_messages()
            .iter()
            .any(|m| String::from_utf8_lossy(m).contains("first response overdue")),
        "the paused SLA clock sends nothing"
    );

    // Four more business days, Thanksgiving not one of them: Wednesday 2
    // December, closed, and the customer told.
    clock.set(at("2026-12-02T10:00:30-06:00"));
    ticketd::daemon::run_once(cfg.clone(), shared.clone())
        .await
        .unwrap();
    let st = Store::open_read_only_at(&cfg.database).unwrap();
    let t = st.ticket(TicketId(1)).unwrap().unwrap();
    assert_eq!(t.status, ticketd::model::TicketStatus::Closed);
    assert!(
        t.timers.is_empty(),
        "closing ended every timer: {:?}",
        t.timers
    );
    let closed: Vec<_> = stack
        .sink_messages()
        .iter()
        .map(|m| ticketd::parse::parse(m, DateTime::UNIX_EPOCH))
        .filter(|m| m.subject.starts_with("Closed:"))
        .collect();
    assert_eq!(closed.len(), 1);
    let events = st.ticket_events(TicketId(1)).unwrap();
    assert!(
        events
            .iter()
            .any(|(k, d)| k == "status_changed" && d.contains("NX-04: no answer from the customer")),
        "{events:?}"
    );
}

/// A real `ticketd run`, killed with SIGKILL by the test.
struct RealDaemon(std::process::Child);

impl RealDaemon {
    fn start(cfg: &Config) -> RealDaemon {
        let log = std::fs::File::create(cfg.path.with_extension("log")).unwrap();
        RealDaemon(
            std::process::Command::new(env!("CARGO_BIN_EXE_ticketd"))
                .args(["run", "--config"])
                .arg(&cfg.path)
                .env_remove("TICKETD_CONFIG")
                .env_remove("NOTIFY_SOCKET")
                .env("RUST_LOG", "info")
                .stdout(std::process::Stdio::null())
                .stderr(log)
                .spawn()
                .expect("start ticketd run"),
        )
    }

    fn kill(mut self) {
        self.0.kill().expect("SIGKILL");
        self.0.wait().expect("reaped");
    }
}

impl Drop for RealDaemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nx_03_a_kill_9_of_the_daemon_while_steps_fire_loses_none_and_fires_none_twice() {
    use ticketd::clock::Clock;
    let stack = MailStack::start();
    let cfg = stack.config(|c| c.pack = "netex".into());
    // Twelve severity 1 reports that arrived 8 hours ago, give or take a
    // few seconds: their Director steps come due one a second from now.
    let start = ticketd::clock::SystemClock.now() + chrono::Duration::seconds(3);
    let n = 12;
    for i in 0..n {
        let arrival = start - chrono::Duration::hours(8) + chrono::Duration::seconds(i);
        let report = mail(
            &format!("c{i}@customer.test"),
            "support@vendor.test",
            &format!("Severity 1: site {i} down"),
            &format!("k{i}@customer.test"),
            "",
            "HyperIP version 7.0 on Red Hat Enterprise Linux 9 drops every transfer since the upgrade.",
        );
        let date = arrival.format("%d-%b-%Y %H:%M:%S +0000").to_string();
        stack
            .append("support@vendor.test", "INBOX", &report, &date)
            .await;
    }
    let notices = |stack: &MailStack| -> Vec<String> {
        stack
            .sink_messages()
            .iter()
            .map(|m| ticketd::parse::parse(m, DateTime::UNIX_EPOCH))
            .filter(|m| m.subject.contains("escalated to Director"))
            .map(|m| m.message_id.unwrap_or_default())
            .collect()
    };
    let daemon = RealDaemon::start(&cfg);
    wait_until("the first steps' notices", WAIT, || {
        notices(&stack).len() >= 3
    })
    .await;
    daemon.kill();
    let fired_before = notices(&stack).len();
    let daemon = RealDaemon::start(&cfg);
    wait_until("every Director step fired", WAIT, || {
        pending(&cfg)
            .iter()
            .all(|t| !t.plan.cause.to_string().starts_with("Director"))
            && pending(&cfg).len() == n as usize
    })
    .await;
    wait_until("every notice sent", WAIT, || {
        let ids = notices(&stack);
        let mut unique = ids.clone();
        unique.sort();
        unique.dedup();
        unique.len() == n as usize
    })
    .await;
    daemon.kill();
    let ids = notices(&stack);
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), n as usize, "every step's notice, none lost");
    assert!(
        ids.len() - unique.len() <= 4,
        "a re-send after the kill is one per SMTP connection at most: {} extra",
        ids.len() - unique.len()
    );
    let st = Store::open_read_only_at(&cfg.database).unwrap();
    for t in 1..=n {
        let fired = st
            .ticket_events(TicketId(t))
            .unwrap()
            .into_iter()
            .filter(|(k, d)| k == "timer_fired" && d.contains("Director"))
            .count();
        assert_eq!(fired, 1, "ticket {t}: the step fired once");
    }
    eprintln!(
        "killed after {fired_before} notices; {} sent in all, {} distinct",
        ids.len(),
        unique.len()
    );
}

/// `ticketd timers --json` for the config at `config`.
fn timers_json(config: &std::path::Path) -> Result<serde_json::Value, String> {
    let out = crate::harness::ticketd_command()
        .args(["timers", "--json", "--config"])
        .arg(config)
        .output()
        .expect("run ticketd");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(serde_json::from_slice(&out.stdout).expect("JSON"))
}

#[test]
fn issue_21_a_database_with_timers_keyed_by_text_migrates_in_place_and_lists_the_same_timers() {
    use ticketd::model::{SlaClock, SlaTarget, TimerCause, TimerState};
    let d = tempfile::tempdir().unwrap();
    let config = d.path().join("ticketd.toml");
    std::fs::write(&config, crate::cli::config_text(d.path(), "netex")).unwrap();
    std::fs::write(d.path().join("pw"), "secret\n").unwrap();
    let db = d.path().join("t.db");
    // Schema 10, with rows as the code before typed timers wrote them.
    let old = rusqlite::Connection::open(&db).unwrap();
    old.execute_batch(include_str!("../fixtures/timers/v10.sql"))
        .unwrap();
    // What `ticketd timers --json` listed then: the pending timers due
    // before the year 9999 (a paused one was due then), earliest first.
    let zone: chrono_tz::Tz = "America/Chicago".parse().unwrap();
    let before: Vec<serde_json::Value> = old
        .prepare(
            "SELECT ticket_id, kind, key, due_at, rule, recipient FROM timers
             WHERE state = 'pending' AND due_at <= '9999' ORDER BY due_at, id",
        )
        .unwrap()
        .query_map([], |r| {
            Ok(serde_json::json!({
                "ticket": r.get::<_, i64>(0)?,
                "kind": r.get::<_, String>(1)?,
                "key": r.get::<_, String>(2)?,
                "at": ticketd::policy::rfc3339(zone, at(&r.get::<_, String>(3)?)),
                "rule": r.get::<_, String>(4)?,
                "to": r.get::<_, Option<String>>(5)?,
            }))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    drop(old);
    assert_eq!(before.len(), 8, "{before:#?}");
    let refused = timers_json(&config).unwrap_err();
    assert!(refused.contains("older than this ticketd"), "{refused}");

    // Opening it for writing migrates it, in place.
    drop(Store::open(&db).unwrap());
    let after = timers_json(&config).unwrap();
    assert_eq!(after, serde_json::Value::Array(before));

    // The causes are typed now, and the paused timers are paused.
    let st = Store::open_read_only(&db).unwrap();
    let timers = |id: i64| st.ticket(TicketId(id)).unwrap().unwrap().timers;
    let waiting = timers(2);
    let find = |kind: TimerKind| waiting.iter().find(|t| t.kind == kind).unwrap();
    let business = TimerCause::Sla {
        target: SlaTarget::FirstResponse,
        clock: SlaClock::Business,
    };
    assert_eq!(find(TimerKind::SlaBreach).cause, business);
    assert_eq!(
        find(TimerKind::SlaBreach).state,
        TimerState::Paused { left_secs: 7200 }
    );
    assert_eq!(
        find(TimerKind::SlaWarning).state,
        TimerState::Paused { left_secs: 3600 }
    );
    assert_eq!(
        find(TimerKind::CustomerReminder).cause,
        TimerCause::Waiting {
            since: at("2026-11-20T16:00:00Z"),
            missing: vec!["the product version".into(), "the operating system".into()],
        }
    );
    assert_eq!(
        find(TimerKind::CustomerReminder).state,
        TimerState::Running {
            due: at("2026-11-25T16:00:00Z")
        }
    );
    assert_eq!(waiting.len(), 4, "the cancelled reminder stays ended");
    let ladder: Vec<TimerCause> = timers(1)
        .into_iter()
        .filter(|t| t.kind == TimerKind::Escalation)
        .map(|t| t.cause)
        .collect();
    assert_eq!(
        ladder,
        [
            TimerCause::Escalation {
                to: "Director of Customer Services".into(),
                after: Some("8h".into())
            },
            TimerCause::Escalation {
                to: "President and General Manager".into(),
                after: Some("24h".into())
            },
        ]
    );
    let rma: Vec<(TimerKind, TimerCause)> =
        timers(3).into_iter().map(|t| (t.kind, t.cause)).collect();
    assert_eq!(
        rma,
        [
            (
                TimerKind::RmaIssueDue,
                TimerCause::RmaIssue {
                    part: String::new()
                }
            ),
            (
                TimerKind::RmaReminder,
                TimerCause::RmaDeadline {
                    deadline: "rma_valid".into(),
                    part: "A1-12345".into()
                }
            ),
            (
                TimerKind::RmaDeadline,
                TimerCause::RmaDeadline {
                    deadline: "rma_valid".into(),
                    part: "A1-12345".into()
                }
            ),
        ],
        "the timers cancelled while paused or not stay ended"
    );
    // A migrated paused timer resumes like one paused now.
    drop(st);
    let mut st = Store::open(&db).unwrap();
    let resume = ticketd::model::TicketChange::<ticketd::model::NewMail> {
        timer_updates: vec![ticketd::model::TimerUpdate::Resume {
            kind: TimerKind::SlaBreach,
            cause: business,
            due: at("2026-11-30T17:00:00Z"),
        }],
        ..Default::default()
    };
    st.apply_change(TicketId(2), &resume, at("2026-11-30T15:00:00Z"))
        .unwrap();
    let due: Vec<_> = st
        .pending_timers(Some(at("2026-11-30T17:00:00Z")), 100)
        .unwrap()
        .into_iter()
        .filter(|t| t.ticket == TicketId(2))
        .map(|t| (t.plan.kind, t.plan.due))
        .collect();
    assert_eq!(
        due,
        [
            (TimerKind::CustomerReminder, at("2026-11-25T16:00:00Z")),
            (TimerKind::SlaBreach, at("2026-11-30T17:00:00Z")),
        ]
    );
}
