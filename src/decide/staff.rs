//! Staff by mail: who a staff address's mail is proven to be from, the commands it runs and the answer it relays; the notifications staff get of their queue's tickets.
//!
//! A mail acts as staff only when its sender is a `[staff.members]` address
//! **and** it carries a proof: a reply token for its ticket and that address
//! (`token`), a DKIM signature that verifies and aligns with the From domain,
//! or an Authentication-Results header of the vendor's own receiving server
//! (both checked by `dkim` before the store is locked, given here as
//! [`Evidence`]). Without one it is held on the ticket, nothing is done, and
//! staff are told once. With one, its commands run through the same
//! functions as their shell twins (`action`, `rma`), all or nothing: an
//! unknown or malformed command, or one that cannot run, does nothing and
//! the staff member gets the error. Its remaining text is relayed to the
//! customer as `ticketd reply` does.

use super::action::{ActionInput, assign, note, set_severity, set_status, staff_reply};
use super::limits::{notice_allowed, unverified_scope};
use super::merge::{MergeRequest, merge as merge_tickets, same_organisation};
use super::opening::{blank_ticket, not_a_customer, opened_ticket, read_forwarded};
use super::plan::{
    Base, Decision, Evidence, Input, ReplyPlan, TicketView, addr_json, attached, local,
};
use super::quarantine::quarantine;
use super::rma::{codes, rma_action};
use crate::commands::{self, Command};
use crate::compose::AutoSubmitted;
use crate::model::DkimVerdict;
use crate::model::{
    Event, Language, Lookup, MergePlan, Opening, Outcome, PendingTimer, Proof, RmaRecord, Sender,
    SideEffects, TicketChange, TicketId, TicketInfo, TicketStatus, TicketWrite, TimerState,
    TimerUpdate,
};
use crate::model::{StaffDirectory, StaffMember};
use crate::policy::Evaluation;
use crate::thread;
use chrono::{DateTime, Utc};
use serde_json::json;

/// A line every notification carries (its list of commands, in every
/// language): a relay that holds it holds the quoted notification.
pub const NOTIFICATION_MARK: &str = "#status open|waiting_customer|waiting_staff";

/// The ticket a staff mail is about: the subject's tag, else the ticket its
/// In-Reply-To/References point at; never a number in its text.
pub fn staff_target(lookup: &Lookup, subject_tag: Option<TicketId>) -> Option<&TicketInfo> {
    let tagged = lookup.tagged.as_ref();
    match subject_tag {
        Some(tag) => tagged.filter(|t| t.id == tag),
        // Not a number in the text: a signed mail about a ticket, written
        // to someone else, must not become an action on it.
        None => lookup.referenced.as_ref(),
    }
}

/// Whether `sender`'s mail is proven theirs for `ticket`, and by what; or
/// why not. The reply token counts only for its own ticket and address.
pub fn authority(
    staff: &StaffDirectory,
    domain: &str,
    sender: &str,
    referenced: &[String],
    ticket: Option<TicketId>,
    evidence: &Evidence,
    now: DateTime<Utc>,
) -> Result<Proof, String> {
    if let Some(why) = &evidence.ambiguous {
        return Err(format!(
            "its header section could be read two ways ({why}), so nothing in it proves who sent it"
        ));
    }
    let mut missing = Vec::new();
    match &staff.token_key {
        Some(key) => {
            let proven = crate::token::tickets_proven(key, domain, referenced, sender, now);
            if ticket.is_some_and(|t| proven.contains(&t)) {
                return Ok(Proof::ReplyToken);
            }
            missing.push(match proven.first() {
                Some(other) => format!("its reply token is for ticket {other}, not this one"),
                None => format!(
                    "no reply token of a notification sent to that address (tokens prove for {} days)",
                    crate::token::MAX_AGE_DAYS
                ),
            });
        }
        None => missing.push("no reply token key is configured".to_string()),
    }
    if let Some(detail) = &evidence.auth_results {
        return Ok(Proof::AuthenticationResults {
            detail: detail.clone(),
        });
    }
    missing.extend(evidence.refused.iter().cloned());
    missing.push(if staff.authserv_ids.is_empty() {
        "no trusted authserv-id is configured".to_string()
    } else {
        format!(
            "no Authentication-Results pass from {}",
            staff.authserv_ids.join(" or ")
        )
    });
    match &evidence.dkim {
        Some(DkimVerdict::Pass { domain, selector }) => {
            return Ok(Proof::Dkim {
                domain: domain.clone(),
                selector: selector.clone(),
            });
        }
        Some(DkimVerdict::Unaligned { domain }) => missing.push(format!(
            "its DKIM signature is by {domain}, which is not the From domain"
        )),
        Some(DkimVerdict::Fail { reason }) => {
            missing.push(format!("its DKIM signature fails: {reason}"))
        }
        Some(DkimVerdict::NotChecked { reason }) => {
            missing.push(format!("its DKIM signature was not checked: {reason}"))
        }
        Some(DkimVerdict::Unsigned) => missing.push("no DKIM signature".to_string()),
        None if staff.dkim.is_none() => {
            missing.push("DKIM is not checked ([staff] dkim = false)".into())
        }
        None => missing.push("DKIM was not checked".to_string()),
    }
    Err(missing.join("; "))
}

