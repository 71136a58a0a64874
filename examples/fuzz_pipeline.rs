//! The `pipeline` fuzz target on stable Rust: a time-bounded mutational loop over the corpus seeds.
//!
//! `cargo run --example fuzz_pipeline -- [SECONDS] [SEED_DIR...]` (defaults: 60 s,
//! `tests/fixtures/corpus`, `tests/fixtures/fuzz` and the corpus
//! `TICKETD_EXTRA_CORPUS` names, if any). Each input is a corpus file
//! mutated by byte flips, inserted tokens mail parsers trip on (encoded words,
//! ISO-2022-JP escapes, bare CR, boundaries, quote headers), cuts, repeats and
//! splices. An input that panics or takes over a second is written to
//! `tests/fixtures/fuzz/` (which a normal test replays) and reported.

#[path = "../fuzz/pipeline.rs"]
mod pipeline;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const SLOW: Duration = Duration::from_secs(1);
const MAX_INPUT: usize = 4 * 1024 * 1024;

const TOKENS: &[&[u8]] = &[
    b"=?UTF-8?B?44GC44?=",
    b"=?ISO-2022-JP?B?GyRCPmM=?=",
    b"=?x?Q?=E3=81?=",
    b"=?",
    b"?=",
    b"\x1b$B",
    b"\x1b(I",
    b"\x1b(B",
    b"\r",
    b"\n",
    b"\r\n\r\n",
    b"\n> ",
    b"\n>>>>>>>>>> ",
    b"\nOn Mon, 2 Mar 2026 at 10:00, Ann <a@b.c> wrote:\n",
    b"\n2026\xe5\xb9\xb4 10:00 <a@b>:\n",
    b"\n-----Original Message-----\n",
    b"\nFrom: a\nSent: b\nTo: c\nSubject: d\n",
    b"\n-- \n",
    b"\nSent from my iPhone\n",
    b"Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\n",
    b"Content-Type: text/html; charset=iso-2022-jp\r\n",
    b"Content-Transfer-Encoding: base64\r\n",
    b"Content-Transfer-Encoding: quoted-printable\r\n=\r\n",
    b"<blockquote><div><hr><br>&#x10FFFF;&amp;&",
    b"<!--",
    b"Subject: ",
    b"\xff\xfe\xc0\x80",
    b"\x00",
];

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn mutate(rng: &mut fastrand::Rng, seeds: &[Vec<u8>], mut data: Vec<u8>) -> Vec<u8> {
    for _ in 0..rng.usize(1..=8) {
        let at = rng.usize(..=data.len());
        match rng.u8(..7) {
            0 if !data.is_empty() => {
                let i = rng.usize(..data.len());
                data[i] ^= 1 << rng.u8(..8);
            }
            1 => {
                let t = TOKENS[rng.usize(..TOKENS.len())];
                data.splice(at..at, t.iter().copied());
            }
            2 => data.truncate(at),
            3 if at < data.len() => {
                let end = (at + rng.usize(1..=256)).min(data.len());
                let chunk = data[at..end].to_vec();
                for _ in 0..rng.usize(1..=64) {
                    data.splice(at..at, chunk.iter().copied());
                }
            }
            4 => {
                let other = &seeds[rng.usize(..seeds.len())];
                let from = rng.usize(..=other.len());
                data.splice(at.., other[from..].iter().copied());
            }
            5 if at < data.len() => {
                let end = (at + rng.usize(1..=64)).min(data.len());
                data.drain(at..end);
            }
            _ => {
                let n = rng.usize(1..=16);
                data.splice(at..at, (0..n).map(|_| rng.u8(..)));
            }
        }
        data.truncate(MAX_INPUT);
    }
    data
}

fn save(dir: &Path, kind: &str, data: &[u8]) -> PathBuf {
    let name = format!("{kind}-{}.eml", &ticketd::parse::content_hash(data)[..16]);
    let path = dir.join(name);
    std::fs::create_dir_all(dir).expect("create the findings folder");
    std::fs::write(&path, data).expect("write a finding");
    path
}

fn main() {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut args = std::env::args().skip(1);
    let seconds: u64 = args.next().map_or(60, |s| s.parse().expect("SECONDS"));
    let mut dirs: Vec<PathBuf> = args.map(PathBuf::from).collect();
    let findings = repo.join("tests/fixtures/fuzz");
    if dirs.is_empty() {
        dirs = vec![repo.join("tests/fixtures/corpus"), findings.clone()];
        dirs.extend(std::env::var_os("TICKETD_EXTRA_CORPUS").map(PathBuf::from));
    }
    let mut files = Vec::new();
    for d in &dirs {
        walk(d, &mut files);
    }
    files.sort();
    let seeds: Vec<Vec<u8>> = files
        .iter()
        .filter(|p| !p.extension().is_some_and(|e| e == "tsv" || e == "md"))
        .filter_map(|p| std::fs::read(p).ok())
        .collect();
    assert!(
        !seeds.is_empty(),
        "no seeds found in {}",
        dirs.iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let seed = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x7469_636b_6574);
    let mut rng = fastrand::Rng::with_seed(seed);
    // Panics are findings, reported below; keep their messages short.
    std::panic::set_hook(Box::new(|info| eprintln!("panic: {info}")));
    let start = Instant::now();
    let deadline = start + Duration::from_secs(seconds);
    let (mut runs, mut found) = (0u64, 0u32);
    let mut slowest = Duration::ZERO;
    // The seeds themselves first, then mutations until the deadline.
    let mut i = 0;
    while Instant::now() < deadline {
        let input = if i < seeds.len() {
            seeds[i].clone()
        } else {
            let base = seeds[rng.usize(..seeds.len())].clone();
            mutate(&mut rng, &seeds, base)
        };
        i += 1;
        let t0 = Instant::now();
        let r = std::panic::catch_unwind(|| pipeline::pipeline(&input));
        let took = t0.elapsed();
        slowest = slowest.max(took);
        runs += 1;
        if r.is_err() {
            found += 1;
            println!("crash: {}", save(&findings, "crash", &input).display());
        } else if took > SLOW {
            found += 1;
            println!(
                "slow ({took:?}): {}",
                save(&findings, "slow", &input).display()
            );
        }
    }
    println!(
        "fuzz pipeline: {runs} inputs ({} seeds) in {:?}, seed {seed}, slowest {slowest:?}, {found} findings",
        seeds.len(),
        start.elapsed()
    );
    if found > 0 {
        std::process::exit(1);
    }
}
