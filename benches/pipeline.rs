//! `cargo bench --bench pipeline`: the CPU cost of each intake stage per message, in process, over a generated corpus.
//!
//! No servers are involved: this isolates what ticketd itself spends on a
//! message (parse, classify, extract, the plan with its database reads, the
//! rendering of replies, and the whole ingest with its commit per batch), so a
//! change can be judged before `scripts/bench` measures it end to end.
//!
//!   cargo bench --bench pipeline [-- --corpus DIR] [-- --count N]
//!
//! `cargo test --all-targets` runs it too, without `--bench`: then it takes
//! 100 messages, as a check that every stage still runs.

use anyhow::{Context, Result, anyhow, bail};
use chrono::{TimeZone, Utc};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;
use ticketd::classify::classify_message;
use ticketd::clock::{Clock, SystemClock};
use ticketd::config::Config;
use ticketd::extract::extract;
use ticketd::intake::{Engine, Fetched, mailbox_view};
use ticketd::parse::parse;
use ticketd::store::Store;

fn main() -> Result<()> {
    let mut corpus: Option<PathBuf> = None;
    let mut count = None;
    let mut bench = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--corpus" => corpus = Some(args.next().context("--corpus DIR")?.into()),
            "--count" => count = Some(args.next().context("--count N")?.parse()?),
            "--bench" => bench = true,
            other => bail!("unknown argument {other}"),
        }
    }
    let count = count.unwrap_or(if bench { 5000 } else { 100 });
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let corpus = match corpus {
        Some(c) => c,
        None => generated(&repo, count)?,
    };
    let mails = read_corpus(&corpus)?;
    let work = tempfile::tempdir()?;
    let cfg = config(&repo, work.path())?;
    let engine = Engine::from_config(&cfg)?;
    let mailbox = &cfg.mailboxes[0];
    let n = mails.len();
    let arrival = Utc
        .with_ymd_and_hms(2026, 3, 2, 9, 0, 0)
        .single()
        .context("date")?;
    println!("pipeline: {n} messages from {}", corpus.display());

    let stage = |name: &str, f: &mut dyn FnMut()| {
        let t = Instant::now();
        f();
        let us = t.elapsed().as_secs_f64() * 1e6 / n as f64;
        println!("| {name} | {us:.1} µs/msg |");
    };
    println!("| stage | cost |\n| --- | --- |");
    let mut parsed = Vec::with_capacity(n);
    stage("parse", &mut || {
        parsed = mails.iter().map(|m| parse(m, arrival)).collect();
    });
    stage("classify", &mut || {
        for (raw, p) in mails.iter().zip(&parsed) {
            std::hint::black_box(classify_message(raw, p, &engine.identity));
        }
    });
    stage("extract", &mut || {
        for p in &parsed {
            std::hint::black_box(extract(p, &engine.pack.patterns, &engine.ticket_prefix));
        }
    });
    let store = Store::open(&work.path().join("plan.db"))?;
    let now = SystemClock.now();
    let mut plans = Vec::with_capacity(n);
    let mut failed = None;
    stage("plan (parse … decide, empty database)", &mut || {
        for raw in &mails {
            match engine.plan(&store, mailbox_view(mailbox), raw, arrival, now) {
                Ok(p) => plans.push(p),
                Err(e) => failed = Some(e),
            }
        }
    });
    if let Some(e) = failed.take() {
        return Err(e);
    }
    stage("render replies", &mut || {
        for p in &plans {
            if let Err(e) = engine.render(p, Some(ticketd::model::TicketId(1)), None, now) {
                failed = Some(e);
            }
        }
    });
    if let Some(e) = failed.take() {
        return Err(e);
    }
    let mut store = Store::open(&work.path().join("ingest.db"))?;
    let batch = mailbox.batch_size as usize;
    stage(
        &format!("ingest (all of it, one commit per {batch})"),
        &mut || {
            for (b, chunk) in mails.chunks(batch).enumerate() {
                let r = store.in_batch(|st| {
                    for (i, raw) in chunk.iter().enumerate() {
                        let f = Fetched {
                            uidvalidity: 1,
                            uid: (b * batch + i + 1) as u32,
                            raw: raw.clone(),
                            size: raw.len() as u64,
                            arrival,
                        };
                        engine.ingest(st, mailbox, &f, &SystemClock)?;
                    }
                    Ok(())
                });
                if let Err(e) = r {
                    failed = Some(e);
                    return;
                }
            }
        },
    );
    if let Some(e) = failed {
        return Err(e);
    }
    Ok(())
}

fn generated(repo: &Path, count: usize) -> Result<PathBuf> {
    let dir = PathBuf::from(format!("/tmp/ticketd-corpus-{count}-1"));
    if dir.join("manifest.tsv").exists() {
        return Ok(dir);
    }
    let generator = repo.join("../shared/bench/gen-corpus");
    let ok = Command::new(&generator)
        .args(["--count", &count.to_string(), "--seed", "1", "--out"])
        .arg(&dir)
        .stdout(std::process::Stdio::null())
        .status()
        .with_context(|| format!("running {}", generator.display()))?
        .success();
    if !ok {
        bail!("{} failed", generator.display());
    }
    Ok(dir)
}

fn read_corpus(dir: &Path) -> Result<Vec<Vec<u8>>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(anyhow!("no .eml files in {}", dir.display()));
    }
    files
        .iter()
        .map(|p| std::fs::read(p).with_context(|| format!("reading {}", p.display())))
        .collect()
}

/// The shipped development config (`config/dev.toml`), with the database and
/// the password file in `dir` and the qnap pack, as `scripts/bench` runs it.
fn config(repo: &Path, dir: &Path) -> Result<Config> {
    let pw = dir.join("pw");
    std::fs::write(&pw, "secret\n")?;
    let dev = repo.join("config/dev.toml");
    let text = std::fs::read_to_string(&dev)
        .with_context(|| format!("reading {}", dev.display()))?
        .replace(
            "/tmp/ticketd-demo/ticketd.db",
            &dir.join("ticketd.db").display().to_string(),
        )
        .replace("/tmp/ticketd-demo/imap-password", &pw.display().to_string())
        .replace("pack = \"ixsystems\"", "pack = \"qnap\"");
    Config::from_str_at(&dev, &text).map_err(|e| anyhow!("{e}"))
}
