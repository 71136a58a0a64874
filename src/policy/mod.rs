//! The vendor policy engine: a pack's rules, compiled from TOML, applied to one request at its arrival. Pure: no I/O, no clock.
//!
//! A pack describes its vendor with a few kinds of entries, each carrying the
//! rule ID it implements (`rule = "NX-03"`):
//!
//! - `[calendar]`: opening hours, holidays, closures ([`crate::calendar`]).
//! - `[warranty]`: standard terms, model series, extensions ([`crate::warranty`]).
//! - `[tiers]`, `[severity]`: how the tier and the severity are read.
//! - `[[topic]]`: named sets of words and phrases in every language (out of
//!   scope, refund, …), with `not` phrases that do not count ("DC replacement").
//! - `[facts]`: extra patterns for the canonical facts a request can carry.
//! - `[[sla]]`: first-response times by condition, on the business or the 24×7 clock.
//! - `[[escalation]]`: steps by severity, on the calendar clock from the report.
//! - `[[require]]`: the facts a request must carry; what is missing is asked for.
//! - `[[deadline]]`, `[[promise]]`: dates computed from the request or the contract
//!   (a promise may wait for a deadline: `not_before`).
//! - `[[quota]]`: counted allowances (tickets a year, on-site visits a term).
//! - `[[route]]`, `[[staff]]`: who handles it, and what staff must decide.
//! - `[[mailbox]]`: who may use a mailbox (24x7@).
//! - `[versions]`: release history, for how long a superseded version is supported.
//! - `[[notice]]`: the sentences the acknowledgement carries, in en, ja and es.
//! - `[rma]`: how RMA codes are formed and issued, and the deadlines they start.
//! - `[lifecycle]`: reminding and closing tickets that wait on the customer; reopening.
//!
//! Entries are switched on by `when`, a list of conditions that must all hold:
//! `new`, `followup`, `open`, `closed` (business hours at arrival), `contract`,
//! `attachments`, `extended` (under an extended warranty), `warranty_hold`,
//! `ineligible` (a `[[mailbox]]` rule refused the sender), `quota_exhausted`,
//! `unsupported_version`, `unknown_version` (a version the `[versions]` list lacks), `quota_unsold` (a sold allowance the customer has none of), `missing`, `rma_issued` (the ticket has an RMA code), and `key=value` forms: `mailbox=rma`,
//! `tier=gold|silver`, `severity=1`, `severity<=2`, `plan=onsite`,
//! `topic=refund`, `warranty=expired`, `fact=company` (`fact=company,tax_id`:
//! both), `past=<deadline id>`
//! (the deadline was computed and has passed), `has=<deadline id>` (it was
//! computed: its inputs, such as a ship date, were known), `language=ja`. A leading `!` negates; `|` separates alternatives.

mod checks;
mod compile;
mod compiled;
mod conditions;
mod evaluate;
mod facts;
mod lifecycle;
mod raw;
mod rma;
#[cfg(test)]
mod tests;
mod time;

pub use compiled::Policy;
pub use evaluate::*;
pub use facts::{FACTS, fact_name};
pub use lifecycle::*;
pub use raw::*;
pub use rma::*;
pub use time::ClockKind;

pub use crate::model::Span;
