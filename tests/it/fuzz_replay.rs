//! Replays every fuzz finding in tests/fixtures/fuzz through the `pipeline` fuzz body: none may panic or take over a second.

use crate::fuzz_pipeline::pipeline;
use crate::harness::repo;
use std::time::{Duration, Instant};

#[test]
fn every_fuzz_finding_stays_fixed() {
    let dir = repo().join("tests/fixtures/fuzz");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_none_or(|e| e != "md"))
        .collect();
    files.sort();
    for f in &files {
        let data = std::fs::read(f).unwrap();
        let t0 = Instant::now();
        let r = std::panic::catch_unwind(|| pipeline(&data));
        let took = t0.elapsed();
        assert!(r.is_ok(), "{} panics again", f.display());
        assert!(
            took < Duration::from_secs(1),
            "{} took {took:?}",
            f.display()
        );
    }
    assert!(!files.is_empty(), "no fixtures in {}", dir.display());
}
