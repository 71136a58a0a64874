//! `cargo bench --bench pipeline`: the CPU cost of each intake stage per message, in process, over a generated corpus.
//!
//! No servers are involved: this isolates what ticketd itself spends on a
//! message (parse, classify, extract, the plan with its database reads, the
//! rendering of replies, and the whole ingest with its commit per batch), so a
//! change can be judged before `scripts/bench` measures it end to end.
//!
//!   cargo bench --bench pipeline [-- --corpus DIR] [-- --count N] [-- --seed S]
//!
//! Without `--corpus` the mail comes from the test kit's load generator
//! (tests/kit/loadgen.rs), in process. `cargo test --all-targets` runs it
//! too, without `--bench`: then it takes 100 messages, as a check that every
//! stage still runs.

#[path = "../tests/kit/mod.rs"]
mod kit;

use anyhow::{Context, Result, anyhow, bail};
use chrono::{TimeZone, Utc};
use std::path::{Path, PathBuf};
use std::time::Instant;
use ticketd::classify::classify_message;
use ticketd::clock::{Clock, SystemClock};
use ticketd::extract::extract;
use ticketd::intake::{Engine, Fetched, mailbox_view};
use ticketd::parse::parse;
use ticketd::store::Store;

fn main() -> Result<()> {
    let mut corpus: Option<PathBuf> = None;
    let mut count = None;
    let mut seed = 1;
    let mut bench = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--corpus" => corpus = Some(args.next().context("--corpus DIR")?.into()),
            "--count" => count = Some(args.next().context("--count N")?.parse()?),
            "--seed" => seed = args.next().context("--seed S")?.parse()?,
            "--bench" => bench = true,
            other => bail!("unknown argument {other}"),
        }
    }
    let count = count.unwrap_or(if bench { 5000 } else { 100 });
    let (mails, source) = match corpus {
        Some(c) => (read_corpus(&c)?, c.display().to_string()),
        None => {
            let opts = kit::loadgen::Options {
                count,
                seed,
                ..kit::loadgen::Options::default()
            };
            let mails = kit::loadgen::generate(&opts).into_iter().map(|m| m.raw);
            (mails.collect(), format!("the load generator (seed {seed})"))
        }
    };
    let work = tempfile::tempdir()?;
    // The shipped development config with the qnap pack, as scripts/bench runs it.
    let cfg = kit::offline::dev_config(work.path(), "qnap", "");
    let engine = Engine::from_config(&cfg)?;
    let mailbox = &cfg.mailboxes[0];
    let n = mails.len();
    let arrival = Utc
        .with_ymd_and_hms(2026, 3, 2, 9, 0, 0)
        .single()
        .context("date")?;
    println!("pipeline: {n} messages from {source}");

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
        for p in &mut plans {
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
