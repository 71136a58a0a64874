//! Intake's slices: a slice's messages are written without a savepoint each, and when one of them fails the slice is written again a message at a time, so that the failing one is quarantined alone and nothing is written twice.

use chrono::{DateTime, Utc};
use std::path::Path;
use ticketd::clock::FixedClock;
use ticketd::config::Config;
use ticketd::intake::{Engine, Fetched};
use ticketd::model::Outcome;
use ticketd::store::Store;

fn at() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-03-02T17:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn sub(dir: &Path, name: &str) -> std::path::PathBuf {
    let d = dir.join(name);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// A config of the ixsystems pack; with `broken`, the shipped templates
/// with that one calling a helper that does not exist: it loads, and
/// fails when rendered.
fn config(dir: &Path, broken: Option<&str>) -> Config {
    std::fs::write(dir.join("pw"), "secret\n").unwrap();
    let mut text = crate::cli::config_text(dir, "ixsystems");
    if let Some(name) = broken {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        let templates = dir.join("templates");
        copy_dir(&repo.join("templates"), &templates);
        let path = templates.join(name);
        let t = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, format!("{t}{{{{no_such_helper customer}}}}\n")).unwrap();
        text = text.replace(
            &format!("templates = \"{}/templates\"", repo.display()),
            &format!("templates = \"{}\"", templates.display()),
        );
        assert!(text.contains(&templates.display().to_string()));
    }
    let path = dir.join("ticketd.toml");
    std::fs::write(&path, text).unwrap();
    Config::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

fn mail(uid: u32, from: &str, subject: &str, body: &str) -> Fetched {
    let raw = format!(
        "From: {from}\r\nTo: support@vendor.test\r\nSubject: {subject}\r\nMessage-ID: <m{uid}@customer.test>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    )
    .into_bytes();
    Fetched {
        uidvalidity: 1,
        uid,
        size: raw.len() as u64,
        raw,
        arrival: at(),
    }
}

/// Reads `mails` ahead, as the watcher does, and ingests them as one slice.
fn ingest(
    engine: &Engine,
    store: &mut Store,
    cfg: &Config,
    mails: Vec<Fetched>,
) -> Vec<(u32, Outcome)> {
    let clock = FixedClock::new(at());
    let read: Vec<_> = mails
        .into_iter()
        .map(|f| {
            let ahead = engine.read_fetched(&f, &clock);
            (f, ahead)
        })
        .collect();
    let (stored, stopped) = engine
        .ingest_slice(store, &cfg.mailboxes[0], read, &clock, None)
        .unwrap();
    assert!(stopped.is_none(), "{stopped:?}");
    stored.iter().map(|r| (r.uid, r.outcome)).collect()
}

fn follow_up(uid: u32, from: &str, parent: u32) -> Fetched {
    let mut f = mail(
        uid,
        from,
        "Re: our request",
        "Any news on this? It is still the same.",
    );
    let head = format!("References: <m{parent}@customer.test>\r\n");
    f.raw.splice(0..0, head.into_bytes());
    f.size = f.raw.len() as u64;
    f
}

#[test]
fn issue_24_a_message_that_fails_in_a_slice_is_quarantined_alone_and_the_others_are_written_once() {
    let d = tempfile::tempdir().unwrap();
    let mut store = Store::in_memory().unwrap();
    let shipped = config(&sub(d.path(), "shipped"), None);
    let engine = Engine::from_config(&shipped).unwrap();
    let opened = ingest(
        &engine,
        &mut store,
        &shipped,
        vec![
            mail(
                1,
                "Ann <ann@customer.test>",
                "Pool degraded",
                "The pool is degraded since this morning, two disks show errors.",
            ),
            mail(
                2,
                "Bob <bob@customer.test>",
                "Backup fails",
                "Our nightly backup job fails with a timeout since the last update.",
            ),
        ],
    );
    assert_eq!(opened, [(1, Outcome::Processed), (2, Outcome::Processed)]);
    // Acknowledging a new request now fails; a follow-up's receipt does not.
    let broken = config(&sub(d.path(), "broken"), Some("en/ack_new.hbs"));
    let engine = Engine::from_config(&broken).unwrap();
    let outcomes = ingest(
        &engine,
        &mut store,
        &broken,
        vec![
            follow_up(3, "Ann <ann@customer.test>", 1),
            mail(
                4,
                "Carol <carol@customer.test>",
                "Fan noise",
                "One of the fans of the unit makes a loud noise since yesterday.",
            ),
            follow_up(5, "Bob <bob@customer.test>", 2),
        ],
    );
    assert_eq!(
        outcomes,
        [
            (3, Outcome::Processed),
            (4, Outcome::Quarantined),
            (5, Outcome::Processed)
        ]
    );
    // Carol's mail is set aside with the reason, and nothing it began to
    // write is kept: no ticket, no acknowledgement.
    let q = store.quarantined().unwrap();
    assert_eq!(q.len(), 1, "{q:?}");
    assert_eq!(q[0].uid, 4);
    let reason = q[0].reason.clone().unwrap_or_default();
    assert!(
        reason.contains("processing failed") && reason.contains("no_such_helper"),
        "{reason}"
    );
    assert_eq!(store.tickets().unwrap().len(), 2);
    // Each message once, and the follow-ups on their tickets.
    assert_eq!(
        store.message_outcomes().unwrap(),
        [("processed".to_string(), 4), ("quarantined".to_string(), 1)]
    );
    let out = store.outbox(None).unwrap();
    let kinds = |who: &str| -> Vec<String> {
        let mut k: Vec<String> = out
            .iter()
            .filter(|r| r.rcpt_to == [who])
            .map(|r| r.kind.clone())
            .collect();
        k.sort();
        k
    };
    for who in ["ann@customer.test", "bob@customer.test"] {
        assert_eq!(kinds(who), ["ack_followup", "ack_new"], "{who}");
    }
    assert!(kinds("carol@customer.test").is_empty());
}

#[test]
fn issue_24_a_slice_without_failures_is_written_as_read() {
    let d = tempfile::tempdir().unwrap();
    let cfg = config(d.path(), None);
    let engine = Engine::from_config(&cfg).unwrap();
    let mut store = Store::in_memory().unwrap();
    let mails = (1..=3)
        .map(|uid| {
            mail(
                uid,
                &format!("C{uid} <c{uid}@customer.test>"),
                &format!("Disk {uid} failed"),
                "A disk of the pool failed this morning and the pool is degraded now.",
            )
        })
        .collect();
    let outcomes = ingest(&engine, &mut store, &cfg, mails);
    assert!(outcomes.iter().all(|(_, o)| *o == Outcome::Processed));
    assert_eq!(store.tickets().unwrap().len(), 3);
    assert!(store.quarantined().unwrap().is_empty());
}
