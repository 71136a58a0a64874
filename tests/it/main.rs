//! End-to-end tests: the daemon against a real Dovecot and a real SMTP server on loopback.

mod chaos;
mod cli;
mod corpus;
mod dkim;
mod forgery;
#[path = "../../fuzz/pipeline.rs"]
mod fuzz_pipeline;
mod fuzz_replay;
mod harness;
mod header_differential;
mod hostile;
mod hygiene;
#[path = "../kit/mod.rs"]
mod kit;
mod loadgen;
mod logs;
mod maintenance;
mod metrics;
mod mutt;
mod oauth;
mod outbox_faults;
mod package;
mod packs;
mod pipeline;
mod postgres;
mod proxy;
mod receiver;
mod replay;
mod replies;
mod rma;
mod rules;
mod service;
mod slices;
mod staff;
mod staff_commands;
mod staff_replies;
mod standalone;
mod submission;
mod tidy;
mod timers;
mod tls;
mod unit;
mod webhooks;