/// Mail from a configured staff address: acted on when proven, held when not.
pub(super) fn from_staff(
    i: &Input<'_>,
    member: &StaffMember,
    (mut reasons, mut events): (Vec<String>, Vec<Event>),
    base: &Base<'_>,
    customer: &dyn Fn(&Input<'_>) -> Decision,
) -> Decision {
    let m = i.inbound;
    let sender = m.sender_address().unwrap_or_default().to_ascii_lowercase();
    let subject_tag = thread::tag_in(&m.subject, i.ticket_prefix);
    let ticket = staff_target(i.lookup, subject_tag.map(TicketId));
    let language = i.pack.language;
    // Every decision here keeps the ticket's name and says who wrote it.
    let staff_decision = |mut d: Decision, sender: Sender, proof: Option<Proof>| {
        if let Some(t) = ticket {
            d.subject = t.subject.clone();
        }
        d.sender = sender;
        d.proof = proof;
        d
    };
    // Authority is checked on the From header only, never on the Sender,
    // Reply-To or Return-Path a broken From falls back to.
    let proof = if m.from_fallback {
        Err("its From header has no usable address".to_string())
    } else {
        authority(
            i.staff,
            &i.identity.message_id_domain,
            &sender,
            &m.referenced_ids(),
            ticket.map(|t| t.id),
            i.evidence,
            i.now,
        )
    };
    let proof = match proof {
        Ok(p) => p,
        Err(why) => {
            let d = unverified(i, member, ticket, &sender, why, (reasons, events), base);
            return staff_decision(d, Sender::UnverifiedStaff, None);
        }
    };
    reasons.push(format!(
        "{sender} is staff member {}, proven by {proof}",
        member.name
    ));
    // Answers to the staff member carry a reply token too: a reply to a
    // confirmation or an error acts like one to the notification.
    let answer_to = |template: &'static str, data: serde_json::Value| ReplyPlan {
        reply_to: Some(i.mailbox.address.to_string()),
        staff_tokens: true,
        ..ReplyPlan::answer(i, template, &sender, language, data)
    };
    let Some(t) = ticket else {
        let by = format!("{} by mail ({proof})", member.name);
        let d = match open_for_customer(i, member, (&by, &proof), (customer, &answer_to, base)) {
            Ok(mut d) => {
                reasons.append(&mut d.reasons);
                d.reasons = reasons;
                events.append(&mut d.events);
                d.events = events;
                d
            }
            Err(error) => {
                reasons.push(format!("refused: {error}"));
                let reply = answer_to(
                    "staff_command_error",
                    json!({"vendor": i.pack.vendor, "error": error, "syntax": commands::SYNTAX}),
                );
                let view = TicketView {
                    action: "none",
                    id: None,
                };
                base(
                    Outcome::Processed,
                    TicketWrite::None,
                    view,
                    language,
                    vec![reply],
                    reasons,
                    events,
                )
            }
        };
        return staff_decision(d, Sender::Staff, Some(proof));
    };
    let by = format!("{} by mail ({proof})", member.name);
    let token_only = matches!(proof, Proof::ReplyToken);
    let run = parse_and_run(i, t, &by, token_only);
    let (parsed, (change, done, merged)) = match run {
        Ok(x) => x,
        Err(error) => {
            reasons.push(format!("refused: {error}"));
            events.push(Event::CommandRefused {
                from: sender.clone(),
                error: error.clone(),
            });
            let reply = answer_to(
                "staff_command_error",
                json!({"vendor": i.pack.vendor, "error": error, "syntax": commands::SYNTAX}),
            );
            let d = attached(base, t, language, vec![reply], reasons, events);
            return staff_decision(d, Sender::Staff, Some(proof));
        }
    };
    let relayed = change.mails.iter().any(|p| p.template == "staff_reply");
    // Whatever else goes to the customer (an RMA code): the confirmation says so.
    let sent = change.mails.iter().any(|p| p.to.contains(&t.requester));
    let commands: Vec<String> = parsed.commands.iter().map(|c| c.to_string()).collect();
    events.push(Event::StaffMail {
        from: sender.clone(),
        member: member.name.clone(),
        proof: proof.to_string(),
        commands: commands.clone(),
        relayed,
    });
    events.extend(change.events);
    let mut replies = change.mails;
    replies.push(confirmation(
        &answer_to,
        i,
        member,
        (done, relayed, sent, &t.requester),
    ));
    let status = change.status.unwrap_or(t.status);
    let mut d = base(
        Outcome::Processed,
        TicketWrite::Update { id: t.id, status },
        TicketView {
            action: "update",
            id: Some(t.id),
        },
        language,
        replies,
        reasons,
        events,
    );
    d.commands = commands;
    d.effects.timers = change.set_timers;
    d.effects.cancel_timers = change.cancel_timers;
    d.effects.timer_updates = change.timer_updates;
    d.effects.merge = merged;
    staff_decision(d, Sender::Staff, Some(proof))
}

