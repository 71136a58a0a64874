//! The heart: a pure function from a mail and what the database knows to what should happen. No I/O, no clock.
//!
//! This file only declares the parts and re-exports what the rest of
//! ticketd uses; no part imports it. The files depend on each other one way
//! (a file only imports those listed before it here, roughly):
//!
//! - `plan`: the shared types (`Input`, `MailboxView`, `ReplyPlan`,
//!   `Decision`) and helpers; `limits`: the reply buckets; `quarantine`.
//! - `timer`: what every timer kind shares (`TimerInput`, `TimerDecision`,
//!   the notice); above it one file per kind: `escalation`, `sla`,
//!   `waiting` (what a ticket's new state does to its timers), `rma` (the
//!   RMA a new ticket asks for, the staff steps, its deadlines); and
//!   `fire` (`on_timer`), which sends a due timer to its kind's file.
//! - `action`: the staff actions; `staff`: staff by mail; `person`,
//!   `machine`: a person's and a machine's mail; `sort`: [`decide`] itself.

mod action;
mod escalation;
mod fire;
#[cfg(test)]
pub(crate) mod fixtures;
mod limits;
mod machine;
mod person;
mod plan;
mod quarantine;
mod rma;
mod sla;
mod sort;
mod staff;
#[cfg(test)]
mod tests;
mod timer;
mod waiting;

pub use action::{ActionInput, assign, note, set_severity, set_status, staff_reply};
pub use fire::on_timer;
#[cfg(test)]
pub use fixtures::sample_template_data;
pub use limits::{bucket_level, extra_bucket_keys};
pub use person::request_text;
pub use plan::{Decision, Evidence, Input, MailboxView, ReplyPlan, TicketView};
pub use quarantine::quarantine;
pub use rma::{RmaOutcome, rma_action};
pub use sort::decide;
pub use staff::{authority, staff_target};
pub use timer::{TimerDecision, TimerInput};
