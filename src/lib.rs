//! ticketd: an email ticket intake daemon.
//!
//! Modules in pipeline order:
//! - [`model`]: the types every layer shares (ticket ids and states, events, the decision's inputs).
//! - [`config`], [`pack`]: what to watch and which vendor rules apply; [`diag`]: their file:line problems;
//!   [`layout`]: where the shipped templates and packs are found ([`builtin`]: the copies compiled in).
//! - [`imap`]: one watcher per mailbox, fetching new mail and acknowledging it after the commit.
//! - [`parse`] -> [`classify`] -> [`extract`] -> [`thread`]: reading a mail; [`reply_text`]:
//!   what the person wrote now, without quotes and signature; [`commands`]: staff commands;
//!   [`forward`]: a customer's mail a staff member forwards.
//! - [`contracts`], [`warranty`]: entitlements from a CSV and the warranty they give.
//! - [`calendar`], [`policy`]: business calendars and the vendor's rules, applied purely.
//! - [`decide`]: the pure decision; [`intake`] glues reading, deciding and [`store`];
//!   [`staff_lookup`]: what a staff mail's commands and forwards need of the store.
//! - [`templates`], [`compose`], [`outgoing`]: replies as rendered bytes, queued in the [`store`] outbox.
//! - [`outbox`]: sends queued mail over SMTP; [`scheduler`]: fires due timers (escalations, SLA, RMA, reminders).
//! - [`hooks`]: webhook bodies and signatures; [`webhooks`]: sends the deliveries the store queued with their events.
//! - [`net`]: TCP and the one TLS configuration; [`http`]: the one HTTP client and server on it;
//!   [`oauth`]: OAuth2 access tokens for the logins;
//!   [`secret`]: passwords and tokens that never print.
//! - [`actions`]: staff actions from the shell (RMA steps, answers, notes), one transaction each;
//!   [`admin`]: backup, contacts and quarantine release for the command line.
//! - [`daemon`]: supervises the tasks ([`shared`]: what they share; [`health`]: their heartbeats
//!   and what systemd is told; [`metrics`]: Prometheus `/metrics` and `/healthz`); [`explain`] shows a decision
//!   without acting on it; [`replay`] shows what a changed pack would have done to the stored mail.
//! - [`dkim`]: proof of a sender's domain from the raw mail (DKIM signatures, trusted
//!   Authentication-Results); [`header_section`]: the header section read strictly, and
//!   whether any reader could read it otherwise (then nothing in it proves anything).
//! - [`clock`], [`backoff`], [`text`]: time, retry pacing and text helpers, shared by all;
//!   [`logging`]: the journal, plain or terminal log output.

#[cfg(test)]
extern crate self as ticketd;

pub mod actions;
pub mod admin;
pub mod backoff;
pub mod builtin;
pub mod calendar;
pub mod classify;
pub mod clock;
pub mod cluster;
pub mod commands;
pub mod compose;
pub mod config;
pub mod contracts;
pub mod daemon;
pub mod decide;
pub mod diag;
pub mod dkim;
pub mod dns_keys;
pub mod dsn;
pub mod explain;
pub mod extract;
pub mod forward;
pub mod header_section;
pub mod health;
pub mod hooks;
pub mod http;
pub mod imap;
pub mod intake;
pub mod layout;
pub mod leases;
pub mod logging;
pub mod metrics;
pub mod model;
pub mod net;
pub mod oauth;
pub mod outbox;
pub mod outgoing;
pub mod pack;
pub mod parse;
pub mod policy;
pub mod replay;
pub mod reply_text;
pub mod scheduler;
pub mod secret;
pub mod shared;
pub mod staff_lookup;
pub mod store;
pub mod templates;
pub mod text;
pub mod thread;
pub mod token;
pub mod warranty;
pub mod webhooks;
