//! `cargo run --release --example gen-corpus -- --count N --seed S --out DIR`: writes a deterministic corpus of support mail and its manifest (the test kit's load generator).

#[path = "../tests/kit/loadgen.rs"]
#[allow(dead_code)]
mod loadgen;

fn main() {
    let (opts, out) = match loadgen::parse_args(std::env::args().skip(1)) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let mails = loadgen::generate(&opts);
    if let Err(e) = loadgen::write(&out, &mails) {
        eprintln!("gen-corpus: writing {}: {e}", out.display());
        std::process::exit(1);
    }
    let n = |k: loadgen::Kind| mails.iter().filter(|m| m.kind == k).count();
    println!(
        "gen-corpus: {} mails ({} new, {} follow-ups, {} machine) in {}",
        mails.len(),
        n(loadgen::Kind::New),
        n(loadgen::Kind::FollowUp),
        n(loadgen::Kind::NoReply),
        out.display()
    );
}
