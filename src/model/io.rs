//! What the decision reads from the store (`Lookup`) and what it asks the store to write.

use super::entitlement::ContractMatch;
use super::event::Event;
use super::vocab::{RmaState, TicketId, TicketStatus, TimerKind};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Serialize)]
pub struct TicketInfo {
    pub id: TicketId,
    pub subject: String,
    pub status: TicketStatus,
    pub requester: String,
    pub language: String,
    /// The mailbox the ticket was opened in.
    pub mailbox: String,
    /// Every address that has written on this ticket.
    pub participants: Vec<String>,
    pub created_at: DateTime<Utc>,
    /// Facts the ticket's earlier mail carried (the `ticket_facts` projection).
    pub facts: Vec<String>,
    /// Staff notes already recorded on the ticket (its `staff` events).
    pub staff_notes: Vec<String>,
    pub updated_at: DateTime<Utc>,
    /// Its severity: the first mail's, until staff change it.
    pub severity: Option<u8>,
    /// When staff last answered the customer on this ticket (its latest
    /// `staff_reply`); `None` while nobody has.
    pub last_answer: Option<DateTime<Utc>>,
    /// The staff member (a `[staff.members]` name) the ticket is assigned
    /// to (`assigned` events); they hear of it instead of the whole queue.
    pub owner: Option<String>,
    /// The ticket's pending timers.
    pub timers: Vec<PendingTimer>,
    /// The ticket's RMAs.
    pub rmas: Vec<RmaRecord>,
    /// The ticket it was merged into (`merged_into` event), if it was.
    pub merged_into: Option<TicketId>,
}

impl TicketInfo {
    /// Staff have answered the customer on this ticket.
    pub fn answered(&self) -> bool {
        self.last_answer.is_some()
    }
}

/// A pending timer of a ticket, as the decision sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PendingTimer {
    pub kind: TimerKind,
    /// What it was set for; with `kind`, which timer of the ticket it is.
    pub cause: TimerCause,
    /// Running toward its due instant, or paused.
    pub state: TimerState,
}

impl PendingTimer {
    /// Whether this is the timer of `kind` set for `cause`.
    pub fn is(&self, kind: TimerKind, cause: &TimerCause) -> bool {
        self.kind == kind && self.cause == *cause
    }

    /// Its due instant, unless it is paused.
    pub fn due(&self) -> Option<DateTime<Utc>> {
        match self.state {
            TimerState::Running { due } => Some(due),
            TimerState::Paused { .. } => None,
        }
    }
}

/// Where a pending timer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TimerState {
    /// It fires at `due`.
    Running { due: DateTime<Utc> },
    /// Its clock is stopped (an SLA clock while the ticket waits on the
    /// customer): the time it had left, in seconds on its clock. It has no
    /// due instant until it is resumed.
    Paused { left_secs: i64 },
}

/// A change to a pending timer: paused with the time it has left, or
/// resumed at a new due instant.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum TimerUpdate {
    Pause {
        kind: TimerKind,
        cause: TimerCause,
        left_secs: i64,
    },
    Resume {
        kind: TimerKind,
        cause: TimerCause,
        due: DateTime<Utc>,
    },
}

