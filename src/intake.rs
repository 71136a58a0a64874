//! One message's way from raw bytes to committed effects: parse, classify, extract, thread, decide, apply.

use crate::classify::{Classification, classify_message};
use crate::clock::Clock;
use crate::config::{Config, Identity, Limits, MailboxConfig, StaffDirectory};
use crate::contracts::ContractBook;
use crate::decide::{self, Decision, Input, MailboxView, Prepared, ReplyPlan};
use crate::extract::{Extracted, extract};
use crate::model::{Event, Lookup, NewMail, Outcome, TicketId};
use crate::outgoing::{Rendered, Renderer};
use crate::pack::Pack;
use crate::parse::{Inbound, parse};
use crate::store::{Fence, MessageRow, Origin, Store, WriteMode};
use crate::thread;
use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use std::panic::{AssertUnwindSafe, catch_unwind};
use tracing::{debug, info_span};

/// How much of an oversized message is read to tell staff what it was.
const OVERSIZE_PEEK: usize = 64 * 1024;

/// The immutable part of the daemon that turns mail into decisions and mail.
#[derive(Debug)]
pub struct Engine {
    pub identity: Identity,
    pub pack: Pack,
    pub ticket_prefix: String,
    /// Renders the mail the plans ask for (`outgoing`).
    pub renderer: std::sync::Arc<Renderer>,
    pub limits: Limits,
    /// Entitlements read from a file instead of the database (`explain --contracts`).
    pub contracts: Option<std::sync::Arc<ContractBook>>,
    /// Who the recipients the pack names are (`[staff] recipients`).
    pub staff: StaffDirectory,
    /// Each configured mailbox's name, the address it answers from, its role.
    pub mailboxes: crate::config::Mailboxes,
    /// Where DKIM keys of staff mail come from (DNS; `explain` offline: nowhere).
    pub keys: std::sync::Arc<dyn crate::dkim::KeyResolver>,
}

/// A message as it came from the mailbox.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub uidvalidity: u32,
    pub uid: u32,
    /// The whole message, or only its header when it is over the size limit.
    pub raw: Vec<u8>,
    /// RFC822.SIZE as the server reported it.
    pub size: u64,
    /// INTERNALDATE.
    pub arrival: DateTime<Utc>,
}

/// Everything known about a mail and what should happen to it.
#[derive(Debug, Clone)]
pub struct Plan {
    pub inbound: Inbound,
    pub classification: Classification,
    pub extracted: Extracted,
    pub lookup: Lookup,
    pub decision: Decision,
    pub evidence: crate::decide::Evidence,
    pub prepared: Option<Prepared>,
}

/// A plan's parts, borrowed, for the decision's input.
#[derive(Clone, Copy)]
struct PlanRefs<'a> {
    inbound: &'a Inbound,
    classification: &'a Classification,
    extracted: &'a Extracted,
    evidence: &'a crate::decide::Evidence,
    lookup: &'a Lookup,
    prepared: Option<&'a Prepared>,
}

impl Plan {
    fn refs(&self) -> PlanRefs<'_> {
        PlanRefs {
            inbound: &self.inbound,
            classification: &self.classification,
            extracted: &self.extracted,
            evidence: &self.evidence,
            lookup: &self.lookup,
            prepared: self.prepared.as_ref(),
        }
    }
}

/// What a mail says, read without the database: the first half of a plan,
/// which can run before the store is locked.
#[derive(Debug, Clone)]
pub struct Read {
    pub inbound: Inbound,
    pub classification: Classification,
    pub extracted: Extracted,
    /// What the headers prove of a staff sender (checked only for one).
    pub evidence: crate::decide::Evidence,
    /// What deciding reads from the mail's words alone.
    pub prepared: Option<Prepared>,
}

/// A fetched mail read ahead of its plan (`Engine::read_fetched`): how the
/// reading went and how long it took, counted in the processing budget.
#[derive(Debug)]
pub struct ReadAhead {
    /// `None` when reading the mail panicked.
    read: Option<Read>,
    took: std::time::Duration,
}

/// What became of one message.
#[derive(Debug, Clone)]
pub struct Ingested {
    pub uid: u32,
    pub outcome: Outcome,
    pub class: crate::classify::Class,
    pub ticket_id: Option<TicketId>,
    pub queued: usize,
    pub reasons: Vec<String>,
    /// Its acknowledgement was held back by the cap on all of them.
    pub acks_capped: bool,
}

