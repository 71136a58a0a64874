//! The shared test kit: the private mail stack on loopback, the test config, waiting on conditions, `ticketd run` as a process, and the load generator; used by the integration tests (tests/it), the benches and examples/bench.rs.
//!
//! Included with `#[path = "../kit/mod.rs"] mod kit;` (the path from the
//! including file), so that each target compiles the same code. Each target
//! uses a part of it.
#![allow(dead_code)]

pub mod loadgen;
pub mod offline;
pub mod postgres;
pub mod process;
pub mod stack;
pub mod wait;

/// The repository this kit belongs to.
pub fn repo() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}