impl TimerUpdate {
    /// The timer it changes.
    pub fn timer(&self) -> (TimerKind, &TimerCause) {
        match self {
            TimerUpdate::Pause { kind, cause, .. } | TimerUpdate::Resume { kind, cause, .. } => {
                (*kind, cause)
            }
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ContactInfo {
    pub address: String,
    pub language: Option<String>,
    pub undeliverable: bool,
    /// Why the contact is undeliverable (the bounce that said so).
    pub undeliverable_reason: Option<String>,
}

/// A message already stored under the same identity (Message-ID and sender, or content).
#[derive(Debug, Clone, Serialize)]
pub struct Duplicate {
    pub row: i64,
    pub mailbox: String,
    pub ticket_id: Option<TicketId>,
}

/// The stored level of one reply token bucket (`rcpt:<address>` or `ticket:<id>`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BucketLevel {
    pub key: String,
    pub tokens: f64,
    pub updated_at: DateTime<Utc>,
}

/// Which bucket a new level is for.
#[derive(Debug, Clone, PartialEq)]
pub enum BucketKey {
    Recipient(String),
    Ticket(TicketId),
    /// The ticket this message creates.
    NewTicket,
    /// A bucket of its own name: the global acknowledgement cap, the staff
    /// notice limits (`decide::limits`).
    Named(String),
}

impl BucketKey {
    pub fn name(&self) -> Option<String> {
        match self {
            BucketKey::Recipient(a) => Some(format!("rcpt:{}", a.to_ascii_lowercase())),
            BucketKey::Ticket(t) => Some(format!("ticket:{t}")),
            BucketKey::NewTicket => None,
            BucketKey::Named(n) => Some(n.clone()),
        }
    }
}

/// A contact that must not be written to any more.
#[derive(Debug, Clone, PartialEq)]
pub struct Undeliverable {
    pub address: String,
    pub reason: String,
}

/// Writes besides the ticket that one message causes.
#[derive(Debug, Clone, Default)]
pub struct SideEffects {
    /// New bucket levels, stamped with the apply time.
    pub buckets: Vec<(BucketKey, f64)>,
    pub undeliverable: Vec<Undeliverable>,
    /// Timers to set on the message's ticket (kept if already set).
    pub timers: Vec<TimerPlan>,
    /// Pending timers of the ticket to end (their reason is gone).
    pub cancel_timers: Vec<TimerCancel>,
    /// Pending timers of the ticket to pause or resume, after those set.
    pub timer_updates: Vec<TimerUpdate>,
    /// The mail is held on its ticket (unproven staff mail): its Message-ID
    /// does not join the ticket's thread, so a reply to it is not threaded in.
    pub hold: bool,
    /// A new ticket's acknowledgement was held back by the cap on all of
    /// them (`[limits] new_ticket_acks`; counted in the metrics).
    pub acks_capped: bool,
    /// The Message-IDs this mail refers to, kept for those not seen yet
    /// with the people of this mail (its sender and recipients).
    pub awaited: Vec<String>,
    pub awaited_people: Vec<String>,
    /// The mail's ticket is merged into another (`#merge`), after the rest.
    pub merge: Option<MergePlan>,
}

/// A merge of ticket `source` into `into` (`#merge`, `ticketd merge`), as
/// the store carries it out after the source's own change: the target's
/// timers that end or come due sooner, then the source's messages, events,
/// RMAs (but `rmas_kept`), pending timers, thread ids, facts and mail move;
/// the source is closed with a `merged_into` event, the target gets a
/// `merged` one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MergePlan {
    pub source: TicketId,
    pub into: TicketId,
    pub by: String,
    /// The source's state before (a `status_changed` to closed is recorded unless it was closed).
    pub source_was: TicketStatus,
    /// Target timers that end: a source timer of the same kind due sooner stands instead.
    pub cancel_on_target: Vec<TimerCancel>,
    /// Target timers due sooner: a source timer of the same kind and cause was.
    pub replan_on_target: Vec<TimerPlan>,
    /// Moved timers paused by the source's state, resumed for the target's.
    pub updates_on_target: Vec<TimerUpdate>,
    /// Parts whose RMA stays on the source (cancelled): the target has its own.
    pub rmas_kept: Vec<String>,
}

/// What the database knows that bears on one mail.
#[derive(Debug, Clone, Default)]
pub struct Lookup {
    pub tagged: Option<TicketInfo>,
    pub referenced: Option<TicketInfo>,
    /// A ticket whose stored mail referenced this one before it came (or,
    /// when nothing this one refers to is stored, referenced the same
    /// missing mail), with that mail's people (sender and recipients).
    pub awaited_by: Option<(TicketInfo, Vec<String>)>,
    pub duplicate: Option<Duplicate>,
    pub contact: Option<ContactInfo>,
    /// The number a ticket opened by this mail would get (for `explain`).
    pub next_ticket_id: TicketId,
    /// The sender's contract, if the entitlements know one.
    pub contract: Option<ContractMatch>,
    /// Uses of each pack quota in its current period.
    pub quota_used: BTreeMap<String, u32>,
    /// The customer's last mail on the ticket a staff mail is about, which
    /// its relayed answer replies to (read only for staff mail).
    pub customer_thread: Option<String>,
    /// That ticket's customer is marked undeliverable (read only for staff mail).
    pub customer_undeliverable: bool,
    /// The ticket of our mail that a bounce returns (by its original Message-ID).
    pub bounced: Option<TicketInfo>,
    /// Reply buckets of the sender and of the tickets the mail may belong to.
    pub buckets: Vec<BucketLevel>,
    /// The recipients (lower-cased) of our mail that a bounce returns.
    pub bounced_recipients: Vec<String>,
    /// The stored contacts among a bounce's failed recipients and those of
    /// the mail it returns.
    pub bounce_contacts: Vec<ContactInfo>,
    /// The ticket a staff mail's `#merge N` names (read only for staff mail).
    pub merge_into: Option<TicketInfo>,
    /// That ticket's customer's last mail, which their notice answers.
    pub merge_thread: Option<String>,
    /// The organisation (the contract's company) of each requester a merge
    /// joins, by address; an address with no contract is absent.
    pub organisations: BTreeMap<String, String>,
    /// For a member's mail that names no ticket and opens one for a
    /// customer (a forward, `#open ADDRESS`): that customer's mail and what
    /// the database knows of it (read only for staff mail).
    pub opening: Option<Box<Opening>>,
}

/// A ticket a member's mail opens for a customer: the customer's mail they
/// forwarded (empty for `#open ADDRESS`), the member's own text, and what
/// the database knows as if that mail had come from the customer (their
/// contact, contract, reply buckets, a ticket it is on already).
#[derive(Debug, Clone, Default)]
pub struct Opening {
    pub raw: Vec<u8>,
    /// How it was forwarded (`attached`, `outlook`, `gmail`, ...), or `open`.
    pub format: String,
    /// The member's text above the forward: commands, then their note.
    pub note: String,
    pub lookup: Lookup,
}

impl Lookup {
    pub fn bucket(&self, key: &str) -> Option<&BucketLevel> {
        self.buckets.iter().find(|b| b.key == key)
    }
}

/// What the message does to tickets.
#[derive(Debug, Clone)]
pub enum TicketWrite {
    None,
    New {
        subject: String,
        status: TicketStatus,
        language: String,
        requester: String,
        requester_name: Option<String>,
    },
    /// A person wrote on the ticket: it is open again, or waits on the customer.
    Update {
        id: TicketId,
        status: TicketStatus,
    },
    /// A machine wrote on the ticket: recorded, state unchanged.
    Attach {
        id: TicketId,
    },
}

/// A file attached to a mail we send (a relayed staff answer's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutAttachment {
    pub name: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// One mail to send, fully rendered.
#[derive(Debug, Clone)]
pub struct NewMail {
    pub kind: String,
    pub message_id: String,
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    /// The subject it was rendered with: kept with the queued mail.
    pub subject: String,
    pub raw: Vec<u8>,
}

/// What the store wrote for one message.
#[derive(Debug, Clone, Serialize)]
pub struct Applied {
    pub message_row: i64,
    pub ticket_id: Option<TicketId>,
    pub queued: Vec<i64>,
}

/// Which clock an SLA target counts on (pausing and resuming count on it too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlaClock {
    /// The pack's business hours and holidays.
    Business,
    /// Every hour of every day.
    #[serde(rename = "24x7")]
    AllHours,
    /// Calendar days (counted in the pack's zone).
    Calendar,
}

