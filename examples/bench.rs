//! The benchmark behind `scripts/bench`: a corpus through a private Dovecot into the release daemon and out to smtp-sink; throughput, the parts' own limits, latency, memory and pathological mail.
//!
//! The mail stack, the config, `ticketd run` and the corpus come from the
//! test kit (tests/kit), the same code the integration tests run on.

#[path = "../tests/kit/mod.rs"]
mod kit;

use kit::loadgen;
use kit::process::Ticketd;
use kit::stack::{MailStack, Options};
use kit::wait::wait_until;

use anyhow::{Context, Result, anyhow, bail};
use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};
use ticketd::clock::{Clock, SystemClock};
use ticketd::config::Config;
use ticketd::model::{Event, NewMail, Outcome, SideEffects, TicketStatus, TicketWrite};
use ticketd::store::{MessageRow, Origin, Store};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const USAGE: &str = "usage: bench (--corpus DIR | --count N [--seed S]) --ticketd PATH [--json FILE] [--latency-count N] [--latency-rate PER_S] [--perf FILE] [--preload N] [--baseline PATH [--rounds K]] [--store postgres [--daemons N]]
       bench explain-one FILE";

struct Args {
    /// A corpus directory, or none: the load generator's `count` mails of `seed`.
    corpus: Option<PathBuf>,
    count: usize,
    seed: u64,
    ticketd: PathBuf,
    json: Option<PathBuf>,
    latency_count: usize,
    latency_rate: f64,
    perf: Option<PathBuf>,
    /// Stored messages (with their tickets and timers) put in a second
    /// database before a second throughput run.
    preload: usize,
    /// Another build's binary, run alternately with `ticketd` on the same corpus.
    baseline: Option<PathBuf>,
    /// Throughput runs of each build in the comparison.
    rounds: usize,
    /// `--store postgres`: the throughput runs again on a private
    /// PostgreSQL, with one daemon and with `daemons` (and preloaded).
    postgres: bool,
    daemons: usize,
}

fn parse_args() -> Result<Args> {
    let mut a = std::env::args().skip(1);
    let mut corpus = None;
    let mut ticketd = None;
    let mut count = 10_000;
    let mut seed = 1;
    let mut json = None;
    let mut latency_count = 100;
    let mut latency_rate = 1.6;
    let mut perf = None;
    let mut preload = 0;
    let mut baseline = None;
    let mut rounds = 2;
    let mut postgres = false;
    let mut daemons = 2;
    while let Some(k) = a.next() {
        let mut v = || {
            a.next()
                .ok_or_else(|| anyhow!("{k} needs a value\n{USAGE}"))
        };
        match k.as_str() {
            "--corpus" => corpus = Some(PathBuf::from(v()?)),
            "--ticketd" => ticketd = Some(PathBuf::from(v()?)),
            "--count" => count = v()?.parse()?,
            "--seed" => seed = v()?.parse()?,
            "--json" => json = Some(PathBuf::from(v()?)),
            "--latency-count" => latency_count = v()?.parse()?,
            "--latency-rate" => latency_rate = v()?.parse()?,
            "--perf" => perf = Some(PathBuf::from(v()?)),
            "--preload" => preload = v()?.parse()?,
            "--baseline" => baseline = Some(PathBuf::from(v()?)),
            "--rounds" => rounds = v()?.parse::<usize>()?.max(1),
            "--store" => match v()?.as_str() {
                "postgres" => postgres = true,
                "sqlite" => postgres = false,
                other => bail!("--store {other}: sqlite or postgres\n{USAGE}"),
            },
            "--daemons" => daemons = v()?.parse::<usize>()?.max(1),
            _ => bail!("unknown argument {k}\n{USAGE}"),
        }
    }
    Ok(Args {
        corpus,
        count,
        seed,
        ticketd: ticketd.ok_or_else(|| anyhow!("--ticketd is required\n{USAGE}"))?,
        json,
        latency_count,
        latency_rate,
        perf,
        preload,
        baseline,
        rounds,
        postgres,
        daemons,
    })
}

fn main() -> Result<()> {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some("explain-one") {
        let file = argv.get(2).ok_or_else(|| anyhow!("{USAGE}"))?;
        return explain_one(Path::new(file));
    }
    let args = parse_args()?;
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(run(args))
}

// ----- corpus -------------------------------------------------------------------

#[derive(Clone)]
struct Mail {
    raw: Vec<u8>,
    internal_date: String,
    kind: String,
    message_id: Option<String>,
}

fn imap_date(t: DateTime<Utc>) -> String {
    t.format("%d-%b-%Y %H:%M:%S +0000").to_string()
}

