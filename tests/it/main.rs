//! End-to-end tests: the daemon against a real Dovecot and a real SMTP server on loopback.

mod cli;
mod harness;
mod hygiene;
mod packs;
mod pipeline;
mod rules;