/// A staff address's mail without proof: held on its ticket (quarantined
/// when it names none), with an `unverified` event and a notice to the
/// member and the staff list (a few per member and ticket).
fn unverified(
    i: &Input<'_>,
    member: &StaffMember,
    ticket: Option<&TicketInfo>,
    sender: &str,
    why: String,
    (mut reasons, mut events): (Vec<String>, Vec<Event>),
    base: &Base<'_>,
) -> Decision {
    let m = i.inbound;
    let language = i.pack.language;
    reasons.push(format!(
        "{sender} is staff member {}'s address, but the mail is not proven theirs: {why}",
        member.name
    ));
    let Some(t) = ticket else {
        reasons.push("it names no ticket".into());
        return quarantine(i, reasons);
    };
    events.push(Event::Unverified {
        from: sender.to_string(),
        why: why.clone(),
    });
    let mut to: Vec<String> = member.addresses.clone();
    for s in &i.identity.staff {
        if !to.contains(s) {
            to.push(s.clone());
        }
    }
    // One notice per forged mail would let a forger flood staff:
    // a few per member and ticket, then the count in the next one.
    let mut effects = SideEffects::default();
    let scope = unverified_scope(&member.name, t.id);
    let notices = match notice_allowed(i, &scope, &mut effects) {
        Ok(held) => vec![ReplyPlan::notice(
            "staff_unverified",
            to,
            language,
            i.mailbox.address,
            json!({
                "vendor": i.pack.vendor,
                "member": member.display,
                "from": sender,
                "why": why,
                "held": held,
                "message": {"subject": m.subject, "message_id": m.message_id.clone().unwrap_or_default()},
            }),
        )],
        Err(held) => {
            reasons.push(format!(
                "staff notice held back ({held} since the last one sent; the next says so)"
            ));
            vec![]
        }
    };
    let mut d = attached(base, t, language, notices, reasons, events);
    d.effects.buckets = effects.buckets;
    // Held, not part of the conversation: a reply to it must not thread in.
    d.effects.hold = true;
    d
}

/// The member's confirmation of a mail carried out: a line per thing
/// done, whether their text was relayed and whether the customer was sent anything.
fn confirmation(
    answer_to: &dyn Fn(&'static str, serde_json::Value) -> ReplyPlan,
    i: &Input<'_>,
    member: &StaffMember,
    (done, relayed, sent, customer): (Vec<String>, bool, bool, &str),
) -> ReplyPlan {
    answer_to(
        "staff_confirm",
        json!({
            "vendor": i.pack.vendor,
            "member": member.display,
            "done": done,
            "relayed": relayed,
            "sent": sent,
            "customer": customer,
        }),
    )
}

/// What opening a ticket for a customer calls back: the decision of a
/// customer's own mail, the answer to the member, the decision's base.
type Callbacks<'c> = (
    &'c dyn Fn(&Input<'_>) -> Decision,
    &'c dyn Fn(&'static str, serde_json::Value) -> ReplyPlan,
    &'c Base<'c>,
);

/// A proven member's mail that names no ticket: a ticket opened for the
/// customer whose mail it forwards (what that customer's own mail would
/// get, acknowledgement included, with the member its owner and their text
/// an internal note), or for `#open ADDRESS` (their text relayed as its
/// first answer). Commands on top run on the new ticket; commands in the
/// forwarded text are the customer's text, never run.
fn open_for_customer(
    i: &Input<'_>,
    member: &StaffMember,
    (by, proof): (&str, &Proof),
    (customer, answer_to, base): Callbacks<'_>,
) -> Result<Decision, String> {
    let o = i.lookup.opening.as_deref();
    let forwarded = o.filter(|o| !o.raw.is_empty());
    let text = match forwarded {
        Some(o) => o.note.clone(),
        None => i.inbound.staff_text(),
    };
    let mut parsed = commands::parse(&text).map_err(|e| e.to_string())?;
    let written: Vec<String> = parsed.commands.iter().map(|c| c.to_string()).collect();
    let open = parsed.commands.iter().find_map(|c| match c {
        Command::Open { to } => Some(to.clone()),
        _ => None,
    });
    if parsed
        .commands
        .iter()
        .any(|c| matches!(c, Command::Merge { .. }))
    {
        return Err(
            "`#merge` merges the ticket a mail is about: reply to that ticket's notification"
                .into(),
        );
    }
    parsed
        .commands
        .retain(|c| !matches!(c, Command::Open { .. }));
    let (mut d, done) = match (forwarded, open) {
        (Some(o), None | Some(None)) => forward(i, member, by, o, parsed, customer)?,
        (Some(_), Some(Some(to))) => {
            return Err(format!(
                "`#open {to}` opens a ticket to that address with your text as its answer, but the mail forwards a customer's mail, whose ticket is its sender's: write `#open` alone, or forward nothing"
            ));
        }
        (None, Some(Some(to))) => open_to(i, member, by, &to, parsed, base)?,
        (None, Some(None)) => {
            return Err("`#open` alone opens a ticket for the sender of a forwarded mail, and this mail forwards none: forward the customer's mail (inline or attached), or write `#open ADDRESS` above your text".into());
        }
        (None, None) => {
            return Err("the mail names no ticket: reply to a ticketd notification or put the ticket's tag in the subject; to open one, forward the customer's mail or write `#open ADDRESS` above your text".into());
        }
    };
    let requester = match &d.ticket {
        TicketWrite::New { requester, .. } => requester.clone(),
        _ => String::new(),
    };
    let relayed = d.replies.iter().any(|p| p.template == "staff_reply");
    d.events.push(Event::StaffMail {
        from: i
            .inbound
            .sender_address()
            .unwrap_or_default()
            .to_ascii_lowercase(),
        member: member.name.clone(),
        proof: proof.to_string(),
        commands: written.clone(),
        relayed,
    });
    let sent = d.replies.iter().any(|p| p.to.contains(&requester));
    d.replies.push(confirmation(
        answer_to,
        i,
        member,
        (done, relayed, sent, &requester),
    ));
    d.commands = written;
    Ok(d)
}

