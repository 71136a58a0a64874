//! The `pipeline` fuzz body, shared by the cargo-fuzz target, the stable harness (`examples/fuzz_pipeline.rs`) and the fixture replay test.

use std::sync::OnceLock;
use ticketd::intake::Engine;
use ticketd::store::Store;

struct Fixed {
    engine: Engine,
    store: std::sync::Mutex<Store>,
}

fn fixed() -> &'static Fixed {
    static F: OnceLock<Fixed> = OnceLock::new();
    F.get_or_init(|| Fixed {
        engine: ticketd::explain::default_engine(&templates()).expect("shipped templates load"),
        store: std::sync::Mutex::new(Store::in_memory().expect("in-memory store")),
    })
}

/// The repository's templates, from the root crate (tests, the stable
/// harness) or from the `fuzz/` crate.
fn templates() -> std::path::PathBuf {
    let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = if here.join("templates").is_dir() {
        here
    } else {
        here.parent().unwrap_or(here)
    };
    root.join("templates")
}

/// Runs `data` through parse, classify, extract, thread, decide and the
/// reply-text reader (as a mail, as a bare body and as HTML). Panics on a
/// broken invariant; the callers treat a panic as a finding.
pub fn pipeline(data: &[u8]) {
    let f = fixed();
    let store = f.store.lock().unwrap_or_else(|e| e.into_inner());
    let view = ticketd::explain::default_mailbox(&f.engine);
    let now = chrono::DateTime::UNIX_EPOCH;
    let mut plan = f
        .engine
        .plan(&store, view, data, now, now)
        .expect("planning reads only an in-memory store");
    let prefix = &f.engine.ticket_prefix;
    let _ = ticketd::thread::tag_in(&plan.inbound.subject, prefix);
    let _ = ticketd::thread::tags_in_text(&plan.inbound.text, prefix);
    let _ = ticketd::thread::clean_subject(&plan.inbound.subject, prefix);
    assert!(
        plan.inbound.reply_text.len() <= plan.inbound.text.len() || plan.inbound.text_from_html,
        "the reply text is part of the text"
    );
    let body = String::from_utf8_lossy(data);
    let reply = ticketd::reply_text::extract(&body);
    assert!(
        reply.len() <= body.len(),
        "the reply text is part of the body"
    );
    let _ = ticketd::reply_text::extract_html(&body);
    let _ = f.engine.render(
        &mut plan,
        Some(ticketd::model::TicketId(1)),
        Some(data),
        now,
    );
}