/// The corpus of `--corpus DIR` (its manifest's kinds and dates when it
/// has one), or the load generator's.
fn load_corpus(args: &Args) -> Result<(Vec<Mail>, String)> {
    let Some(dir) = &args.corpus else {
        let opts = loadgen::Options {
            count: args.count,
            seed: args.seed,
            ..loadgen::Options::default()
        };
        let mails = loadgen::generate(&opts)
            .into_iter()
            .map(|m| Mail {
                internal_date: m.imap_date(),
                kind: m.kind.as_str().to_string(),
                message_id: Some(format!("<{}>", m.message_id)),
                raw: m.raw,
            })
            .collect();
        return Ok((mails, format!("the load generator (seed {})", args.seed)));
    };
    let meta: HashMap<String, (String, DateTime<Utc>)> = loadgen::read_manifest(dir)
        .map(|rows| {
            rows.into_iter()
                .map(|r| (r.file, (r.kind.as_str().to_string(), r.internal_date)))
                .collect()
        })
        .unwrap_or_default();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read corpus {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    files.sort();
    let mut out = Vec::with_capacity(files.len());
    for f in files {
        let raw = std::fs::read(&f)?;
        let name = f
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        let (kind, t) = meta
            .get(&name)
            .cloned()
            .unwrap_or_else(|| (String::new(), SystemClock.now()));
        out.push(Mail {
            message_id: header_value(&raw, "message-id"),
            raw,
            internal_date: imap_date(t),
            kind,
        });
    }
    if out.is_empty() {
        bail!("no .eml files in {}", dir.display());
    }
    Ok((out, dir.display().to_string()))
}

/// The first value of header `name` (lower case) in `raw`, unfolded.
fn header_value(raw: &[u8], name: &str) -> Option<String> {
    let text = String::from_utf8_lossy(&raw[..raw.len().min(64 * 1024)]);
    let mut found: Option<String> = None;
    for line in text.split('\n') {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            break;
        }
        if let Some(v) = found.as_mut() {
            if line.starts_with([' ', '\t']) {
                v.push_str(line.trim());
                continue;
            }
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case(name)
        {
            found = Some(v.trim().to_string());
        }
    }
    found
}

// ----- a small raw IMAP client (pipelined APPEND, IDLE observer, STATUS) ---------------

struct Imap {
    r: BufReader<tokio::net::tcp::OwnedReadHalf>,
    w: tokio::net::tcp::OwnedWriteHalf,
    tag: u64,
}

impl Imap {
    async fn login(port: u16, user: &str) -> Result<Imap> {
        let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
        tcp.set_nodelay(true)?;
        let (r, w) = tcp.into_split();
        let mut c = Imap {
            r: BufReader::new(r),
            w,
            tag: 0,
        };
        c.line().await?;
        c.command(&format!("LOGIN \"{user}\" \"secret\"")).await?;
        Ok(c)
    }

    async fn line(&mut self) -> Result<String> {
        let mut buf = Vec::new();
        if self.r.read_until(b'\n', &mut buf).await? == 0 {
            bail!("IMAP connection closed");
        }
        Ok(String::from_utf8_lossy(&buf).trim_end().to_string())
    }

    /// Sends one command and returns the untagged lines before its OK.
    async fn command(&mut self, cmd: &str) -> Result<Vec<String>> {
        self.tag += 1;
        let tag = format!("t{}", self.tag);
        self.w
            .write_all(format!("{tag} {cmd}\r\n").as_bytes())
            .await?;
        let mut lines = Vec::new();
        loop {
            let l = self.line().await?;
            if let Some(rest) = l.strip_prefix(&format!("{tag} ")) {
                if rest.starts_with("OK") {
                    return Ok(lines);
                }
                bail!("IMAP {cmd}: {l}");
            }
            lines.push(l);
        }
    }

    /// APPENDs every mail over this one connection, pipelined with LITERAL+.
    async fn append_pipelined(self, folder: &str, mails: &[Mail]) -> Result<()> {
        let Imap { mut r, mut w, .. } = self;
        let n = mails.len();
        let reader = async move {
            let mut ok = 0;
            let mut buf = Vec::new();
            while ok < n {
                buf.clear();
                if r.read_until(b'\n', &mut buf).await? == 0 {
                    bail!("IMAP connection closed during APPEND");
                }
                if buf.starts_with(b"a") {
                    let l = String::from_utf8_lossy(&buf);
                    if l.split(' ').nth(1).is_none_or(|s| s != "OK") {
                        bail!("APPEND failed: {l}");
                    }
                    ok += 1;
                }
            }
            Ok::<(), anyhow::Error>(())
        };
        let writer = async move {
            let mut out = tokio::io::BufWriter::with_capacity(256 * 1024, &mut w);
            for (i, m) in mails.iter().enumerate() {
                out.write_all(
                    format!(
                        "a{i} APPEND {folder} () \"{}\" {{{}+}}\r\n",
                        m.internal_date,
                        m.raw.len()
                    )
                    .as_bytes(),
                )
                .await?;
                out.write_all(&m.raw).await?;
                out.write_all(b"\r\n").await?;
            }
            out.flush().await?;
            Ok::<(), anyhow::Error>(())
        };
        let (a, b) = tokio::join!(reader, writer);
        a?;
        b
    }

    async fn append_one(&mut self, folder: &str, m: &Mail) -> Result<()> {
        self.tag += 1;
        let tag = format!("t{}", self.tag);
        let mut msg = format!(
            "{tag} APPEND {folder} () \"{}\" {{{}+}}\r\n",
            m.internal_date,
            m.raw.len()
        )
        .into_bytes();
        msg.extend_from_slice(&m.raw);
        msg.extend_from_slice(b"\r\n");
        self.w.write_all(&msg).await?;
        loop {
            let l = self.line().await?;
            if let Some(rest) = l.strip_prefix(&format!("{tag} ")) {
                if rest.starts_with("OK") {
                    return Ok(());
                }
                bail!("APPEND: {l}");
            }
        }
    }

    async fn messages(&mut self, folder: &str) -> Result<u64> {
        let lines = self.command(&format!("STATUS {folder} (MESSAGES)")).await?;
        lines
            .iter()
            .find_map(|l| {
                l.split("MESSAGES ")
                    .nth(1)
                    .and_then(|v| v.trim_end_matches(')').trim().parse().ok())
            })
            .ok_or_else(|| anyhow!("no STATUS answer"))
    }
}

/// Sits in IDLE on `user`'s INBOX (a mailbox nobody else touches) the way
/// the daemon does (IDLE, woken, DONE, IDLE again) and records when each
/// EXISTS notification came and how many mails it counts.
async fn idle_observer(
    port: u16,
    user: String,
    tx: tokio::sync::mpsc::UnboundedSender<(u64, SystemTime)>,
) -> Result<()> {
    let mut c = Imap::login(port, &user).await?;
    c.command("SELECT INBOX").await?;
    c.w.write_all(b"idle IDLE\r\n").await?;
    loop {
        let l = c.line().await?;
        let now = SystemTime::from(SystemClock.now());
        let mut p = l.split(' ');
        if p.next() != Some("*") {
            continue;
        }
        if let (Some(n), Some("EXISTS")) = (p.next().and_then(|n| n.parse::<u64>().ok()), p.next())
        {
            if tx.send((n, now)).is_err() {
                return Ok(());
            }
            c.w.write_all(b"DONE\r\n").await?;
            while !c.line().await?.starts_with("idle ") {}
            c.w.write_all(b"idle IDLE\r\n").await?;
        }
    }
}

// ----- processes and memory -------------------------------------------------------------

fn proc_status_kb(pid: u32, key: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines().find_map(|l| l.strip_prefix(key)).and_then(|v| {
        v.trim_start_matches(':')
            .trim()
            .trim_end_matches(" kB")
            .trim()
            .parse()
            .ok()
    })
}

/// User plus system CPU seconds of a process.
/// The machine's busy and total CPU time so far, in seconds (all cores).
fn machine_cpu() -> Option<(f64, f64)> {
    let s = std::fs::read_to_string("/proc/stat").ok()?;
    let v: Vec<f64> = s
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: f64 = v.iter().sum();
    let idle = v.get(3)? + v.get(4).unwrap_or(&0.0);
    Some(((total - idle) / 100.0, total / 100.0))
}

/// The CPU time `pid` has used, in user mode and in the kernel, in seconds.
fn cpu_secs(pid: u32) -> Option<(f64, f64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = s.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i)?.parse::<f64>().ok();
    Some((ticks(11)? / 100.0, ticks(12)? / 100.0))
}

/// The mail stack of a run: Dovecot, and smtp-sink writing to tmpfs.
fn stack() -> MailStack {
    MailStack::with(Options {
        sink_on_tmpfs: true,
        ..Options::default()
    })
}