/// The ticket of a forwarded customer's mail: decided as that mail would
/// be, then given to the member, their text a note, their commands run.
fn forward(
    i: &Input<'_>,
    member: &StaffMember,
    by: &str,
    o: &Opening,
    parsed: commands::Parsed,
    customer: &dyn Fn(&Input<'_>) -> Decision,
) -> Result<(Decision, Vec<String>), String> {
    let cm = read_forwarded(i, o)?;
    let none = Evidence::default();
    let ci = Input {
        inbound: &cm.inbound,
        classification: &cm.classification,
        extracted: &cm.extracted,
        lookup: &o.lookup,
        evidence: &none,
        prepared: None,
        ..*i
    };
    let mut d = customer(&ci);
    let from = cm.inbound.sender_address().unwrap_or_default();
    let Some(ticket) = opened_ticket(&d, i.mailbox.name, &member.name, i.now) else {
        return Err(match d.ticket_view.id {
            Some(t) => format!(
                "the forwarded mail from {from} is on ticket {t} already ({}): reply to that ticket's notification",
                d.reasons.last().cloned().unwrap_or_default()
            ),
            None => format!(
                "the forwarded mail from {from} opens no ticket: {}",
                d.reasons.join("; ")
            ),
        });
    };
    let requester = ticket.requester.clone();
    let mut done = vec![format!(
        "ticket opened for {requester} from the forwarded mail ({}), assigned to {}",
        o.format, member.name
    )];
    if d.replies.iter().any(|p| p.template == "ack_new") {
        done.push(format!("{requester} was sent the acknowledgement"));
    }
    d.events.push(Event::Assigned {
        to: member.name.clone(),
        by: by.to_string(),
    });
    let note = parsed.text.trim();
    if !note.is_empty() {
        d.events.push(Event::Note {
            by: by.to_string(),
            text: note.to_string(),
        });
        done.push("your text recorded as an internal note (not sent to the customer)".into());
    }
    // Assigned: its owner hears of it, not the whole queue.
    for p in d
        .replies
        .iter_mut()
        .filter(|p| p.template == "staff_ticket")
    {
        p.to = member.addresses.clone();
        p.data["owner"] = json!(member.name);
    }
    let mut total = TicketChange {
        set_timers: std::mem::take(&mut d.effects.timers),
        ..TicketChange::default()
    };
    if !parsed.commands.is_empty() {
        let mut lookup = i.lookup.clone();
        lookup.customer_thread = cm.inbound.message_id.clone();
        let ci = Input {
            lookup: &lookup,
            ..*i
        };
        let commands = commands::Parsed {
            commands: parsed.commands,
            text: String::new(),
        };
        // A mail that names no ticket is never proven by a reply token.
        let (c, more, _) = run_mail(&ci, &ticket, by, &commands, false)?;
        merge(&mut total, c);
        done.extend(more);
    }
    if let (Some(s), TicketWrite::New { status, .. }) = (total.status, &mut d.ticket) {
        *status = s;
    }
    d.events.append(&mut total.events);
    d.effects.timers = total.set_timers;
    d.effects.cancel_timers.append(&mut total.cancel_timers);
    d.effects.timer_updates.append(&mut total.timer_updates);
    d.replies.append(&mut total.mails);
    // A later mail in the customer's own thread joins the ticket.
    if let Some(id) = &cm.inbound.message_id {
        d.effects.awaited.push(id.clone());
        d.effects.awaited_people.push(requester);
    }
    Ok((d, done))
}

/// `#open ADDRESS`: a ticket to that address, the member's text relayed as
/// its first answer (the ticket then waits on the customer), their
/// commands run on it.
fn open_to(
    i: &Input<'_>,
    member: &StaffMember,
    by: &str,
    to: &str,
    parsed: commands::Parsed,
    base: &Base<'_>,
) -> Result<(Decision, Vec<String>), String> {
    if let Some(why) = not_a_customer(i, to) {
        return Err(format!("`#open {to}`: {why}"));
    }
    let contact = i
        .lookup
        .opening
        .as_deref()
        .and_then(|o| o.lookup.contact.as_ref());
    if contact.is_some_and(|c| c.undeliverable) {
        return Err(format!(
            "{to} is marked undeliverable, so nothing was opened or sent (`ticketd contacts deliverable {to}` clears the mark)"
        ));
    }
    if parsed.text.trim().is_empty() {
        return Err(format!(
            "`#open {to}` relays your text as the ticket's first answer: write it under the commands"
        ));
    }
    let language = contact
        .and_then(|c| c.language.as_deref())
        .and_then(Language::parse)
        .or_else(|| super::language::written_in(&parsed.text, None).map(|(l, _)| l))
        .unwrap_or(i.pack.language);
    let subject = super::plan::ticket_subject(i);
    let ticket = blank_ticket(i, to, &subject, language.as_str(), &member.name);
    let mut lookup = i.lookup.clone();
    lookup.customer_thread = None;
    let ci = Input {
        lookup: &lookup,
        ..*i
    };
    // A mail that names no ticket is never proven by a reply token.
    let (c, mut done, _) = run_mail(&ci, &ticket, by, &parsed, false)?;
    done.insert(
        0,
        format!("ticket opened for {to}, assigned to {}", member.name),
    );
    let sender = i.inbound.sender_address().unwrap_or_default();
    let mut events = vec![
        Event::Created {
            from: sender.to_ascii_lowercase(),
            mailbox: i.mailbox.name.to_string(),
            list: false,
        },
        Event::Assigned {
            to: member.name.clone(),
            by: by.to_string(),
        },
    ];
    events.extend(c.events);
    let write = TicketWrite::New {
        subject,
        status: c.status.unwrap_or(TicketStatus::Open),
        language: language.as_str().to_string(),
        requester: to.to_string(),
        requester_name: None,
    };
    let view = TicketView {
        action: "new",
        id: Some(i.lookup.next_ticket_id),
    };
    let reasons = vec![format!("`#open {to}`: a new ticket for {to}")];
    let mut d = base(
        Outcome::Processed,
        write,
        view,
        language,
        c.mails,
        reasons,
        events,
    );
    d.effects.timers = c.set_timers;
    d.effects.cancel_timers = c.cancel_timers;
    d.effects.timer_updates = c.timer_updates;
    Ok((d, done))
}

/// What a staff mail did: the whole change, a line per thing done, and
/// the merge it ends with (`#merge`).
type Ran = (TicketChange<ReplyPlan>, Vec<String>, Option<MergePlan>);

/// The commands and answer of a proven staff mail's new text, run on `t`:
/// refused when the text still holds the quoted notification.
fn parse_and_run(
    i: &Input<'_>,
    t: &TicketInfo,
    by: &str,
    token_only: bool,
) -> Result<(commands::Parsed, Ran), String> {
    let m = i.inbound;
    let text = m.staff_text();
    commands::parse(&text)
        .map_err(|e| e.to_string())
        .map(|mut parsed| {
            // A signature alone under the commands is no answer to relay.
            if parsed.text.lines().next().is_some_and(|l| l.trim_end() == "--") {
                parsed.text.clear();
            }
            parsed
        })
        .and_then(|parsed| {
            // A client whose quote the reader could not tell apart would
            // relay our notification to the customer: refuse instead.
            if parsed.text.contains(NOTIFICATION_MARK) {
                return Err("the text still holds the quoted notification (its list of commands), so it cannot be told apart from your answer; nothing was relayed. Write your answer above the quote, or delete the quote".into());
            }
            run_mail(i, t, by, &parsed, token_only).map(|c| (parsed, c))
        })
}

/// Runs a proven staff mail on ticket `t`: its answer relayed first (unless
/// the ticket is closed: then after the commands, which must reopen it),
/// then each command in order, each seeing the ticket as the ones before
/// left it. Returns the whole change and a line per thing done; the first
/// error undoes everything. `token_only`: the mail is proven by a reply
/// token, which proves `t` and no other ticket.
fn run_mail(
    i: &Input<'_>,
    t: &TicketInfo,
    by: &str,
    parsed: &commands::Parsed,
    token_only: bool,
) -> Result<Ran, String> {
    let input = ActionInput {
        pack: i.pack,
        identity: i.identity,
        from_address: i.mailboxes.answer_address(i.identity, &t.mailbox),
        thread: i.lookup.customer_thread.as_deref(),
        by,
        now: i.now,
    };
    let mut ticket = t.clone();
    let mut total = TicketChange::default();
    let mut done = Vec::new();
    let mut merged = None;
    let relay = |ticket: &mut TicketInfo,
                 total: &mut TicketChange<ReplyPlan>,
                 done: &mut Vec<String>| {
        if parsed.text.is_empty() {
            return Ok(());
        }
        if i.lookup.customer_undeliverable {
            // As `ticketd reply` refuses: an answer nobody receives is no first response.
            return Err(format!(
                "{} is marked undeliverable, so nothing was sent or done (`ticketd contacts deliverable {}` clears the mark)",
                ticket.requester, ticket.requester
            ));
        }
        let mut c = staff_reply(ticket, &parsed.text, &input)?;
        for p in &mut c.mails {
            p.relay_attachments = true;
        }
        done.push(format!("your answer was sent to {}", ticket.requester));
        absorb(ticket, &c, i.now);
        merge(total, c);
        Ok::<(), String>(())
    };
    let relay_first = t.status != TicketStatus::Closed;
    if relay_first {
        relay(&mut ticket, &mut total, &mut done)?;
    }
    for cmd in &parsed.commands {
        let c = match cmd {
            Command::Status { to } if *to == ticket.status => {
                done.push(format!("the ticket is {to}"));
                continue;
            }
            Command::Status { to } => {
                done.push(format!("state: {} -> {to}", ticket.status));
                set_status(&ticket, *to, &input)?
            }
            Command::Severity { level } => {
                done.push(format!("severity {level}"));
                set_severity(&ticket, *level, &input)?
            }
            Command::Assign { to } => {
                let Some(owner) = i.staff.member(to) else {
                    return Err(format!(
                        "`{cmd}`: {to} is not a staff member; the members are {}",
                        i.staff
                            .members
                            .iter()
                            .map(|m| m.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                };
                done.push(format!("assigned to {}", owner.name));
                assign(&ticket, owner, &input)?
            }
            Command::Note { text } => {
                done.push("internal note recorded (not sent to the customer)".into());
                note(text, by)?
            }
            Command::Rma {
                step,
                part,
                tracking,
            } => {
                let out = rma_action(&ticket, *step, part.as_deref(), tracking.as_ref(), &input)
                    .map_err(|e| format!("`{cmd}`: {e}"))?;
                let mut what = match (&out.code, out.already) {
                    (Some(code), true) => format!("RMA {code} was already {}", out.state),
                    (Some(code), false) => format!("RMA {code}: {}", out.state),
                    (None, true) => format!("the RMA was already {}", out.state),
                    (None, false) => format!("RMA {}", out.state),
                };
                if let (Some(t), false) = (tracking, out.already) {
                    what.push_str(&format!(" ({t})"));
                }
                done.push(what);
                out.change
            }
            Command::Merge { into, force } => {
                let Some(target) = i.lookup.merge_into.as_ref().filter(|x| x.id.0 == *into) else {
                    return Err(format!("`{cmd}`: ticket {into} does not exist"));
                };
                // The token proves this ticket only: it cannot carry
                // this ticket's history and people into another
                // organisation's ticket.
                if *force
                    && token_only
                    && !same_organisation(&ticket, target, &i.lookup.organisations)
                {
                    return Err(format!(
                        "`{cmd}`: a reply token proves ticket {} only, and ticket {into} is another customer organisation's: merging across organisations takes a mail signed by your domain (DKIM or a trusted Authentication-Results), or `ticketd merge {} {into} --force`",
                        ticket.id, ticket.id
                    ));
                }
                let request = MergeRequest {
                    force: *force,
                    organisations: &i.lookup.organisations,
                    ticket_prefix: i.ticket_prefix,
                    into_thread: i.lookup.merge_thread.as_deref(),
                };
                let out = merge_tickets(&ticket, target, &request, &input)
                    .map_err(|e| format!("`{cmd}`: {e}"))?;
                done.extend(out.done);
                merged = Some(out.plan);
                out.source
            }
            Command::Open { .. } => {
                return Err(format!(
                    "`{cmd}` opens a new ticket: write it in a new mail that names no ticket (a forward of the customer's mail, or `#open ADDRESS` above your text)"
                ));
            }
        };
        absorb(&mut ticket, &c, i.now);
        merge(&mut total, c);
    }
    if !relay_first {
        relay(&mut ticket, &mut total, &mut done)?;
    }
    if done.is_empty() {
        return Err("the mail has no new text and no commands: nothing to do".into());
    }
    Ok((total, done, merged))
}

/// `ticket` as `c` leaves it, so the next command of the same mail starts
/// from there.
fn absorb(ticket: &mut TicketInfo, c: &TicketChange<ReplyPlan>, now: DateTime<Utc>) {
    if let Some(s) = c.status {
        ticket.status = s;
    }
    ticket
        .timers
        .retain(|p| !c.cancel_timers.iter().any(|x| p.is(x.kind, &x.cause)));
    for s in &c.set_timers {
        if !ticket.timers.iter().any(|p| p.is(s.kind, &s.cause)) {
            ticket.timers.push(PendingTimer {
                kind: s.kind,
                cause: s.cause.clone(),
                state: TimerState::Running { due: s.due },
            });
        }
    }
    for u in &c.timer_updates {
        let (kind, cause) = u.timer();
        let state = match u {
            TimerUpdate::Pause { left_secs, .. } => TimerState::Paused {
                left_secs: *left_secs,
            },
            TimerUpdate::Resume { due, .. } => TimerState::Running { due: *due },
        };
        for p in ticket.timers.iter_mut().filter(|p| p.is(kind, cause)) {
            p.state = state;
        }
    }
    for e in &c.events {
        match e {
            Event::SeverityChanged { to, .. } => ticket.severity = Some(*to),
            Event::Assigned { to, .. } => ticket.owner = Some(to.clone()),
            Event::StaffReply { .. } => ticket.last_answer = Some(now),
            Event::Rma {
                part,
                state,
                code,
                plans,
                expires_at,
                rule,
                ..
            } => match ticket.rmas.iter_mut().find(|r| r.part == *part) {
                Some(r) => {
                    r.state = *state;
                    if code.is_some() {
                        r.code = code.clone();
                    }
                    if expires_at.is_some() {
                        r.expires_at = *expires_at;
                    }
                }
                None => ticket.rmas.push(RmaRecord {
                    ticket: ticket.id,
                    part: part.clone(),
                    code: code.clone(),
                    state: *state,
                    rule: rule.clone(),
                    plans: plans.clone(),
                    requested_at: now,
                    issued_at: None,
                    shipped_at: None,
                    received_at: None,
                    returned_at: None,
                    expires_at: *expires_at,
                }),
            },
            _ => {}
        }
    }
}

/// Adds `next` to `total`: a timer `next` ends that `total` sets is not set
/// at all (the store ends timers before it sets them), and is ended too in
/// case it was pending already (ending a timer that is not pending does nothing).
fn merge(total: &mut TicketChange<ReplyPlan>, next: TicketChange<ReplyPlan>) {
    total.events.extend(next.events);
    if next.status.is_some() {
        total.status = next.status;
    }
    for c in next.cancel_timers {
        total.set_timers.retain(|s| !s.is(c.kind, &c.cause));
        total
            .timer_updates
            .retain(|u| u.timer() != (c.kind, &c.cause));
        total.cancel_timers.push(c);
    }
    total.set_timers.extend(next.set_timers);
    total.timer_updates.extend(next.timer_updates);
    total.mails.extend(next.mails);
}

/// The notifications of a customer's mail (a new ticket, or a reply on
/// one): one per address of each staff member who hears of the ticket (its
/// owner, else its queue), each carrying its reply token.
pub(super) fn notifications(
    i: &Input<'_>,
    ticket: Option<&TicketInfo>,
    owner: Option<&str>,
    status: TicketStatus,
    policy: &Evaluation,
    text: &str,
) -> Vec<ReplyPlan> {
    let route = policy.route.as_ref().map(|r| r.rule.as_str());
    let members = i.staff.notified(
        owner,
        ticket.map_or(i.mailbox.name, |t| t.mailbox.as_str()),
        Some(i.mailbox.role),
        route,
    );
    if members.is_empty() {
        return vec![];
    }
    let m = i.inbound;
    let local = |at: DateTime<Utc>| local(i.pack.zone, at);
    let to = crate::model::addresses_of(members.iter().copied());
    let data = json!({
        "vendor": i.pack.vendor,
        "new": ticket.is_none(),
        "customer": addr_json(m.from.as_ref()),
        "mailbox": {"name": i.mailbox.name, "role": i.mailbox.role.as_str(), "address": i.mailbox.address},
        "received_at": local(m.arrival),
        "ticket_state": status.as_str(),
        "owner": owner,
        "queue": members.iter().map(|m| m.name.clone()).collect::<Vec<_>>(),
        "severity": ticket.and_then(|t| t.severity).unwrap_or(policy.severity),
        "tier": policy.tier,
        "contract": policy.contract,
        "warranty": policy.warranty,
        "missing": policy.missing,
        "sla_due": policy.first_response_due.map(local),
        "route": policy.route.as_ref().map(|r| format!("{} ({})", r.to, r.rule)),
        "attachments": m.attachments.iter().map(|a| a.name.clone().unwrap_or_else(|| a.content_type.clone())).collect::<Vec<_>>(),
        "text": text.trim(),
        "rma": ticket.map_or_else(Vec::new, |t| codes(t, i.pack.zone, i.pack.language)),
        "commands": commands::SYNTAX,
    });
    vec![ReplyPlan {
        template: "staff_ticket",
        to,
        language: i.pack.language,
        from_address: i.mailbox.address.to_string(),
        reply_to: Some(i.mailbox.address.to_string()),
        auto_submitted: AutoSubmitted::Generated,
        in_reply_to: None,
        references: vec![],
        staff_tokens: true,
        relay_attachments: false,
        data,
    }]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Role;
    use crate::model::StaffMember;
    use crate::token::message_id;

    fn staff() -> StaffDirectory {
        crate::decide::fixtures::staff_directory()
    }

    fn token(s: &StaffDirectory, ticket: i64, to: &str) -> String {
        message_id(
            s.token_key.as_ref().unwrap(),
            "t.test",
            TicketId(ticket),
            to,
            crate::decide::fixtures::at("2026-03-02T10:00:00Z"),
        )
    }

    fn check(s: &StaffDirectory, refs: &[String], ev: &Evidence) -> Result<Proof, String> {
        authority(
            s,
            "t.test",
            "alice@acme.test",
            refs,
            Some(TicketId(3)),
            ev,
            crate::decide::fixtures::at("2026-03-02T11:00:00Z"),
        )
    }

    #[test]
    fn issue_11_authority_a_reply_token_alone_proves_its_ticket_and_address() {
        let s = staff();
        let refs = vec!["orig@customer.test".into(), token(&s, 3, "alice@acme.test")];
        assert_eq!(
            check(&s, &refs, &Evidence::default()),
            Ok(Proof::ReplyToken)
        );
    }

    #[test]
    fn issue_11_authority_a_token_for_another_ticket_or_another_member_proves_nothing() {
        let s = staff();
        let other_ticket = vec![token(&s, 4, "alice@acme.test")];
        let why = check(&s, &other_ticket, &Evidence::default()).unwrap_err();
        assert!(why.contains("for ticket 4, not this one"), "{why}");
        let bobs = vec![token(&s, 3, "bob@acme.test")];
        let why = check(&s, &bobs, &Evidence::default()).unwrap_err();
        assert!(why.contains("no reply token"), "{why}");
    }

    #[test]
    fn issue_11_authority_a_dkim_pass_alone_proves_and_other_verdicts_do_not() {
        let s = staff();
        let ev = |v| Evidence {
            dkim: Some(v),
            ..Evidence::default()
        };
        assert_eq!(
            check(
                &s,
                &[],
                &ev(DkimVerdict::Pass {
                    domain: "acme.test".into(),
                    selector: "s1".into()
                })
            ),
            Ok(Proof::Dkim {
                domain: "acme.test".into(),
                selector: "s1".into()
            })
        );
        for (v, says) in [
            (
                DkimVerdict::Unaligned {
                    domain: "mailer.example".into(),
                },
                "not the From domain",
            ),
            (
                DkimVerdict::Fail {
                    reason: "body hash".into(),
                },
                "fails: body hash",
            ),
            (
                DkimVerdict::NotChecked {
                    reason: "DNS timeout".into(),
                },
                "not checked: DNS timeout",
            ),
            (DkimVerdict::Unsigned, "no DKIM signature"),
        ] {
            let why = check(&s, &[], &ev(v)).unwrap_err();
            assert!(why.contains(says), "{why}");
        }
    }

    #[test]
    fn issue_11_authority_trusted_authentication_results_alone_prove() {
        let s = staff();
        let ev = Evidence {
            auth_results: Some("Authentication-Results from mx.acme.test: dkim=pass".into()),
            ..Evidence::default()
        };
        assert_eq!(
            check(&s, &[], &ev),
            Ok(Proof::AuthenticationResults {
                detail: "Authentication-Results from mx.acme.test: dkim=pass".into()
            })
        );
    }

    #[test]
    fn issue_11_authority_a_forged_authentication_results_of_another_authserv_id_proves_nothing() {
        let s = staff();
        // What intake reads from the headers: a pass, but written by a
        // server that is not ours, so it is no evidence at all.
        let results = |raw: &'static str| {
            let section = crate::header_section::read(raw.as_bytes());
            assert_eq!(section.ambiguity, None);
            crate::dkim::trusted_results(&section, &s.authserv_ids, "acme.test")
        };
        let ev = Evidence {
            auth_results: results(
                "Authentication-Results: mx.evil.test; dkim=pass header.d=acme.test; dmarc=pass header.from=acme.test\r\n\
                 Received: from a by mx.acme.test; Mon, 2 Mar 2026 10:00:00 +0000\r\n\r\n",
            ),
            ..Evidence::default()
        };
        assert_eq!(ev.auth_results, None);
        let why = check(&s, &[], &ev).unwrap_err();
        assert!(
            why.contains("no Authentication-Results pass from mx.acme.test"),
            "{why}"
        );
        // The same header from our own server is proof.
        let ev = Evidence {
            auth_results: results(
                "Authentication-Results: mx.acme.test; dkim=pass header.d=acme.test\r\n\
                 Received: from a by mx.acme.test; Mon, 2 Mar 2026 10:00:00 +0000\r\n\r\n",
            ),
            ..Evidence::default()
        };
        assert!(matches!(
            check(&s, &[], &ev),
            Ok(Proof::AuthenticationResults { .. })
        ));
    }

    #[test]
    fn issue_11_authority_no_proof_says_what_was_missing() {
        let s = staff();
        let why = check(&s, &[], &Evidence::default()).unwrap_err();
        assert!(why.contains("no reply token"), "{why}");
        assert!(
            why.contains("no Authentication-Results pass from mx.acme.test"),
            "{why}"
        );
        assert!(why.contains("DKIM was not checked"), "{why}");
        let none = StaffDirectory {
            token_key: None,
            ..staff()
        };
        let why = check(
            &none,
            &[token(&s, 3, "alice@acme.test")],
            &Evidence::default(),
        )
        .unwrap_err();
        assert!(why.contains("no reply token key is configured"), "{why}");
    }

    #[test]
    fn issue_11_queues_pick_the_owner_else_the_members_of_the_mailbox_or_route() {
        let s = staff();
        let names = |v: Vec<&StaffMember>| v.iter().map(|m| m.name.clone()).collect::<Vec<_>>();
        assert_eq!(
            names(s.notified(None, "support", Some(Role::Support), None)),
            ["alice"]
        );
        assert_eq!(
            names(s.notified(None, "returns", Some(Role::Rma), None)),
            ["bob"]
        );
        assert_eq!(
            names(s.notified(Some("bob"), "support", Some(Role::Support), None)),
            ["bob"]
        );
        assert!(
            s.notified(None, "24x7", Some(Role::TwentyFourSeven), None)
                .is_empty()
        );
        let mut routed = staff();
        routed.members[1].queues.push("AV-05".into());
        assert_eq!(
            names(routed.notified(None, "support", Some(Role::Support), Some("AV-05"))),
            ["alice", "bob"]
        );
    }
}
