//! cargo-fuzz target `pipeline`: parse, classify, extract, thread, decide and reply text over arbitrary bytes.
#![no_main]

#[path = "../pipeline.rs"]
mod pipeline;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    pipeline::pipeline(data);
});