/// Why a relaxed signature proves nothing of a mail.
const RELAXED_CHANGES_READING: &str = "its signature hashed the body relaxed and white space it does not cover changes what ticketd reads of it (format=flowed, or MIME part headers): sign with simple body canonicalization, or answer a notification";

/// Whether what ticketd reads of `raw` (its text and attachments) is what
/// it reads of the body's relaxed form: then it depends only on what a
/// relaxed body hash covers.
fn reads_the_same_relaxed(raw: &[u8], inbound: &Inbound) -> bool {
    let relaxed = parse(&crate::dkim::relaxed_form(raw), inbound.arrival);
    let shape = |m: &Inbound| {
        let files: Vec<(Option<String>, String, usize)> = m
            .attachments
            .iter()
            .map(|a| (a.name.clone(), a.content_type.clone(), a.size))
            .collect();
        (m.text.clone(), m.text_from_html, files)
    };
    shape(&relaxed) == shape(inbound)
}

/// Why the From header cannot prove one person, if it cannot: it names
/// several mailboxes or a group, or a Sender header names someone else.
fn one_author(inbound: &Inbound) -> Option<String> {
    if inbound.from_mailboxes != 1 {
        return Some(format!(
            "its From names {} mailboxes, not one",
            inbound.from_mailboxes
        ));
    }
    let from = inbound.from_header_address()?;
    match &inbound.sender_header {
        Some(s) if !s.eq_ignore_ascii_case(from) => {
            Some(format!("its Sender {s} is not its From {from}"))
        }
        _ => None,
    }
}

pub fn mailbox_view(m: &MailboxConfig) -> MailboxView<'_> {
    MailboxView {
        name: &m.name,
        role: m.role,
        address: &m.address,
        accept_lists: m.accept_lists,
    }
}

impl Engine {
    pub fn from_config(cfg: &Config) -> Result<Engine> {
        Ok(Engine {
            identity: cfg.identity.clone(),
            pack: cfg.pack.clone(),
            ticket_prefix: cfg.ticket_prefix.clone(),
            renderer: std::sync::Arc::new(Renderer::from_config(cfg)?),
            limits: cfg.limits.clone(),
            contracts: None,
            staff: cfg.staff.clone(),
            mailboxes: crate::config::Mailboxes::of(&cfg.mailboxes),
            keys: match &cfg.staff.dkim {
                Some(d) => {
                    std::sync::Arc::new(crate::dns_keys::DnsKeys::new(&d.nameservers, d.timeout))
                }
                None => std::sync::Arc::new(crate::dkim::Offline),
            },
        })
    }