impl SlaClock {
    pub fn as_str(self) -> &'static str {
        match self {
            SlaClock::Business => "business",
            SlaClock::AllHours => "24x7",
            SlaClock::Calendar => "calendar",
        }
    }
}

/// Which SLA target a timer watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlaTarget {
    /// The first staff answer.
    FirstResponse,
}

/// Why a timer was set: what `decide::on_timer` checks again when it comes
/// due, and, with its kind, which timer of the ticket it is (a ticket has
/// one timer per kind and cause). The store keeps it as JSON (serde);
/// nothing reads it from anything else.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(tag = "for", rename_all = "snake_case")]
pub enum TimerCause {
    /// A step of an escalation ladder (NX-03): the recipient the pack names
    /// and the step's span from the report as the pack writes it ("8h");
    /// `None` only for a step whose span was never recorded.
    Escalation { to: String, after: Option<String> },
    /// An SLA target, on its clock.
    Sla { target: SlaTarget, clock: SlaClock },
    /// An RMA deadline (the pack's `[[rma.deadline]]` id) of one part (empty:
    /// the whole unit): its reminder and the deadline itself.
    RmaDeadline { deadline: String, part: String },
    /// An approved RMA of one part that waits for its code (QN-05).
    RmaIssue { part: String },
    /// A ticket waiting on its customer since `since` for what is `missing`:
    /// its reminder and its close. A later wait has timers of its own.
    Waiting {
        since: DateTime<Utc>,
        missing: Vec<String>,
    },
}

impl TimerCause {
    /// Whether a timer of `kind` can have this cause.
    pub fn fits(&self, kind: TimerKind) -> bool {
        match self {
            TimerCause::Escalation { .. } => kind == TimerKind::Escalation,
            TimerCause::Sla { .. } => kind.is_sla(),
            TimerCause::RmaDeadline { .. } => kind.is_rma(),
            TimerCause::RmaIssue { .. } => kind == TimerKind::RmaIssueDue,
            TimerCause::Waiting { .. } => kind.is_waiting(),
        }
    }
}