/// A config for `stack` with its database `db` in the stack's directory
/// (`DB.toml` beside it, the daemon's log `DB.log`), the qnap pack, and
/// `boxes` (mailbox name, IMAP user).
fn bench_config(stack: &MailStack, db: &str, boxes: &[(&'static str, &str)]) -> PathBuf {
    let name = db.trim_end_matches(".db");
    write_bench_config(stack, name, boxes, |c| c.database = stack.dir.join(db))
}

/// The bench's config `NAME.toml` for `boxes` (the qnap pack, a timeout of
/// 30 s), with `store` saying where its store is.
fn write_bench_config(
    stack: &MailStack,
    name: &str,
    boxes: &[(&'static str, &str)],
    store: impl Fn(&mut kit::stack::ConfigText),
) -> PathBuf {
    stack.write_config(|c| {
        c.file = format!("{name}.toml");
        store(c);
        c.pack = "qnap".into();
        c.timeout_secs = 30;
        c.mailboxes = boxes.iter().map(|(n, _)| (*n, *n)).collect();
        c.usernames = boxes.iter().map(|(n, u)| (*n, u.to_string())).collect();
    })
}

fn log_count(log: &Path, needle: &str) -> usize {
    std::fs::read_to_string(log)
        .map(|s| s.matches(needle).count())
        .unwrap_or(0)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[i.clamp(1, sorted.len()) - 1]
}

fn stats(mut v: Vec<f64>) -> Value {
    v.sort_by(|a, b| a.total_cmp(b));
    json!({
        "n": v.len(),
        "median_ms": percentile(&v, 50.0),
        "p99_ms": percentile(&v, 99.0),
        "max_ms": v.last().copied().unwrap_or(f64::NAN),
    })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn since(a: SystemTime, b: SystemTime) -> f64 {
    match b.duration_since(a) {
        Ok(d) => ms(d),
        Err(e) => -ms(e.duration()),
    }
}

// ----- the run -------------------------------------------------------------------------

async fn run(args: Args) -> Result<()> {
    let (mails, source) = load_corpus(&args)?;
    let n = mails.len();
    eprintln!("bench: {n} messages from {source}");
    let stack = stack();
    let work = stack.dir.clone();
    let mut out = json!({
        "count": n,
        "machine": {"cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
                     "loadavg_start": std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim()},
    });

    // 1. APPEND the corpus with its INTERNALDATEs, pipelined on one connection.
    let t = Instant::now();
    Imap::login(stack.imap_port, "support@vendor.test")
        .await?
        .append_pipelined("INBOX", &mails)
        .await?;
    let append_s = t.elapsed().as_secs_f64();
    out["append"] = json!({"method": "one connection, pipelined APPEND with LITERAL+", "msg_per_s": n as f64 / append_s});
    eprintln!("bench: appended in {append_s:.2} s");

    // 2a. The parts' own limits: batch FETCH from Dovecot (read-only, PEEK).
    out["limits"] = json!({
        "imap_fetch_msg_per_s": fetch_rate(&stack, n).await?,
        "smtp_sink_msg_per_s": smtp_rate(&mails).await?,
        "sqlite": sqlite_rate(&work, &mails)?,
    });
    eprintln!("bench: limits {}", out["limits"]);

    // 3+4. Idle memory and latency on three other, empty mailboxes.
    out["latency"] = latency(&args, &stack, &mails).await?;
    eprintln!("bench: latency {}", out["latency"]);

    // 2b. Throughput on the full mailbox; peak memory.
    let boxes = [
        ("support", "support@vendor.test"),
        ("rma", "tp-rma@vendor.test"),
        ("24x7", "tp-24x7@vendor.test"),
    ];
    out["throughput"] = throughput(
        &args.ticketd,
        args.perf.as_deref(),
        &stack,
        n,
        &[bench_config(&stack, "throughput.db", &boxes)],
        &boxes,
        0,
    )
    .await?;
    eprintln!("bench: throughput {}", out["throughput"]);

    // 2c. The same on a store that already holds `--preload` messages.
    if args.preload > 0 {
        out["preloaded"] = preloaded(&args, &stack, &work, &mails).await?;
        eprintln!("bench: preloaded {}", out["preloaded"]);
    }

    // 2d. This build against another, alternately, on the same corpus.
    if let Some(base) = &args.baseline {
        out["baseline"] = compare(
            args.ticketd.clone(),
            base.clone(),
            args.rounds,
            &stack,
            &mails,
        )
        .await?;
        eprintln!("bench: baseline {}", out["baseline"]);
    }

    // 2e. The same on PostgreSQL: one daemon, several, and preloaded.
    if args.postgres {
        out["postgres"] = postgres_runs(&args, &stack, &mails).await?;
        eprintln!("bench: postgres {}", out["postgres"]);
    }

    // 5. Pathological mail.
    out["pathological"] = pathological(&work, &kit::repo())?;

    out["machine"]["loadavg_end"] = json!(
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    print_table(&out);
    if let Some(p) = &args.json {
        std::fs::write(p, serde_json::to_string_pretty(&out)?)?;
        eprintln!("bench: wrote {}", p.display());
    }
    Ok(())
}

async fn fetch_rate(stack: &MailStack, n: usize) -> Result<f64> {
    let tcp = TcpStream::connect(("127.0.0.1", stack.imap_port)).await?;
    tcp.set_nodelay(true)?;
    let mut c = async_imap::Client::new(tcp);
    c.read_response().await?;
    let mut s = c
        .login("support@vendor.test", "secret")
        .await
        .map_err(|(e, _)| e)?;
    s.select("INBOX").await?;
    let t = Instant::now();
    let mut got = 0usize;
    let batch = 500;
    let mut start = 1;
    while start <= n {
        let end = (start + batch - 1).min(n);
        let v: Vec<usize> = s
            .uid_fetch(
                format!("{start}:{end}"),
                "(UID INTERNALDATE RFC822.SIZE BODY.PEEK[])",
            )
            .await?
            .map_ok(|f| f.body().map(|b| b.len()).unwrap_or(0))
            .try_collect()
            .await?;
        got += v.len();
        start = end + 1;
    }
    let rate = got as f64 / t.elapsed().as_secs_f64();
    let _ = s.logout().await;
    if got != n {
        bail!("FETCH returned {got} of {n} messages");
    }
    Ok(rate)
}

/// One NODELAY connection to a separate smtp-sink, through the daemon's own sender.
async fn smtp_rate(mails: &[Mail]) -> Result<f64> {
    let sink = MailStack::with(Options {
        without_dovecot: true,
        sink_on_tmpfs: true,
        ..Options::default()
    });
    let cfg_path = bench_config(&sink, "probe.db", &[("support", "probe@vendor.test")]);
    let cfg = Config::load(&cfg_path).map_err(|e| anyhow!("{e}"))?;
    let mut sender = ticketd::outbox::Sender::new(
        cfg.smtp.clone(),
        std::sync::Arc::new(ticketd::clock::SystemClock),
    );
    let k = mails.len().min(3000);
    let rows: Vec<ticketd::store::OutboxRow> = mails[..k]
        .iter()
        .enumerate()
        .map(|(i, m)| ticketd::store::OutboxRow {
            id: i as i64,
            ticket_id: None,
            kind: "probe".into(),
            message_id: format!("probe{i}@vendor.test"),
            mail_from: "support@vendor.test".into(),
            rcpt_to: vec!["customer@example.net".into()],
            raw: m.raw.clone(),
            status: "queued".into(),
            attempts: 0,
            next_attempt_at: chrono::DateTime::UNIX_EPOCH,
            last_error: None,
            claims: 0,
            deferrals: 0,
            created_at: chrono::DateTime::UNIX_EPOCH,
            subject: None,
        })
        .collect();
    let t = Instant::now();
    for r in &rows {
        sender
            .send(r)
            .await
            .map_err(|e| anyhow!("probe send: {e:?}"))?;
    }
    let rate = k as f64 / t.elapsed().as_secs_f64();
    sender.close().await;
    Ok(rate)
}

fn probe_row<'a>(i: usize, m: &'a Mail) -> MessageRow<'a> {
    MessageRow {
        origin: Origin {
            mailbox: "probe",
            uidvalidity: 1,
            uid: i as u32 + 1,
        },
        raw: &m.raw,
        message_id: m.message_id.as_deref(),
        sender: Some("customer@example.net"),
        content_hash: "h",
        arrival: SystemClock.now(),
        class: "human",
        outcome: Outcome::Processed,
        reason: None,
        reply_text: None,
    }
}

fn probe_mail(i: usize) -> NewMail {
    NewMail {
        kind: "ack".into(),
        message_id: format!("<probe{i}@tickets.vendor.test>"),
        mail_from: "support@vendor.test".into(),
        rcpt_to: vec!["customer@example.net".into()],
        subject: "Re: bench".into(),
        raw: vec![b'x'; 2000],
    }
}

fn probe_event() -> Event {
    Event::Created {
        from: "customer@example.net".into(),
        mailbox: "probe".into(),
        list: false,
    }
}

fn probe_ticket(i: usize) -> TicketWrite {
    TicketWrite::New {
        status: TicketStatus::Open,
        subject: format!("probe {i}"),
        language: "en".into(),
        requester: format!("c{}@example.net", i % 500),
        requester_name: None,
    }
}

/// The store's commit rate with the daemon's settings (WAL, synchronous=FULL):
/// one transaction per message, and one per batch of 200 with a savepoint each.
fn sqlite_rate(work: &Path, mails: &[Mail]) -> Result<Value> {
    let k = mails.len().min(3000);
    let mut res = json!({});
    {
        let path = work.join("probe-single.db");
        let mut st = Store::open(&path)?;
        let t = Instant::now();
        for (i, m) in mails[..k].iter().enumerate() {
            st.apply(
                &probe_row(i, m),
                &probe_ticket(i),
                &[probe_event()],
                &SideEffects::default(),
                &[probe_mail(i)],
                SystemClock.now(),
            )?;
        }
        res["one_tx_per_msg_per_s"] = json!(k as f64 / t.elapsed().as_secs_f64());
    }
    res["batched_per_s"] = json!(batched_sqlite_rate(work, mails, k)?);
    Ok(res)
}

fn batched_sqlite_rate(work: &Path, mails: &[Mail], k: usize) -> Result<f64> {
    let path = work.join("probe-batch.db");
    let mut st = Store::open(&path)?;
    let t = Instant::now();
    for chunk in (0..k).collect::<Vec<_>>().chunks(200) {
        st.in_batch(|st| {
            for &i in chunk {
                st.apply(
                    &probe_row(i, &mails[i]),
                    &probe_ticket(i),
                    &[probe_event()],
                    &SideEffects::default(),
                    &[probe_mail(i)],
                    SystemClock.now(),
                )?;
            }
            Ok(())
        })?;
    }
    Ok(k as f64 / t.elapsed().as_secs_f64())
}

async fn latency(args: &Args, stack: &MailStack, mails: &[Mail]) -> Result<Value> {
    let boxes = [
        ("support", "lat-support@vendor.test"),
        ("rma", "lat-rma@vendor.test"),
        ("24x7", "lat-24x7@vendor.test"),
    ];
    let cfg = bench_config(stack, "latency.db", &boxes);
    // Create the three mailboxes (a login makes the user's INBOX).
    for (_, u) in boxes {
        Imap::login(stack.imap_port, u)
            .await?
            .command("SELECT INBOX")
            .await?;
    }
    let daemon = Ticketd::start_bin(&args.ticketd, &cfg, "info", false);
    let pid = daemon.pid();
    wait_until("three watchers", Duration::from_secs(30), || {
        log_count(&daemon.log, "watching") >= 3
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle_rss = proc_status_kb(pid, "VmRSS").unwrap_or(0);
    let idle_hwm = proc_status_kb(pid, "VmHWM").unwrap_or(0);
    // Heap and stacks apart from the binary's and libraries' pages.
    let idle_anon = proc_status_kb(pid, "RssAnon").unwrap_or(0);
    let idle_file = proc_status_kb(pid, "RssFile").unwrap_or(0);

    // Dovecot's notification delay, measured per mail: an observer idles on a
    // mailbox of its own that gets a copy of each mail right after the
    // daemon's; its notification time, less the gap between the two APPENDs,
    // is when the daemon's own IDLE could first have heard of the mail.
    let observer_user = "lat-observer@vendor.test";
    Imap::login(stack.imap_port, observer_user)
        .await?
        .command("SELECT INBOX")
        .await?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let observer = tokio::spawn(idle_observer(
        stack.imap_port,
        observer_user.to_string(),
        tx,
    ));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let picked: Vec<&Mail> = mails
        .iter()
        .filter(|m| m.kind == "new" || m.kind.is_empty())
        .take(args.latency_count)
        .collect();
    let mut client = Imap::login(stack.imap_port, boxes[0].1).await?;
    let mut copier = Imap::login(stack.imap_port, observer_user).await?;
    let period = Duration::from_secs_f64(1.0 / args.latency_rate);
    let mut tick = tokio::time::interval(period);
    // (Message-ID, APPEND done, gap until the observer's copy was appended)
    let mut appended: Vec<(Option<String>, SystemTime, f64)> = Vec::new();
    for m in &picked {
        tick.tick().await;
        client.append_one("INBOX", m).await?;
        let done = SystemTime::from(SystemClock.now());
        copier.append_one("INBOX", m).await?;
        appended.push((
            m.message_id.clone(),
            done,
            since(done, SystemTime::from(SystemClock.now())),
        ));
    }
    // Every reply in the sink (In-Reply-To names the mail it answers).
    let want = picked.len();
    let start = Instant::now();
    let mut replies: HashMap<String, SystemTime> = HashMap::new();
    while replies.len() < want && start.elapsed() < Duration::from_secs(60) {
        for f in stack.sink_files() {
            if let (Ok(raw), Ok(meta)) = (std::fs::read(&f), std::fs::metadata(&f))
                && let Some(irt) = header_value(&raw, "in-reply-to")
            {
                replies.entry(irt).or_insert(meta.modified()?);
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut notes: Vec<(u64, SystemTime)> = Vec::new();
    while let Ok(x) = rx.try_recv() {
        notes.push(x);
    }
    observer.abort();
    let (mut raw_ms, mut adj_ms, mut notify_ms) = (Vec::new(), Vec::new(), Vec::new());
    for (k, (mid, done, gap)) in appended.iter().enumerate() {
        let Some(sent) = mid.as_ref().and_then(|m| replies.get(m)) else {
            continue;
        };
        raw_ms.push(since(*done, *sent));
        if let Some((_, seen)) = notes.iter().find(|(c, _)| *c as usize > k) {
            let notified = since(*done, *seen) - gap;
            notify_ms.push(notified);
            adj_ms.push(since(*done, *sent) - notified);
        }
    }
    daemon.terminate().await;
    Ok(json!({
        "idle_rss_kib": idle_rss,
        "idle_hwm_kib": idle_hwm,
        "idle_rss_anon_kib": idle_anon,
        "idle_rss_file_kib": idle_file,
        "rate_per_s": args.latency_rate,
        "appended": appended.len(),
        "replied": raw_ms.len(),
        "raw": stats(raw_ms),
        "dovecot_notify": stats(notify_ms),
        "above_notify": stats(adj_ms),
    }))
}

async fn throughput(
    bin: &Path,
    perf: Option<&Path>,
    stack: &MailStack,
    n: usize,
    cfgs: &[PathBuf],
    boxes: &[(&'static str, &str)],
    already: usize,
) -> Result<Value> {
    let cfg_path = cfgs[0].clone();
    let cfg = Config::load(&cfg_path).map_err(|e| anyhow!("{e}"))?;
    for c in cfgs {
        fit_config(bin, c)?;
    }
    let before_sink = stack.sink_files().len();
    // Every mailbox's INBOX is watched (the corpus may be spread over them).
    let mut imaps = Vec::new();
    for (_, user) in boxes {
        imaps.push(Imap::login(stack.imap_port, user).await?);
    }
    let t = Instant::now();
    let machine_before = machine_cpu();
    // BENCH_LOG sets the daemon's log filter (`info` by default), kept with BENCH_KEEP_LOG.
    let level = std::env::var("BENCH_LOG").unwrap_or_else(|_| "info".into());
    // Several daemons (on PostgreSQL) start together; their CPU and peak
    // memory are summed and the largest.
    let daemons: Vec<Ticketd> = cfgs
        .iter()
        .map(|c| Ticketd::start_bin(bin, c, &level, false))
        .collect();
    let pids: Vec<u32> = daemons.iter().map(Ticketd::pid).collect();
    let perf = match perf {
        Some(p) => Some(
            Command::new("perf")
                // The whole machine: the servers' share is part of the picture.
                .args(["record", "-a", "-F", "499", "-g", "-o"])
                .arg(p)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()?,
        ),
        None => None,
    };
    let mut peak_rss = 0;
    let mut processed_at = None;
    loop {
        for &pid in &pids {
            peak_rss = peak_rss.max(proc_status_kb(pid, "VmRSS").unwrap_or(0));
        }
        if t.elapsed() > Duration::from_secs(600) {
            bail!("throughput run did not finish in 10 minutes");
        }
        let mut inbox = 0;
        for imap in &mut imaps {
            inbox += imap.messages("INBOX").await?;
        }
        if inbox == 0 && processed_at.is_none() {
            processed_at = Some(t.elapsed());
        }
        if inbox == 0 && cfg.database.exists() {
            let st = Store::open_read_only_at(&cfg.database)?;
            let counts: HashMap<String, i64> = st.outbox_counts()?.into_iter().collect();
            let queued = counts.get("queued").copied().unwrap_or(0);
            let sent = counts.get("sent").copied().unwrap_or(0) as usize;
            if queued == 0 && stack.sink_files().len() - before_sink >= sent {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let total = t.elapsed();
    let machine_busy = match (machine_before, machine_cpu()) {
        (Some((b0, t0)), Some((b1, t1))) if t1 > t0 => Some((b1 - b0) / (t1 - t0)),
        _ => None,
    };
    let hwm = pids
        .iter()
        .map(|&p| proc_status_kb(p, "VmHWM").unwrap_or(0))
        .max()
        .unwrap_or(0);
    let (user, system) = pids
        .iter()
        .map(|&p| cpu_secs(p).unwrap_or((0.0, 0.0)))
        .fold((0.0, 0.0), |(u, s), (a, b)| (u + a, s + b));
    let cpu = user + system;
    if let Some(mut p) = perf {
        let _ = Command::new("kill")
            .args(["-INT", &p.id().to_string()])
            .status();
        let _ = p.wait();
    }
    let st = Store::open_read_only_at(&cfg.database)?;
    let outcomes: HashMap<String, i64> = st.message_outcomes()?.into_iter().collect();
    let outbox: HashMap<String, i64> = st.outbox_counts()?.into_iter().collect();
    // Only this run's mail (a preloaded store holds more).
    let stored: i64 = outcomes.values().sum::<i64>() - already as i64;
    let log = daemons[0].log.clone();
    for d in daemons {
        d.terminate().await;
    }
    if let Some(keep) = std::env::var_os("BENCH_KEEP_LOG") {
        // The daemon's log of the throughput run (the work directory goes with the stack).
        std::fs::copy(&log, &keep)?;
    }
    let mut processed = 0;
    for imap in &mut imaps {
        processed += imap.messages("Processed").await? + imap.messages("Quarantine").await?;
    }
    if stored as usize != n || processed as usize != n {
        bail!("throughput run stored {stored} and moved {processed} of {n} messages");
    }
    Ok(json!({
        "seconds": total.as_secs_f64(),
        "msg_per_s": n as f64 / total.as_secs_f64(),
        "all_moved_s": processed_at.map(|d| d.as_secs_f64()),
        "replies_sent": outbox.get("sent").copied().unwrap_or(0),
        "outcomes": outcomes,
        "peak_rss_kib": hwm.max(peak_rss),
        "daemon_cpu_s": cpu,
        "daemon_user_s": user,
        "daemon_system_s": system,
        "machine_busy": machine_busy,
    }))
}

/// Makes the config at `path` one that `bin` (perhaps an older build)
/// accepts: the templates and packs of its own revision when they sit beside
/// it (`templates`, `config/vendors`, as `scripts/bench --baseline REV`
/// leaves them), and without the lines its `check-config` names as unknown
/// fields (settings newer than it, all of them tuning the bench does not
/// need). Any other problem stops the bench with `check-config`'s words.
fn fit_config(bin: &Path, path: &Path) -> Result<()> {
    let mut text = std::fs::read_to_string(path)?;
    if let Some(dir) = bin.parent().and_then(|d| std::path::absolute(d).ok())
        && dir.join("templates").is_dir()
        && dir.join("config/vendors").is_dir()
    {
        let own = |key: &str, value: &Path| format!("{key} = {:?}", value.display().to_string());
        text = text
            .lines()
            .map(|l| match l.split_once(" = ") {
                Some(("templates", _)) => own("templates", &dir.join("templates")),
                Some(("packs", _)) => own("packs", &dir.join("config/vendors")),
                _ => l.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n");
        std::fs::write(path, &text)?;
    }
    let prefix = format!("{}:", path.display());
    for _ in 0..50 {
        let out = Command::new(bin).arg("check-config").arg(path).output()?;
        if out.status.success() {
            return Ok(());
        }
        let said = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        let unknown: Vec<usize> = said
            .lines()
            .filter_map(|l| l.strip_prefix(&prefix))
            .filter_map(|l| l.split_once(": unknown field"))
            .filter_map(|(n, _)| n.parse().ok())
            .collect();
        if unknown.is_empty() {
            bail!(
                "{} does not accept the bench's config:\n{said}",
                bin.display()
            );
        }
        text = text
            .lines()
            .enumerate()
            .map(|(i, l)| if unknown.contains(&(i + 1)) { "" } else { l })
            .collect::<Vec<_>>()
            .join("\n");
        std::fs::write(path, &text)?;
    }
    bail!("{} keeps refusing the bench's config", bin.display())
}

/// This build (`current`) and another (`base`) run the throughput of the
/// corpus `rounds` times each, alternately (the order swapped each round,
/// so that neither always runs on a warmer machine), each run on mailboxes
/// and a database of its own: the medians of mails per second and of
/// daemon CPU per mail, and their ratios.
async fn compare(
    current: PathBuf,
    base: PathBuf,
    rounds: usize,
    stack: &MailStack,
    mails: &[Mail],
) -> Result<Value> {
    let mut runs: Vec<Value> = Vec::new();
    for round in 0..rounds {
        let order = if round % 2 == 0 {
            [("current", &current), ("baseline", &base)]
        } else {
            [("baseline", &base), ("current", &current)]
        };
        for (label, bin) in order {
            let user = |b: &str| format!("cmp{round}-{label}-{b}@vendor.test");
            let users = [user("support"), user("rma"), user("24x7")];
            let boxes = [
                ("support", users[0].as_str()),
                ("rma", users[1].as_str()),
                ("24x7", users[2].as_str()),
            ];
            Imap::login(stack.imap_port, boxes[0].1)
                .await?
                .append_pipelined("INBOX", mails)
                .await?;
            let db = format!("cmp{round}-{label}.db");
            let cfg = bench_config(stack, &db, &boxes);
            let tp = throughput(bin, None, stack, mails.len(), &[cfg], &boxes, 0).await?;
            eprintln!(
                "bench: {label} round {round}: {:.0} msg/s, {:.2} s CPU (user {:.2}, kernel {:.2})",
                tp["msg_per_s"].as_f64().unwrap_or(f64::NAN),
                tp["daemon_cpu_s"].as_f64().unwrap_or(f64::NAN),
                tp["daemon_user_s"].as_f64().unwrap_or(f64::NAN),
                tp["daemon_system_s"].as_f64().unwrap_or(f64::NAN)
            );
            runs.push(json!({"build": label, "round": round, "throughput": tp}));
        }
    }
    let median_of = |label: &str, key: &str, per_mail: bool| {
        let mut v: Vec<f64> = runs
            .iter()
            .filter(|r| r["build"] == label)
            .filter_map(|r| r["throughput"][key].as_f64())
            .map(|x| {
                if per_mail {
                    1000.0 * x / mails.len() as f64
                } else {
                    x
                }
            })
            .collect();
        v.sort_by(|a, b| a.total_cmp(b));
        match v.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => v[n / 2],
            n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
        }
    };
    let summary = |label: &str, bin: &Path| {
        json!({
            "binary": bin.display().to_string(),
            "msg_per_s": median_of(label, "msg_per_s", false),
            "cpu_ms_per_mail": median_of(label, "daemon_cpu_s", true),
            "runs": runs.iter().filter(|r| r["build"] == label)
                .map(|r| json!([r["throughput"]["msg_per_s"], r["throughput"]["daemon_cpu_s"]]))
                .collect::<Vec<_>>(),
        })
    };
    let (c, b) = (summary("current", &current), summary("baseline", &base));
    let ratio = |k: &str| c[k].as_f64().unwrap_or(f64::NAN) / b[k].as_f64().unwrap_or(f64::NAN);
    Ok(json!({
        "rounds": rounds,
        "current": c,
        "baseline": b,
        "throughput_ratio": ratio("msg_per_s"),
        "cpu_per_mail_ratio": ratio("cpu_ms_per_mail"),
    }))
}

// ----- a store that already holds mail ------------------------------------------------------

/// Fills `db` with `n` stored messages, each with its ticket, two events and
/// a pending timer (due in 2030), through the store's own transaction, in
/// slices of 5,000 per commit.
fn preload_store(db: &ticketd::store::Location, n: usize) -> Result<()> {
    use ticketd::model::{
        Event, Outcome, SideEffects, TicketStatus, TicketWrite, TimerKind, TimerPlan,
    };
    use ticketd::store::{MessageRow, Origin};
    let mut st = Store::open_at(db)?;
    let at = chrono::DateTime::parse_from_rfc3339("2025-06-02T09:00:00Z")?.to_utc();
    let due = chrono::DateTime::parse_from_rfc3339("2030-01-01T00:00:00Z")?.to_utc();
    let mut i = 0;
    while i < n {
        let end = (i + 5000).min(n);
        st.in_batch(|st| {
            for k in i..end {
                let from = format!("old{k}@archive.test");
                let mid = format!("old{k}@archive.test");
                let raw = format!(
                    "From: {from}\r\nTo: support@vendor.test\r\nSubject: Old request {k}\r\nMessage-ID: <{mid}>\r\n\r\nThe unit with serial Q{k:010} fails to boot after the update.\r\n"
                );
                let hash = format!("{k:064x}");
                let row = MessageRow {
                    origin: Origin { mailbox: "archive", uidvalidity: 1, uid: k as u32 + 1 },
                    raw: raw.as_bytes(),
                    message_id: Some(&mid),
                    sender: Some(&from),
                    content_hash: &hash,
                    arrival: at,
                    class: "human",
                    outcome: Outcome::Processed,
                    reason: None,
                    reply_text: Some("The unit fails to boot after the update."),
                };
                let mut tx = st.begin_message(at)?;
                tx.write_ticket(
                    "support",
                    &TicketWrite::New {
                        subject: format!("Old request {k}"),
                        status: TicketStatus::Closed,
                        language: "en".into(),
                        requester: from.clone(),
                        requester_name: None,
                    },
                )?;
                let effects = SideEffects {
                    timers: vec![TimerPlan {
                        kind: TimerKind::SlaBreach,
                        cause: ticketd::model::TimerCause::Sla {
                            target: ticketd::model::SlaTarget::FirstResponse,
                            clock: ticketd::model::SlaClock::Business,
                        },
                        due,
                        rule: "QN-10".into(),
                        to: None,
                    }],
                    ..SideEffects::default()
                };
                let events = [
                    Event::Created { from: from.clone(), mailbox: "support".into(), list: false },
                    Event::Message { from: from.clone() },
                ];
                tx.finish(&row, &events, &effects, &[])?;
            }
            Ok(())
        })?;
        i = end;
    }
    Ok(())
}

/// Throughput on a store preloaded with `--preload` messages, and the time
/// from start to the first IDLE with that store.
async fn preloaded(args: &Args, stack: &MailStack, work: &Path, mails: &[Mail]) -> Result<Value> {
    let boxes = [
        ("support", "pl-support@vendor.test"),
        ("rma", "pl-rma@vendor.test"),
        ("24x7", "pl-24x7@vendor.test"),
    ];
    let db = work.join("preloaded.db");
    let t = Instant::now();
    preload_store(&ticketd::store::Location::Sqlite(db.clone()), args.preload)?;
    let fill_s = t.elapsed().as_secs_f64();
    let db_bytes = std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0);
    eprintln!(
        "bench: preloaded {} messages in {fill_s:.1} s ({} MiB)",
        args.preload,
        db_bytes >> 20
    );
    for (_, u) in boxes {
        Imap::login(stack.imap_port, u)
            .await?
            .command("SELECT INBOX")
            .await?;
    }
    // Start to the first IDLE of every watcher, the mailboxes empty.
    let cfg = bench_config(stack, "preloaded.db", &boxes);
    let t = Instant::now();
    let daemon = Ticketd::start_bin(&args.ticketd, &cfg, "info,ticketd::imap=debug", false);
    wait_until("three watchers in IDLE", Duration::from_secs(60), || {
        log_count(&daemon.log, "in IDLE") >= 3
    })
    .await;
    let start_to_idle_ms = t.elapsed().as_secs_f64() * 1000.0;
    daemon.terminate().await;
    // The corpus again, into the preloaded run's own mailbox.
    Imap::login(stack.imap_port, boxes[0].1)
        .await?
        .append_pipelined("INBOX", mails)
        .await?;
    let tp = throughput(
        &args.ticketd,
        None,
        stack,
        mails.len(),
        &[cfg],
        &boxes,
        args.preload,
    )
    .await?;
    Ok(json!({
        "messages": args.preload,
        "fill_s": fill_s,
        "db_bytes": db_bytes,
        "start_to_first_idle_ms": start_to_idle_ms,
        "throughput": tp,
    }))
}

// ----- PostgreSQL ---------------------------------------------------------------------------

/// A config for `stack` on database `db` of `pg` as node `node` (`NAME.toml`,
/// its log `NAME.log`), otherwise as [`bench_config`].
fn pg_config(
    stack: &MailStack,
    pg: &kit::postgres::Postgres,
    (name, db, node): (&str, &str, &str),
    boxes: &[(&'static str, &str)],
) -> PathBuf {
    let password = stack.dir.join("pg-password");
    std::fs::write(&password, format!("{}\n", kit::postgres::PASSWORD)).expect("a password file");
    write_bench_config(stack, name, boxes, |c| {
        c.database = PathBuf::from(pg.url(db));
        c.daemon_extra = format!(
            "database_password_file = \"{}\"\nnode = \"{node}\"",
            password.display()
        );
    })
}

/// Throughput on a private PostgreSQL (fsync on, as a server runs): one
/// daemon, `--daemons` daemons on one database, and one daemon on a
/// database preloaded with `--preload` messages.
async fn postgres_runs(args: &Args, stack: &MailStack, mails: &[Mail]) -> Result<Value> {
    // SAFETY of the variable: read by scripts/mailstack, which the kit runs
    // as a child process; set before any thread of ours reads it.
    unsafe { std::env::set_var("MAILSTACK_PG_FSYNC", "on") };
    let pg = kit::postgres::Postgres::start();
    let mut out = json!({});
    let runs: Vec<(&str, usize, usize)> = {
        let mut r = vec![("one_daemon", 1, 0)];
        if args.daemons > 1 {
            r.push(("daemons", args.daemons, 0));
        }
        if args.preload > 0 {
            r.push(("preloaded", 1, args.preload));
        }
        r
    };
    for (label, daemons, preload) in runs {
        let users: Vec<String> = ["support", "rma", "24x7"]
            .iter()
            .map(|b| format!("pg-{label}-{b}@vendor.test"))
            .collect();
        let boxes = [
            ("support", users[0].as_str()),
            ("rma", users[1].as_str()),
            ("24x7", users[2].as_str()),
        ];
        let location = ticketd::store::off_async(|| Ok(pg.fresh(label)))?;
        let mut fill_s = None;
        if preload > 0 {
            let t = Instant::now();
            ticketd::store::off_async(|| Store::open_at(&location).map(|_| ()))?;
            ticketd::store::off_async(|| preload_postgres(&pg, label, preload))?;
            fill_s = Some(t.elapsed().as_secs_f64());
            eprintln!(
                "bench: preloaded PostgreSQL with {preload} messages in {:.1} s",
                t.elapsed().as_secs_f64()
            );
        } else {
            ticketd::store::off_async(|| Store::open_at(&location).map(|_| ()))?;
        }
        let cfgs: Vec<PathBuf> = (0..daemons)
            .map(|i| {
                let name = format!("pg-{label}-{i}");
                pg_config(stack, &pg, (&name, label, &format!("node{i}")), &boxes)
            })
            .collect();
        // The corpus spread over the three mailboxes, as mail comes.
        for (b, (_, user)) in boxes.iter().enumerate() {
            let part: Vec<Mail> = mails.iter().skip(b).step_by(3).cloned().collect();
            Imap::login(stack.imap_port, user)
                .await?
                .append_pipelined("INBOX", &part)
                .await?;
        }
        let tp = throughput(
            &args.ticketd,
            None,
            stack,
            mails.len(),
            &cfgs,
            &boxes,
            preload,
        )
        .await?;
        eprintln!(
            "bench: PostgreSQL {label}: {:.0} msg/s",
            tp["msg_per_s"].as_f64().unwrap_or(f64::NAN)
        );
        out[label] =
            json!({"daemons": daemons, "preload": preload, "fill_s": fill_s, "throughput": tp});
    }
    Ok(out)
}

/// Fills PostgreSQL database `db` with `n` stored messages of the shape
/// [`preload_store`] writes (each with its contact, closed ticket, two events,
/// thread id and a pending timer due in 2030), set by set: a million rows
/// through the store one by one would take most of an hour.
fn preload_postgres(pg: &kit::postgres::Postgres, db: &str, n: usize) -> Result<()> {
    use ticketd::model::{SlaClock, SlaTarget, TimerCause};
    let cause = serde_json::to_string(&TimerCause::Sla {
        target: SlaTarget::FirstResponse,
        clock: SlaClock::Business,
    })?;
    let created = Event::Created {
        from: "FROM".into(),
        mailbox: "support".into(),
        list: false,
    };
    let message = Event::Message {
        from: "FROM".into(),
    };
    let at = "2025-06-02T09:00:00.000000Z";
    let mut c = postgres::Config::new()
        .host("127.0.0.1")
        .port(pg.port)
        .user("postgres")
        .password(kit::postgres::PASSWORD)
        .dbname(db)
        .connect(postgres::NoTls)?;
    let n = n as i64;
    let from = "'old' || g || '@archive.test'";
    let sql = format!(
        "BEGIN;
         INSERT INTO contacts (id, address, language, created_at)
             SELECT g, {from}, 'en', '{at}' FROM generate_series(1, {n}) g;
         INSERT INTO tickets (id, subject, status, requester_id, mailbox, language, created_at, updated_at)
             SELECT g, 'Old request ' || g, 'closed', g, 'support', 'en', '{at}', '{at}' FROM generate_series(1, {n}) g;
         INSERT INTO messages (id, mailbox, uidvalidity, uid, message_id, sender, content_hash, arrival, size, raw,
                               class, outcome, ticket_id, stored_at, reply_text)
             SELECT g, 'archive', 1, g, {from}, {from}, lpad(to_hex(g), 64, '0'), '{at}', 160,
                    convert_to('From: ' || {from} || E'\\r\\nSubject: Old request ' || g
                               || E'\\r\\n\\r\\nThe unit with serial Q' || lpad(g::text, 10, '0')
                               || E' fails to boot after the update.\\r\\n', 'UTF8'),
                    'human', 'processed', g, '{at}', 'The unit fails to boot after the update.'
             FROM generate_series(1, {n}) g;
         INSERT INTO thread_ids (message_id, ticket_id, origin) SELECT {from}, g, 'in' FROM generate_series(1, {n}) g;
         INSERT INTO ticket_events (ticket_id, at, kind, message_row, detail)
             SELECT g, '{at}', e.kind, g, replace(e.detail, 'FROM', {from})
             FROM generate_series(1, {n}) g, (VALUES ('{ck}', '{cd}'), ('{mk}', '{md}')) AS e(kind, detail);
         INSERT INTO timers (ticket_id, kind, cause, due_at, rule, state, created_at)
             SELECT g, 'sla_breach', '{cause}', '2030-01-01T00:00:00.000000Z', 'QN-10', 'pending', '{at}'
             FROM generate_series(1, {n}) g;
         SELECT setval(pg_get_serial_sequence('contacts', 'id'), {n});
         SELECT setval(pg_get_serial_sequence('tickets', 'id'), {n});
         SELECT setval(pg_get_serial_sequence('messages', 'id'), {n});
         COMMIT;
         ANALYZE;",
        ck = created.kind(),
        cd = created.detail().replace('\'', "''"),
        mk = message.kind(),
        md = message.detail().replace('\'', "''"),
    );
    c.batch_execute(&sql).map_err(|e| match e.as_db_error() {
        Some(db) => anyhow!(
            "preloading PostgreSQL: {}: {}",
            db.code().code(),
            db.message()
        ),
        None => anyhow!("preloading PostgreSQL: {e}"),
    })?;
    Ok(())
}

// ----- pathological mail ------------------------------------------------------------------

fn pathological_mails() -> Vec<(&'static str, Vec<u8>)> {
    let head = |ct: &str| {
        format!(
            "From: Ann <ann@example.net>\r\nTo: support@vendor.test\r\nSubject: Help\r\nMessage-ID: <p@example.net>\r\nDate: Mon, 02 Mar 2026 09:00:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: {ct}\r\n"
        )
    };
    let mut html = head("text/html; charset=utf-8") + "\r\n<html><body><p>Serial Q25GD12302</p>";
    for i in 0..2000 {
        html.push_str(&format!(
            "<a href=\"https://example.net/kb/{i}?ref=mail&amp;x={i}\">article {i}</a><br>\r\n"
        ));
    }
    html.push_str("</body></html>\r\n");
    let mut ws = (head("text/plain; charset=utf-8") + "\r\n").into_bytes();
    let pattern = b"        \t      \r\n";
    while ws.len() < 10 * 1024 * 1024 {
        ws.extend_from_slice(pattern);
    }
    let mut parts = head("multipart/mixed; boundary=\"b0\"") + "\r\n";
    for i in 0..500 {
        parts.push_str(&format!(
            "--b0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\npart {i} serial Q25GD1{i:04}\r\n"
        ));
    }
    parts.push_str("--b0--\r\n");
    let mut big = String::from("References:");
    let mut i = 0;
    while big.len() < 1024 * 1024 {
        big.push_str(&format!(" <ref{i}.{i}@client.example.net>\r\n"));
        i += 1;
    }
    let bighdr = head("text/plain; charset=utf-8") + &big + "\r\nHello, my disk failed.\r\n";
    vec![
        ("html_2000_links", html.into_bytes()),
        ("whitespace_10mb", ws),
        ("mime_500_parts", parts.into_bytes()),
        ("header_1mb", bighdr.into_bytes()),
    ]
}

fn pathological(work: &Path, repo: &Path) -> Result<Value> {
    let me = std::env::current_exe()?;
    // `explain` without a config reads the shipped data directory: this
    // tree's templates and packs, laid out as the package installs them.
    let data = work.join("data");
    std::fs::create_dir_all(&data)?;
    for (link, target) in [("templates", "templates"), ("vendors", "config/vendors")] {
        let l = data.join(link);
        if !l.exists() {
            std::os::unix::fs::symlink(repo.join(target), &l)?;
        }
    }
    let mut out = json!({});
    for (name, raw) in pathological_mails() {
        let path = work.join(format!("{name}.eml"));
        std::fs::write(&path, &raw)?;
        let o = Command::new(&me)
            .arg("explain-one")
            .arg(&path)
            .env("TICKETD_DATA_DIR", &data)
            .output()?;
        if !o.status.success() {
            bail!(
                "explain-one {name} failed: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        let mut v: Value = serde_json::from_slice(&o.stdout)?;
        v["size"] = json!(raw.len());
        out[name] = v;
    }
    Ok(out)
}

/// Times `explain` on one file in this process and reports its memory.
fn explain_one(file: &Path) -> Result<()> {
    let raw = std::fs::read(file)?;
    let opts = ticketd::explain::Options::default();
    let now = SystemClock.now();
    // Warm the lazily built parts (templates, regexes) on a tiny mail first.
    ticketd::explain::explain(b"From: a@b.example\r\nSubject: x\r\n\r\nx\r\n", &opts, now)?;
    let pid = std::process::id();
    let before = proc_status_kb(pid, "VmHWM").unwrap_or(0);
    let t = Instant::now();
    let v = ticketd::explain::explain(&raw, &opts, now)?;
    let took = t.elapsed();
    let after = proc_status_kb(pid, "VmHWM").unwrap_or(0);
    let outcome = v.get("outcome").cloned().unwrap_or(Value::Null);
    let mut so = std::io::stdout();
    writeln!(
        so,
        "{}",
        json!({"ms": ms(took), "peak_kib": after, "peak_before_kib": before, "outcome": outcome})
    )?;
    Ok(())
}

// ----- the table -------------------------------------------------------------------------

fn print_table(o: &Value) {
    let f = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    let tp = &o["throughput"];
    let lim = &o["limits"];
    let rate = f(&tp["msg_per_s"]);
    let limits = [
        ("IMAP batch FETCH", f(&lim["imap_fetch_msg_per_s"])),
        ("SMTP sink, one connection", f(&lim["smtp_sink_msg_per_s"])),
        (
            "SQLite, one tx per message",
            f(&lim["sqlite"]["one_tx_per_msg_per_s"]),
        ),
        ("SQLite, batched", f(&lim["sqlite"]["batched_per_s"])),
    ];
    let slowest = limits
        .iter()
        .filter(|(n, _)| *n != "SQLite, one tx per message")
        .map(|(_, r)| *r)
        .fold(f64::INFINITY, f64::min);
    println!();
    println!("| measure | value | target |");
    println!("| --- | --- | --- |");
    println!(
        "| throughput end to end ({} msgs, {} replies) | {:.0} msg/s ({:.2} s) | ≥ 2,000 msg/s |",
        o["count"],
        tp["replies_sent"],
        rate,
        f(&tp["seconds"])
    );
    let pl = &o["preloaded"];
    if pl.is_object() {
        println!(
            "| throughput with {} stored messages (same corpus) | {:.0} msg/s ({:.2} s) | within noise of the empty store |",
            pl["messages"],
            f(&pl["throughput"]["msg_per_s"]),
            f(&pl["throughput"]["seconds"])
        );
        println!(
            "| start to first IDLE, {} stored messages | {:.0} ms | < 1,000 ms |",
            pl["messages"],
            f(&pl["start_to_first_idle_ms"])
        );
    }
    if let Some(runs) = o["postgres"].as_object() {
        for (label, what) in [
            ("one_daemon", "PostgreSQL, one daemon"),
            ("daemons", "PostgreSQL, several daemons"),
            ("preloaded", "PostgreSQL, one daemon, preloaded"),
        ] {
            let Some(r) = runs.get(label) else { continue };
            let t = &r["throughput"];
            println!(
                "| {what} ({} daemons, {} stored before) | {:.0} msg/s ({:.2} s), CPU {:.2} s, peak RSS {:.1} MiB | |",
                r["daemons"],
                r["preload"],
                f(&t["msg_per_s"]),
                f(&t["seconds"]),
                f(&t["daemon_cpu_s"]),
                f(&t["peak_rss_kib"]) / 1024.0,
            );
        }
    }
    for (n, r) in limits {
        println!("| limit: {n} | {r:.0} msg/s | |");
    }
    println!(
        "| share of slowest part ({slowest:.0} msg/s) | {:.0} % | ≥ 50 % |",
        100.0 * rate / slowest
    );
    println!(
        "| corpus APPEND (pipelined) | {:.0} msg/s | |",
        f(&o["append"]["msg_per_s"])
    );
    let l = &o["latency"];
    for (k, label) in [
        ("raw", "latency APPEND → reply accepted"),
        ("dovecot_notify", "Dovecot IDLE notification delay"),
        ("above_notify", "latency above Dovecot's notification"),
    ] {
        println!(
            "| {label} (median / p99 / max) | {:.1} / {:.1} / {:.1} ms | {} |",
            f(&l[k]["median_ms"]),
            f(&l[k]["p99_ms"]),
            f(&l[k]["max_ms"]),
            if k == "above_notify" {
                "≤ 20 / ≤ 100 ms"
            } else {
                ""
            }
        );
    }
    println!(
        "| idle RSS, three mailboxes (heap and stacks / files) | {:.1} MiB ({:.1} / {:.1}) | ≤ 20 MiB |",
        f(&l["idle_rss_kib"]) / 1024.0,
        f(&l["idle_rss_anon_kib"]) / 1024.0,
        f(&l["idle_rss_file_kib"]) / 1024.0
    );
    println!(
        "| peak RSS, throughput run | {:.1} MiB | ≤ 64 MiB |",
        f(&tp["peak_rss_kib"]) / 1024.0
    );
    println!(
        "| daemon CPU, throughput run (user / kernel) | {:.2} s ({:.2} / {:.2}) | |",
        f(&tp["daemon_cpu_s"]),
        f(&tp["daemon_user_s"]),
        f(&tp["daemon_system_s"])
    );
    println!(
        "| machine CPU busy, throughput run (all cores, servers included) | {:.0} % | |",
        f(&tp["machine_busy"]) * 100.0
    );
    if let Some(p) = o["pathological"].as_object() {
        for (name, v) in p {
            println!(
                "| explain {name} ({:.1} MiB) | {:.1} ms, peak {:.1} MiB | ≤ 100 ms |",
                f(&v["size"]) / 1048576.0,
                f(&v["ms"]),
                f(&v["peak_kib"]) / 1024.0
            );
        }
    }
    let b = &o["baseline"];
    if b.is_object() {
        for (k, label) in [("current", "this build"), ("baseline", "baseline")] {
            println!(
                "| {label}: median of {} runs, alternating ({}) | {:.0} msg/s, {:.3} ms CPU per mail | |",
                b["rounds"],
                b[k]["binary"].as_str().unwrap_or(""),
                f(&b[k]["msg_per_s"]),
                f(&b[k]["cpu_ms_per_mail"]),
            );
        }
        println!(
            "| this build / baseline | throughput × {:.2}, CPU per mail × {:.2} | ≥ 1, ≤ 1 |",
            f(&b["throughput_ratio"]),
            f(&b["cpu_per_mail_ratio"]),
        );
    }
    println!(
        "| load average start / end | {} / {} | |",
        o["machine"]["loadavg_start"].as_str().unwrap_or(""),
        o["machine"]["loadavg_end"].as_str().unwrap_or("")
    );
}
