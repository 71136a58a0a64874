//! SQLite storage: the only module that knows SQL. The schema and its
//! migrations, lookups for the decision, the one transaction per message,
//! the outbox queue and the listings.
//!
//! Every value crossing this boundary is a `model` type; SQL details
//! (AUTOINCREMENT's `sqlite_sequence`, `INSERT OR IGNORE`, savepoints) stay here.

mod actions;
mod admin;
mod cluster;
mod columns;
mod conn;
mod contracts;
mod copy;
pub mod db;
mod history;
mod intake;
mod journal;
mod listings;
mod lock;
mod lookup;
mod merge;
mod outbox;
mod pg;
mod rma;
mod rows;
mod schema;
mod target;
#[cfg(test)]
mod tests;
mod timer_columns;
mod timers;
mod webhooks;
mod writers;

pub use admin::{ContactRow, Gauges, StoredMessage};
pub use cluster::{Fence, LeaseLost, LeaseRow, NodeRow};
pub use columns::{parse_ts, ts};
pub use conn::Store;
pub use copy::Counts;
pub use history::TicketHistory;
pub use intake::{MessageTx, WriteMode};
pub use journal::SentJournal;
pub use lock::RunLock;
pub use rows::{
    ImportStats, MailboxState, MessageRow, Origin, OutboxRow, QuarantineRow, TicketSummary,
};
pub use target::{Location, PgTarget, off_async};
pub use timers::Settle;
pub use webhooks::DeliveryRow;