    fn input<'a>(
        &'a self,
        plan: PlanRefs<'a>,
        mailbox: MailboxView<'a>,
        now: DateTime<Utc>,
    ) -> Input<'a> {
        let PlanRefs {
            inbound,
            classification,
            extracted,
            evidence,
            lookup,
            prepared,
        } = plan;
        Input {
            inbound,
            classification,
            extracted,
            evidence,
            mailboxes: &self.mailboxes,
            lookup,
            mailbox,
            identity: &self.identity,
            pack: &self.pack,
            staff: &self.staff,
            ticket_prefix: &self.ticket_prefix,
            limits: &self.limits,
            prepared,
            now,
        }
    }

    /// Reads `raw` and decides what to do with it, reading (never writing) `store`.
    pub fn plan(
        &self,
        store: &Store,
        mailbox: MailboxView<'_>,
        raw: &[u8],
        arrival: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Plan> {
        self.plan_read(store, mailbox, self.read(raw, arrival), now)
    }

    /// Parses, classifies and searches a mail: everything that needs no database.
    pub fn read(&self, raw: &[u8], arrival: DateTime<Utc>) -> Read {
        let mut read = self.read_mail(raw, arrival);
        read.evidence = self.evidence(raw, &read.inbound);
        read
    }

    /// `read` without the proof checks (whose DNS look-ups wait on the
    /// network, and so do not count in the processing budget).
    fn read_mail(&self, raw: &[u8], arrival: DateTime<Utc>) -> Read {
        let inbound = parse(raw, arrival);
        let classification = classify_message(raw, &inbound, &self.identity);
        let extracted = extract(&inbound, &self.pack.patterns, &self.ticket_prefix);
        let prepared = Some(Prepared::read(&inbound, classification.class, &self.pack));
        Read {
            inbound,
            classification,
            extracted,
            evidence: Default::default(),
            prepared,
        }
    }

    /// What the headers of a staff address's mail prove: a trusted
    /// Authentication-Results pass, else (when no reply token already proves
    /// it for the ticket its subject names) its DKIM signature, verified
    /// here with a key looked up through `keys` (DNS, with a timeout and a
    /// cache), before the store is locked. Nothing for other senders.
    fn evidence(&self, raw: &[u8], inbound: &Inbound) -> crate::decide::Evidence {
        let mut ev = crate::decide::Evidence::default();
        let Some(sender) = inbound
            .from_header_address()
            .filter(|s| self.staff.member_by_address(s).is_some())
        else {
            return ev;
        };
        let sender = sender.to_ascii_lowercase();
        let Some((_, domain)) = sender.rsplit_once('@') else {
            return ev;
        };
        // The fields the decision reads (mail-parser's) must be the ones a
        // proof covers: a section read two ways, or read otherwise by the
        // parser, proves nothing.
        if let Some(why) =
            crate::header_section::ambiguity(raw, &inbound.headers, crate::parse::MAX_HEADER_VALUE)
                .or_else(|| one_author(inbound))
        {
            ev.ambiguous = Some(why);
            return ev;
        }
        // A signed mail proves something here only when it was written to
        // us: one sent to someone else and handed on proves nothing (the
        // signature covers To and Cc, so they are what the signer sent).
        let to_us = inbound
            .to
            .iter()
            .chain(&inbound.cc)
            .any(|a| self.identity.is_own(&a.address));
        let section = crate::header_section::read(raw);
        if to_us {
            ev.auth_results = self.trusted_results(raw, inbound, &section, domain, &mut ev.refused);
        }
        if ev.auth_results.is_some() || self.staff.dkim.is_none() {
            return ev;
        }
        if let Some(key) = &self.staff.token_key {
            let proven = crate::token::tickets_proven(
                key,
                &self.identity.message_id_domain,
                &inbound.referenced_ids(),
                &sender,
                inbound.arrival,
            );
            let tag = thread::tag_in(&inbound.subject, &self.ticket_prefix).map(TicketId);
            if !proven.is_empty() && tag.is_none_or(|t| proven.contains(&t)) {
                return ev;
            }
        }
        if !to_us {
            ev.refused.push(
                "its To and Cc name none of our addresses: a signed mail sent to someone else proves nothing here".into(),
            );
            return ev;
        }
        let verdict = crate::dkim::verify(raw, domain, self.keys.as_ref());
        ev.dkim = Some(match verdict {
            crate::dkim::DkimVerdict::Pass {
                ref domain,
                ref selector,
            } if crate::dkim::relaxed_body(raw, domain, selector)
                && !reads_the_same_relaxed(raw, inbound) =>
            {
                crate::dkim::DkimVerdict::Fail {
                    reason: RELAXED_CHANGES_READING.into(),
                }
            }
            v => v,
        });
        ev
    }

    /// A trusted Authentication-Results pass for `domain`, counted only
    /// when the mail carries a DKIM signature that covers what the decision
    /// reads (the server says it verified; what the signature covered is
    /// read here) and, for a body hashed relaxed, the white space it does
    /// not cover changes nothing ticketd reads. Why a pass was not counted
    /// goes to `refused`.
    fn trusted_results(
        &self,
        raw: &[u8],
        inbound: &Inbound,
        section: &crate::header_section::Section<'_>,
        domain: &str,
        refused: &mut Vec<String>,
    ) -> Option<String> {
        let pass = crate::dkim::trusted_results(section, &self.staff.authserv_ids, domain)?;
        match crate::dkim::covering_signature(raw, domain) {
            Ok(relaxed) if relaxed && !reads_the_same_relaxed(raw, inbound) => {
                refused.push(format!("{pass}, but {RELAXED_CHANGES_READING}"));
                None
            }
            Ok(_) => Some(pass),
            Err(why) => {
                refused.push(format!("{pass}, but {why}"));
                None
            }
        }
    }

    /// The rest of the plan for a mail already read: what the database knows, then the decision.
    pub fn plan_read(
        &self,
        store: &Store,
        mailbox: MailboxView<'_>,
        read: Read,
        now: DateTime<Utc>,
    ) -> Result<Plan> {
        let Read {
            inbound,
            classification,
            extracted,
            evidence,
            prepared,
        } = read;
        // A ticket number in the text counts like a tag (IX-13, NX-02: status by number);
        // `decide` trusts either only from the ticket's own participants.
        let tag = thread::tag_in(&inbound.subject, &self.ticket_prefix)
            .or_else(|| extracted.ticket_ids.iter().find_map(|t| t.parse().ok()));
        let mut lookup = store
            .lookup(
                tag,
                &inbound.referenced_ids(),
                inbound.message_id.as_deref(),
                inbound.sender_address(),
                &inbound.content_hash,
                classification.bounce.as_ref(),
            )
            .context("database lookup")?;
        let sender = inbound.sender_address().unwrap_or_default();
        let sender_member = inbound
            .from_header_address()
            .and_then(|s| self.staff.member_by_address(s));
        let tickets: Vec<TicketId> = [&lookup.tagged, &lookup.referenced]
            .into_iter()
            .flatten()
            .map(|t| t.id)
            .collect();
        let extra = decide::extra_bucket_keys(
            mailbox.name,
            sender_member.map(|m| m.name.as_str()),
            &tickets,
        );
        lookup
            .buckets
            .extend(store.buckets(&extra).context("limits lookup")?);
        lookup.contract = match &self.contracts {
            Some(book) => book.find(&extracted.serials, sender, &extracted.tax_ids),
            None => store
                .find_contract(&extracted.serials, sender, &extracted.tax_ids)
                .context("contract lookup")?,
        };
        for (quota, since) in self
            .pack
            .policy
            .quota_periods(lookup.contract.as_ref(), inbound.arrival)
        {
            if let Some(c) = &lookup.contract {
                let used = store
                    .quota_used(&quota, &c.contract.serial, since)
                    .context("quota lookup")?;
                lookup.quota_used.insert(quota, used);
            }
        }
        // A staff mail's answer is relayed in the customer's thread.
        if sender_member.is_some() {
            let subject_tag = thread::tag_in(&inbound.subject, &self.ticket_prefix).map(TicketId);
            if let Some((id, requester)) =
                decide::staff_target(&lookup, subject_tag).map(|t| (t.id, t.requester.clone()))
            {
                lookup.customer_thread = store
                    .last_customer_message(id, &self.staff.all_addresses())
                    .context("thread lookup")?;
                lookup.customer_undeliverable = !store
                    .undeliverable_among(std::slice::from_ref(&requester))
                    .context("contact lookup")?
                    .is_empty();
            }
            let settings = crate::staff_lookup::Settings {
                pack: &self.pack,
                ticket_prefix: &self.ticket_prefix,
                staff: &self.staff,
                contracts: self.contracts.as_deref(),
            };
            crate::staff_lookup::extend(settings, store, mailbox.name, &inbound, &mut lookup)?;
        }
        let decision = decide::decide(&self.input(
            PlanRefs {
                inbound: &inbound,
                classification: &classification,
                extracted: &extracted,
                evidence: &evidence,
                lookup: &lookup,
                prepared: prepared.as_ref(),
            },
            mailbox,
            now,
        ));
        Ok(Plan {
            inbound,
            classification,
            extracted,
            lookup,
            decision,
            evidence,
            prepared,
        })
    }

    /// A plan for a mail that must be quarantined for `reason`.
    fn quarantine_plan(
        &self,
        mut plan: Plan,
        mailbox: MailboxView<'_>,
        reason: String,
        now: DateTime<Utc>,
    ) -> Plan {
        let mut reasons = plan.decision.reasons.clone();
        reasons.push(reason);
        plan.decision = decide::quarantine(&self.input(plan.refs(), mailbox, now), reasons);
        plan
    }

    /// Renders the plan's mail for `ticket_id` (known once the ticket is
    /// written). The replies are taken from the plan: their data moves into
    /// the templates.
    pub fn render(
        &self,
        plan: &mut Plan,
        ticket_id: Option<TicketId>,
        source: Option<&[u8]>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Rendered>> {
        self.renderer.render_with(
            std::mem::take(&mut plan.decision.replies),
            &plan.decision.subject,
            ticket_id,
            source,
            now,
        )
    }

    /// Reads a fetched mail (`read`, no database), catching a panic and
    /// timing it, so that this half can run before the store is locked.
    pub fn read_fetched(&self, f: &Fetched, clock: &dyn Clock) -> ReadAhead {
        let started = clock.monotonic();
        let raw = if self.oversize(f) {
            &f.raw[..f.raw.len().min(OVERSIZE_PEEK)]
        } else {
            &f.raw[..]
        };
        let read = catch_unwind(AssertUnwindSafe(|| self.read_mail(raw, f.arrival))).ok();
        let took = clock.monotonic().saturating_duration_since(started);
        // The proof checks wait on DNS (bounded by their own timeout): not
        // the mail's processing time.
        let read = read.and_then(|mut r| {
            catch_unwind(AssertUnwindSafe(|| self.evidence(raw, &r.inbound)))
                .ok()
                .map(|ev| {
                    r.evidence = ev;
                    r
                })
        });
        ReadAhead { read, took }
    }

    fn oversize(&self, f: &Fetched) -> bool {
        f.size.max(f.raw.len() as u64) > self.limits.max_message_bytes
    }

    /// Processes one fetched message to committed effects. Bad input never
    /// fails this: it is quarantined. Only a database failure is an error,
    /// and then nothing was written.
    ///
    /// `clock` gives `now` and measures the processing budget: a message whose
    /// reading and deciding took longer than `limits.max_processing` is
    /// quarantined, so one pathological mail is set aside instead of being
    /// retried or answered late.
    pub fn ingest(
        &self,
        store: &mut Store,
        mailbox: &MailboxConfig,
        f: &Fetched,
        clock: &dyn Clock,
    ) -> Result<Ingested> {
        let ahead = self.read_fetched(f, clock);
        self.ingest_read(store, mailbox, f, ahead, clock)
    }

    /// `ingest` for a mail an admin released from quarantine: a verdict of
    /// the receiving server that it is spam no longer sets it aside.
    pub fn ingest_released(
        &self,
        store: &mut Store,
        mailbox: &MailboxConfig,
        f: &Fetched,
        clock: &dyn Clock,
    ) -> Result<Ingested> {
        let mut ahead = self.read_fetched(f, clock);
        if let Some(read) = &mut ahead.read
            && let Some(verdict) = read.classification.spam.take()
        {
            read.classification.reasons.push(format!(
                "released by an admin: the receiving server's spam verdict ({verdict}) no longer holds it"
            ));
        }
        self.ingest_read(store, mailbox, f, ahead, clock)
    }

    /// `ingest` for a mail already read by `read_fetched`.
    pub fn ingest_read(
        &self,
        store: &mut Store,
        mailbox: &MailboxConfig,
        f: &Fetched,
        ahead: ReadAhead,
        clock: &dyn Clock,
    ) -> Result<Ingested> {
        self.ingest_read_as(store, mailbox, f, ahead, clock, WriteMode::Savepoint)
    }

    /// Ingests a slice of read mail in one transaction of the store. First
    /// every message is written straight into it, without a savepoint each
    /// (a savepoint copies every page its message changes). When one fails,
    /// that transaction is rolled back and the slice is written again the
    /// careful way, in a new one: each mail read again, a savepoint each, a
    /// message that cannot be handled quarantined alone, and a database
    /// failure stopping the slice there with what came before it kept.
    /// Returns what was stored and the error that stopped the slice; an
    /// error of its own means that nothing of the slice was written.
    pub fn ingest_slice(
        &self,
        store: &mut Store,
        mailbox: &MailboxConfig,
        mails: Vec<(Fetched, ReadAhead)>,
        clock: &dyn Clock,
        fence: Option<&Fence>,
    ) -> Result<(Vec<Ingested>, Option<anyhow::Error>)> {
        let span = |f: &Fetched| info_span!("message", mailbox = %mailbox.name, uid = f.uid);
        // On PostgreSQL, each transaction first checks that this node still
        // holds the mailbox's lease (and holds its row until the commit).
        let fenced = |st: &mut Store| match fence {
            Some(f) => st.check_fence(&mailbox.name, f),
            None => Ok(()),
        };
        let mut stored = Vec::with_capacity(mails.len());
        // The slice again for the careful way: the mails written directly
        // are read again, the others keep what was read ahead.
        let mut again: Vec<(Fetched, Option<ReadAhead>)> = Vec::with_capacity(mails.len());
        let mut todo = mails.into_iter();
        let direct = store.in_batch(|st| {
            fenced(st)?;
            for (f, ahead) in todo.by_ref() {
                // A panic goes on to the caller: `in_batch` rolls back first.
                let r = span(&f).in_scope(|| {
                    self.ingest_read_as(st, mailbox, &f, ahead, clock, WriteMode::Direct)
                });
                again.push((f, None));
                stored.push(r?);
            }
            Ok(())
        });
        let Err(e) = direct else {
            return Ok((stored, None));
        };
        if e.downcast_ref::<crate::store::LeaseLost>().is_some() {
            return Err(e);
        }
        debug!(mailbox = %mailbox.name, error = %format!("{e:#}"), "a slice failed: writing it again a message at a time");
        again.extend(todo.map(|(f, ahead)| (f, Some(ahead))));
        stored.clear();
        let mut stopped = None;
        store.in_batch(|st| {
            fenced(st)?;
            for (f, ahead) in again {
                let r = span(&f).in_scope(|| {
                    let ahead = ahead.unwrap_or_else(|| self.read_fetched(&f, clock));
                    self.ingest_read(st, mailbox, &f, ahead, clock)
                });
                match r {
                    Ok(r) => stored.push(r),
                    Err(e) => {
                        stopped =
                            Some(e.context(format!("mailbox {} uid {}", mailbox.name, f.uid)));
                        break;
                    }
                }
            }
            Ok(())
        })?;
        Ok((stored, stopped))
    }

    fn ingest_read_as(
        &self,
        store: &mut Store,
        mailbox: &MailboxConfig,
        f: &Fetched,
        ahead: ReadAhead,
        clock: &dyn Clock,
        writes: WriteMode,
    ) -> Result<Ingested> {
        let now = clock.now();
        let started = clock.monotonic();
        let view = mailbox_view(mailbox);
        let oversize = self.oversize(f);
        let planned = ahead
            .read
            .map(|read| catch_unwind(AssertUnwindSafe(|| self.plan_read(store, view, read, now))));
        let mut plan = match planned {
            Some(Ok(p)) => p?,
            None | Some(Err(_)) => {
                // Reading the mail panicked: keep it, and plan as for unreadable mail.
                let empty = self.plan(store, view, b"", f.arrival, now)?;
                self.quarantine_plan(
                    empty,
                    view,
                    "reading the message crashed the parser".into(),
                    now,
                )
            }
        };
        let took = ahead.took + clock.monotonic().saturating_duration_since(started);
        if took > self.limits.max_processing && plan.decision.outcome != Outcome::Quarantined {
            plan = self.quarantine_plan(
                plan,
                view,
                format!(
                    "processing budget exceeded: reading and deciding took {} ms, over the limit of {} ms; the message stays in folder {}",
                    took.as_millis(),
                    self.limits.max_processing.as_millis(),
                    mailbox.quarantine_folder
                ),
                now,
            );
        }
        if oversize {
            plan = self.quarantine_plan(
                plan,
                view,
                format!(
                    "message of {} bytes is over the limit of {} bytes; its header is stored here and the whole message stays in folder {}",
                    f.size.max(f.raw.len() as u64),
                    self.limits.max_message_bytes,
                    mailbox.quarantine_folder
                ),
                now,
            );
        }
        match self.apply(store, mailbox, f, &mut plan, writes, now) {
            Ok(done) => Ok(done),
            // Written directly, a failed message's writes stay: the caller
            // rolls the slice back.
            Err(e)
                if writes == WriteMode::Savepoint
                    && plan.decision.outcome != Outcome::Quarantined =>
            {
                let reason = format!("processing failed: {e:#}");
                let mut q = self.quarantine_plan(plan, view, reason, now);
                self.apply(store, mailbox, f, &mut q, writes, now)
            }
            Err(e) => Err(e),
        }
    }

    fn apply(
        &self,
        store: &mut Store,
        mailbox: &MailboxConfig,
        f: &Fetched,
        plan: &mut Plan,
        writes: WriteMode,
        now: DateTime<Utc>,
    ) -> Result<Ingested> {
        // The replies are rendered once, from data moved into the templates.
        let replies = std::mem::take(&mut plan.decision.replies);
        let plan = &*plan;
        let d = &plan.decision;
        let reason = d.outcome.set_aside().then(|| d.reasons.join("; "));
        let row = MessageRow {
            origin: Origin {
                mailbox: &mailbox.name,
                uidvalidity: f.uidvalidity,
                uid: f.uid,
            },
            raw: &f.raw,
            message_id: plan.inbound.message_id.as_deref(),
            sender: plan.inbound.sender_address(),
            content_hash: &plan.inbound.content_hash,
            arrival: f.arrival,
            class: d.class.as_str(),
            outcome: d.outcome,
            reason,
            reply_text: Some(plan.inbound.reply_text.as_str()),
        };
        for e in &d.events {
            if let Event::ReplySuppressed { why } = e {
                tracing::info!(mailbox = %mailbox.name, uid = f.uid, "{why}");
            }
        }
        // One savepoint (or the slice's transaction, written directly): the
        // ticket first (a new one's number goes into the replies), then the
        // rendered replies with everything else. A render that fails drops
        // the savepoint, and nothing of the message is written.
        let mut tx = store.begin_message_as(now, writes)?;
        let ticket = tx.write_ticket(&mailbox.name, &d.ticket)?;
        let mails: Vec<NewMail> = self
            .renderer
            .render_with(replies, &d.subject, ticket, Some(&f.raw), now)?
            .into_iter()
            .map(|r| r.mail)
            .collect();
        let events = self.with_rma_codes(&d.events, ticket, now);
        let applied = tx.finish(&row, &events, &d.effects, &mails)?;
        Ok(Ingested {
            uid: f.uid,
            outcome: d.outcome,
            class: d.class,
            ticket_id: applied.ticket_id,
            queued: applied.queued.len(),
            reasons: d.reasons.clone(),
            acks_capped: d.effects.acks_capped,
        })
    }

    /// The events with the code of an RMA issued by this mail filled in
    /// (IX-05: it is the ticket's number, known only once the ticket is written).
    pub(crate) fn with_rma_codes<'e>(
        &self,
        events: &'e [Event],
        ticket: Option<TicketId>,
        now: DateTime<Utc>,
    ) -> std::borrow::Cow<'e, [Event]> {
        let unfilled = |e: &Event| {
            matches!(
                e,
                Event::Rma {
                    state: crate::model::RmaState::Issued,
                    code: None,
                    ..
                }
            )
        };
        let (Some(t), Some(spec)) = (ticket, self.pack.policy.rma()) else {
            return events.into();
        };
        if !events.iter().any(unfilled) {
            return events.into();
        }
        let mut seq = 0;
        events
            .iter()
            .map(|e| match e {
                Event::Rma { .. } if unfilled(e) => {
                    seq += 1;
                    let mut e = e.clone();
                    if let Event::Rma { code, .. } = &mut e {
                        *code = Some(spec.code_for(t.0, seq, now, self.pack.zone));
                    }
                    e
                }
                e => e.clone(),
            })
            .collect::<Vec<_>>()
            .into()
    }

    /// Takes the recipients marked undeliverable off `replies` (a reply
    /// left with none is not sent), so that nothing is queued to them; each
    /// one skipped is an event on the ticket.
    pub fn deliverable_only(
        &self,
        store: &Store,
        replies: &mut Vec<ReplyPlan>,
    ) -> Result<Vec<Event>> {
        let mut events = Vec::new();
        for r in replies.iter_mut() {
            let gone = store.undeliverable_among(&r.to)?;
            if !gone.is_empty() {
                r.to.retain(|a| !gone.contains(a));
                events.push(Event::SendSkipped {
                    error: format!(
                        "{} not sent to {}: marked undeliverable",
                        r.template,
                        gone.join(", ")
                    ),
                });
            }
        }
        replies.retain(|r| !r.to.is_empty());
        Ok(events)
    }

    /// The role of mailbox `name`, if it is configured.
    pub fn mailbox_role(&self, name: &str) -> Option<crate::model::Role> {
        self.mailboxes.role(name)
    }

    /// The address a ticket of `mailbox` is answered from (the first own
    /// address when the mailbox is no longer configured).
    pub fn answer_address(&self, mailbox: &str) -> &str {
        self.mailboxes.answer_address(&self.identity, mailbox)
    }
}
