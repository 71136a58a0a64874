//! The store on PostgreSQL end to end: a private PostgreSQL beside the private mail stack, the daemon's intake and outbox on it, the run lock, the schema check, and the configuration of a PostgreSQL store.

use crate::harness::{MailStack, mail};
use crate::kit::postgres::Postgres;
use std::sync::Arc;
use std::time::Duration;
use ticketd::clock::{SharedClock, SystemClock};
use ticketd::config::Config;
use ticketd::parse::parse;
use ticketd::store::{Fence, LeaseLost, Location, Store, off_async};

fn clock() -> SharedClock {
    Arc::new(SystemClock)
}

/// A config of `stack` whose store is database `name` of `pg`.
fn pg_config(stack: &MailStack, pg: &Postgres, name: &str) -> Config {
    let location = off_async(|| Ok(pg.fresh(name))).unwrap();
    let Location::Postgres(target) = &location else {
        unreachable!()
    };
    let password = stack.dir.join("pg-password");
    std::fs::write(&password, "secret\n").unwrap();
    let url = target.url.clone();
    let cfg = stack.config(|c| {
        c.database = url.clone().into();
        c.daemon_extra = format!("database_password_file = \"{}\"", password.display());
        c.mailboxes = vec![("support", "support"), ("rma", "rma")];
    });
    assert_eq!(cfg.database, location, "the config names the database");
    cfg
}