/// The cause as people read it in events, listings and logs (never read
/// back): "Director after 8h", "first response, business clock",
/// "rma_valid:A1-1", "issue:A1-1", "asked 2026-12-01T17:00Z: the serial number".
impl std::fmt::Display for TimerCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TimerCause::Escalation {
                to,
                after: Some(after),
            } => write!(f, "{to} after {after}"),
            TimerCause::Escalation { to, after: None } => f.write_str(to),
            TimerCause::Sla {
                target: SlaTarget::FirstResponse,
                clock,
            } => write!(f, "first response, {} clock", clock.as_str()),
            TimerCause::RmaDeadline { deadline, part } => write!(f, "{deadline}:{part}"),
            TimerCause::RmaIssue { part } => write!(f, "issue:{part}"),
            TimerCause::Waiting { since, missing } => write!(
                f,
                "asked {}: {}",
                since.format("%Y-%m-%dT%H:%MZ"),
                missing.join("; ")
            ),
        }
    }
}

/// A timer a decision sets: unique per (ticket, kind, cause), so setting
/// it again changes nothing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimerPlan {
    pub kind: TimerKind,
    pub cause: TimerCause,
    pub due: DateTime<Utc>,
    /// The rule ID it carries out.
    pub rule: String,
    /// The recipient the pack names (`[staff] recipients` maps it to addresses).
    pub to: Option<String>,
}

impl TimerPlan {
    /// Whether this is the timer of `kind` set for `cause`.
    pub fn is(&self, kind: TimerKind, cause: &TimerCause) -> bool {
        self.kind == kind && self.cause == *cause
    }
}

/// A stored pending timer, as the scheduler reads it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimerRow {
    pub id: i64,
    pub ticket: TicketId,
    #[serde(flatten)]
    pub plan: TimerPlan,
}

/// A staff step on an RMA (`ticketd rma approve|issue|shipped|received|returned`,
/// and by mail the same steps, `#rma STEP`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RmaVerb {
    /// The documents (QN-05) or the symptoms (AV-06) are verified.
    Approve,
    /// The code is given and sent to the customer.
    Issue,
    /// The replacement (and a prepaid return label) went out: the deadlines
    /// that count from the shipment start (IX-07).
    Shipped,
    /// The replacement reached the customer: the deadlines that count from
    /// its receipt start (QN-07).
    Received,
    /// The defective part is back: every deadline of the RMA ends.
    Returned,
}

impl RmaVerb {
    pub fn as_str(self) -> &'static str {
        match self {
            RmaVerb::Approve => "approve",
            RmaVerb::Issue => "issue",
            RmaVerb::Shipped => "shipped",
            RmaVerb::Received => "received",
            RmaVerb::Returned => "returned",
        }
    }

    pub const ALL: [RmaVerb; 5] = [
        RmaVerb::Approve,
        RmaVerb::Issue,
        RmaVerb::Shipped,
        RmaVerb::Received,
        RmaVerb::Returned,
    ];

    pub fn parse(s: &str) -> Option<RmaVerb> {
        RmaVerb::ALL
            .into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(s))
    }
}

impl std::fmt::Display for RmaState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One RMA of a ticket: keyed by (ticket, part). `part` is the serial or
/// part it covers, empty for the whole unit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RmaRecord {
    pub ticket: TicketId,
    pub part: String,
    pub code: Option<String>,
    pub state: RmaState,
    pub rule: String,
    /// The contract plans it was asked under (they pick its deadlines).
    pub plans: Vec<String>,
    pub requested_at: DateTime<Utc>,
    pub issued_at: Option<DateTime<Utc>>,
    pub shipped_at: Option<DateTime<Utc>>,
    pub received_at: Option<DateTime<Utc>>,
    pub returned_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// A pending timer to end because its reason is gone.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimerCancel {
    pub kind: TimerKind,
    pub cause: TimerCause,
    pub why: String,
}

/// What a staff action or a due timer changes on one ticket, written in one
/// transaction: its events, its state, timers set and ended, and the mail
/// it sends (`M` is a reply plan in `decide`, rendered mail in `store`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TicketChange<M> {
    pub events: Vec<Event>,
    pub status: Option<TicketStatus>,
    pub set_timers: Vec<TimerPlan>,
    pub cancel_timers: Vec<TimerCancel>,
    pub timer_updates: Vec<TimerUpdate>,
    pub mails: Vec<M>,
}

impl<M> Default for TicketChange<M> {
    fn default() -> Self {
        TicketChange {
            events: vec![],
            status: None,
            set_timers: vec![],
            cancel_timers: vec![],
            timer_updates: vec![],
            mails: vec![],
        }
    }
}

impl<M> TicketChange<M> {
    /// The same change with its mail turned into something else (rendered).
    pub fn with_mails<N>(self, mails: Vec<N>) -> TicketChange<N> {
        TicketChange {
            events: self.events,
            status: self.status,
            set_timers: self.set_timers,
            cancel_timers: self.cancel_timers,
            timer_updates: self.timer_updates,
            mails,
        }
    }
}