/// Reads the store (on a thread of its own: the client blocks).
fn read<T: Send>(cfg: &Config, f: impl FnOnce(&Store) -> T + Send) -> T {
    off_async(|| Ok(f(&Store::open_read_only_at(&cfg.database)?))).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_22_intake_and_outbox_run_on_postgresql_and_a_follow_up_finds_its_ticket() {
    let pg = Postgres::start();
    let stack = MailStack::start();
    let cfg = pg_config(&stack, &pg, "intake");
    stack
        .deliver(&mail(
            "Ann Customer <ann@example.net>",
            "support@vendor.test",
            "Pool degraded",
            "a1@example.net",
            "",
            "Serial: A1-12345\nMy pool is degraded.",
        ))
        .await;
    ticketd::daemon::run_once(cfg.clone(), clock())
        .await
        .expect("run --once on PostgreSQL");
    let tickets = read(&cfg, |st| st.tickets().unwrap());
    assert_eq!(tickets.len(), 1);
    assert_eq!(tickets[0].requester, "ann@example.net");
    let id = tickets[0].id;

    // A tagged reply in another mailbox lands on the same ticket.
    stack
        .append(
            "rma@vendor.test",
            "INBOX",
            &mail(
                "ann@example.net",
                "rma@vendor.test",
                &format!("RE: Pool degraded [TKT#{id}]"),
                "a2@example.net",
                "",
                "The disk is dead, I need a replacement.",
            ),
            "02-Mar-2026 10:00:00 -0800",
        )
        .await;
    ticketd::daemon::run_once(cfg.clone(), clock())
        .await
        .expect("a second run on PostgreSQL");
    let (tickets, outbox, history) = read(&cfg, |st| {
        (
            st.tickets().unwrap(),
            st.outbox(None).unwrap(),
            st.ticket_events(id).unwrap(),
        )
    });
    assert_eq!(tickets.len(), 1, "one ticket for the thread");
    assert_eq!(tickets[0].messages, 2);
    let kinds: Vec<&str> = outbox.iter().map(|r| r.kind.as_str()).collect();
    assert_eq!(kinds, ["ack_new", "ack_followup"]);
    assert!(outbox.iter().all(|r| r.status == "sent"), "{outbox:?}");
    assert!(history.len() >= 4, "the history is kept: {history:?}");
    let sent = stack.sink_messages();
    assert_eq!(sent.len(), 2, "both answered, once each");
    let ack = parse(&sent[0], chrono::DateTime::UNIX_EPOCH);
    assert_eq!(ack.subject, format!("Re: Pool degraded [TKT#{id}]"));
    assert_eq!(stack.count("support@vendor.test", "Processed").await, 1);
    assert_eq!(stack.count("rma@vendor.test", "Processed").await, 1);

    // The commands read the same store: listings and the config check.
    let config = cfg.path.to_str().unwrap();
    let listed: serde_json::Value =
        serde_json::from_str(&cli(&["tickets", "--json", "--config", config])).unwrap();
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{listed}");
    // The run --once was a node of its own, and handed its leases back.
    let nodes: serde_json::Value =
        serde_json::from_str(&cli(&["nodes", "--json", "--config", config])).unwrap();
    let leases = nodes["leases"].as_array().unwrap();
    assert_eq!(leases.len(), 2, "{nodes}");
    assert!(leases.iter().all(|l| l["live"] == false), "{nodes}");
    assert!(
        nodes["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["live"] == false && n["node"].as_str().unwrap().contains(".once.")),
        "{nodes}"
    );
    let text = cli(&["check-config", cfg.path.to_str().unwrap()]);
    assert!(
        text.contains("PostgreSQL 1") && text.contains("(current)"),
        "check-config names the server and the schema: {text}"
    );
    assert!(!text.contains("secret"), "no password shown: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_22_a_mailbox_lease_is_one_node_s_and_a_takeover_fences_the_old_holder() {
    let pg = Postgres::start();
    let location = off_async(|| Ok(pg.fresh("leases"))).unwrap();
    let mut a = Store::open_at(&location).unwrap();
    let mut b = Store::open_at(&location).unwrap();
    assert!(a.renew_node("a", "a1", 1, 30.0).unwrap());
    assert!(b.renew_node("b", "b1", 2, 30.0).unwrap());
    assert_eq!(a.live_nodes().unwrap(), 2);
    // A second live process may not take a's name.
    assert!(
        !b.renew_node("a", "a2", 3, 30.0).unwrap(),
        "a's name is a1's while it lives"
    );
    // A lease of a second: a holds it, b cannot take it meanwhile.
    let ea = a.acquire_lease("support", "a", 1.0).unwrap().expect("free");
    assert_eq!(
        b.acquire_lease("support", "b", 1.0).unwrap(),
        None,
        "held by a"
    );
    let fa = Fence {
        node: "a".into(),
        epoch: ea,
    };
    a.in_batch(|st| st.check_fence("support", &fa))
        .expect("a commits");
    let gauges = a.gauges(chrono::DateTime::UNIX_EPOCH).unwrap();
    assert_eq!(
        gauges.writers_waiting, 0,
        "the scrape's figures read on PostgreSQL"
    );
    // a stops renewing (paused, cut off): once the lease ends, b takes it
    // with a new epoch, and a's late commit is refused.
    let mut eb = None;
    crate::harness::wait_until(
        "b to take the lease once a's ends",
        Duration::from_secs(10),
        || {
            eb = b.acquire_lease("support", "b", 30.0).unwrap();
            eb.is_some()
        },
    )
    .await;
    let eb = eb.unwrap();
    assert!(eb > ea, "a new epoch: {eb} after {ea}");
    assert!(
        !a.renew_lease("support", &fa, 30.0).unwrap(),
        "a's lease is gone"
    );
    let late = a
        .in_batch(|st| st.check_fence("support", &fa))
        .expect_err("a's late commit is refused");
    assert!(late.downcast_ref::<LeaseLost>().is_some(), "{late:#}");
    // b hands it back at a stop: a takes it at once.
    b.leave("b", "b1").unwrap();
    assert!(a.acquire_lease("support", "a", 30.0).unwrap().is_some());
    let (nodes, leases) = a.cluster().unwrap();
    assert_eq!(nodes.iter().filter(|n| n.live).count(), 1, "{nodes:?}");
    assert_eq!(leases[0].holder.as_deref(), Some("a"));
    assert_eq!(
        leases[0].takeovers, 1,
        "b took it from a; a took it back free"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_22_a_build_older_than_the_postgresql_schema_refuses_to_start() {
    let pg = Postgres::start();
    let location = off_async(|| Ok(pg.fresh("older"))).unwrap();
    let err = off_async(|| {
        let st = Store::open_at(&location)?;
        let newer = st.known_schema() as i64 + 1;
        drop(st);
        let mut admin = postgres::Config::new()
            .host("127.0.0.1")
            .port(pg.port)
            .user("postgres")
            .password("secret")
            .dbname("older")
            .connect(postgres::NoTls)?;
        admin.execute("UPDATE ticketd_schema SET version = $1", &[&newer])?;
        Ok(Store::open_at(&location).map(|_| ()).unwrap_err())
    })
    .unwrap();
    let text = format!("{err:#}");
    assert!(
        text.contains("is newer than this ticketd") && text.contains("needs a ticketd of schema"),
        "{text}"
    );
}

#[test]
fn issue_22_a_password_in_the_database_url_is_refused_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let stack_like = crate::kit::offline::dev_config_file(dir.path(), "ixsystems", "");
    let path = stack_like.path.clone();
    let text = std::fs::read_to_string(&path).unwrap();
    let line = text
        .lines()
        .position(|l| l.starts_with("database"))
        .expect("a database line")
        + 1;
    let changed: String = text
        .lines()
        .map(|l| {
            if l.starts_with("database") {
                "database = \"postgres://ticketd:hunter2@127.0.0.1/ticketd\"".to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&path, changed).unwrap();
    let problems = Config::load(&path).expect_err("a password in the URL is refused");
    let shown = problems.to_string();
    assert!(
        shown.contains(&format!(":{line}:")) && shown.contains("database_password_file"),
        "{shown}"
    );
    assert!(
        !shown.contains("hunter2"),
        "the password is not repeated: {shown}"
    );
}

#[test]
fn issue_22_a_store_connects_again_when_postgresql_restarts() {
    let pg = Postgres::start();
    let st = pg.fresh_store("restart");
    assert!(st.tickets().unwrap().is_empty());
    pg.restart();
    // The statement that meets the closed session fails; the next one opens
    // a new session and goes on.
    let tries: Vec<bool> = (0..3).map(|_| st.tickets().is_ok()).collect();
    assert!(
        tries[1] && tries[2],
        "connected again after the restart: {tries:?}"
    );
}

/// `ticketd` with `args`; its standard output, failing the test otherwise.
fn cli(args: &[&str]) -> String {
    let out = crate::harness::ticketd_command()
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ticketd {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// What the listings show of a store: every ticket, and each one's history.
fn listings(cfg: &Config) -> Vec<serde_json::Value> {
    let config = cfg.path.to_str().unwrap();
    let tickets: serde_json::Value =
        serde_json::from_str(&cli(&["tickets", "--json", "--config", config])).unwrap();
    let mut all = vec![tickets.clone()];
    for t in tickets.as_array().unwrap() {
        let id = t["id"].to_string();
        all.push(
            serde_json::from_str(&cli(&["ticket", &id, "--json", "--config", config])).unwrap(),
        );
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_22_store_copy_moves_a_sqlite_store_to_postgresql_and_back_with_the_same_listings() {
    let pg = Postgres::start();
    let stack = MailStack::start();
    let cfg = stack.config(|c| c.mailboxes = vec![("support", "support"), ("rma", "rma")]);
    for (from, subject, id, headers, body) in [
        (
            "ann@example.net",
            "Pool degraded",
            "c1@example.net",
            "",
            "Serial: A1-12345\nMy pool is degraded.",
        ),
        (
            "bob@example.org",
            "Disk failed",
            "c2@example.org",
            "",
            "The disk in bay 3 failed, please replace it.",
        ),
        (
            "ann@example.net",
            "more logs",
            "c3@example.net",
            "In-Reply-To: <c1@example.net>\r\nReferences: <c1@example.net>\r\n",
            "Here are the logs.",
        ),
    ] {
        stack
            .deliver(&mail(
                from,
                "support@vendor.test",
                subject,
                id,
                headers,
                body,
            ))
            .await;
    }
    ticketd::daemon::run_once(cfg.clone(), clock())
        .await
        .unwrap();
    let before = listings(&cfg);
    assert_eq!(before[0].as_array().map(Vec::len), Some(2), "{}", before[0]);

    // SQLite → PostgreSQL.
    let target = off_async(|| Ok(pg.fresh("copied"))).unwrap();
    let Location::Postgres(t) = &target else {
        unreachable!()
    };
    let password = stack.dir.join("pg-password");
    std::fs::write(&password, "secret\n").unwrap();
    let sqlite = cfg
        .database
        .sqlite_path()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let pw = password.to_str().unwrap();
    let copied = cli(&[
        "store",
        "copy",
        "--from",
        &sqlite,
        "--to",
        &t.url,
        "--to-password-file",
        pw,
    ]);
    assert!(copied.contains("every table's count matches"), "{copied}");
    let url = t.url.clone();
    let on_pg = stack.config(|c| {
        c.file = "pg.toml".into();
        c.database = url.clone().into();
        c.daemon_extra = format!("database_password_file = \"{pw}\"");
        c.mailboxes = vec![("support", "support"), ("rma", "rma")];
    });
    assert_eq!(listings(&on_pg), before, "the same listings on PostgreSQL");
    // A copy into a store that is not empty is refused.
    let again = crate::harness::ticketd_command()
        .args([
            "store",
            "copy",
            "--from",
            &sqlite,
            "--to",
            &t.url,
            "--to-password-file",
            pw,
        ])
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"));

    // PostgreSQL → a new SQLite file.
    let back = stack.dir.join("back.db");
    let back_s = back.to_str().unwrap().to_string();
    cli(&[
        "store",
        "copy",
        "--from",
        &t.url,
        "--from-password-file",
        pw,
        "--to",
        &back_s,
    ]);
    let on_back = stack.config(|c| {
        c.file = "back.toml".into();
        c.database = back.clone();
        c.mailboxes = vec![("support", "support"), ("rma", "rma")];
    });
    assert_eq!(
        listings(&on_back),
        before,
        "the same listings back on SQLite"
    );

    // New tickets on the copy are numbered after the copied ones.
    stack
        .deliver(&mail(
            "cy@example.com",
            "support@vendor.test",
            "New one",
            "c4@example.com",
            "",
            "Hello",
        ))
        .await;
    ticketd::daemon::run_once(on_pg.clone(), clock())
        .await
        .unwrap();
    let ids: Vec<i64> = read(&on_pg, |st| {
        st.tickets().unwrap().iter().map(|t| t.id.0).collect()
    });
    assert_eq!(ids.len(), 3);
    assert!(
        ids.iter().max()
            > before[0]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["id"].as_i64().unwrap())
                .max()
                .as_ref()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_22_the_store_reaches_postgresql_over_tls_checked_against_its_ca_file() {
    let ca = crate::harness::TestCa::new("db");
    let cert = ca.issue("localhost", 2020, 2100);
    let pg = Postgres::start_tls(&cert.cert_pem, &cert.key_pem);
    let db = off_async(|| Ok(pg.fresh("tls"))).unwrap();
    let Location::Postgres(t) = db else {
        unreachable!()
    };
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    // By name, TLS required, the certificate checked against the CA file.
    let url = format!(
        "postgres://postgres@localhost:{}/tls?sslmode=require",
        pg.port
    );
    let with_ca = ticketd::store::PgTarget::parse(&url, Some("secret".into()))
        .unwrap()
        .with_ca_file(Some(ca_file.clone()));
    let st = off_async(|| Store::open_at(&Location::Postgres(with_ca.clone()))).unwrap();
    assert!(st.over_tls().unwrap(), "the session is encrypted");
    drop(st);
    // The system's CAs do not know this one: refused, saying why.
    let without = ticketd::store::PgTarget::parse(&url, Some("secret".into())).unwrap();
    let refused = off_async(|| {
        Ok(Store::open_at(&Location::Postgres(without.clone()))
            .map(|_| ())
            .unwrap_err())
    })
    .unwrap();
    let why = format!("{refused:#}");
    assert!(why.contains("certificate"), "{why}");
    // And the daemon's config takes the CA file.
    let _ = t;
    let stack_dir = tempfile::tempdir().unwrap();
    let password = stack_dir.path().join("pw");
    std::fs::write(&password, "secret\n").unwrap();
    let cfg = crate::kit::offline::dev_config_file(stack_dir.path(), "ixsystems", "");
    let text = std::fs::read_to_string(&cfg.path).unwrap();
    let text = text.replacen(
        &text
            .lines()
            .find(|l| l.starts_with("database"))
            .unwrap()
            .to_string(),
        &format!(
            "database = \"{url}\"\ndatabase_password_file = \"{}\"\ndatabase_ca_file = \"{}\"",
            password.display(),
            ca_file.display()
        ),
        1,
    );
    std::fs::write(&cfg.path, text).unwrap();
    let shown = cli(&["check-config", cfg.path.to_str().unwrap()]);
    assert!(shown.contains("over TLS"), "{shown}");
}

#[test]
fn issue_22_daemons_starting_together_migrate_a_new_database_once() {
    let pg = Postgres::start();
    let location = pg.fresh("together");
    // Four starts at the same moment: each waits for the migration lock,
    // one migrates, the others find the schema current.
    let versions: Vec<(usize, usize)> = std::thread::scope(|s| {
        let opens: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    let st = Store::open_at(&location).expect("a start on a new database");
                    (st.schema_version().unwrap(), st.known_schema())
                })
            })
            .collect();
        opens.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(
        versions.iter().all(|(have, known)| have == known),
        "{versions:?}"
    );
}
