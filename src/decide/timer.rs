//! What a timer does when it comes due: pure, like the rest of the decision. Its reason is checked again first; a timer whose reason is gone is cancelled.

use super::*;

use crate::model::{TimerCancel, TimerRow};

/// Everything `on_timer` reads besides the ticket and the timer.
#[derive(Debug, Clone, Copy)]
pub struct TimerInput<'a> {
    pub pack: &'a Pack,
    pub identity: &'a Identity,
    pub staff: &'a StaffDirectory,
    /// The address the ticket's mailbox answers from.
    pub from_address: &'a str,
    /// The role of the ticket's mailbox, for the staff queues that name roles.
    pub mailbox_role: Option<Role>,
    /// The customer's last mail on the ticket, which a customer notice answers.
    pub thread: Option<&'a str>,
    pub now: DateTime<Utc>,
}

/// What a due timer does.
#[derive(Debug, Clone)]
pub enum TimerDecision {
    /// It fires: these notices are queued and these events recorded with
    /// it, the ticket may change state and other timers end.
    Fire {
        replies: Vec<ReplyPlan>,
        events: Vec<Event>,
        status: Option<TicketStatus>,
        cancel: Vec<TimerCancel>,
    },
    /// Its reason is gone: it ends without doing anything, and the history says why.
    Cancel { why: String, events: Vec<Event> },
}

impl TimerDecision {
    pub(super) fn fire(replies: Vec<ReplyPlan>, events: Vec<Event>) -> TimerDecision {
        TimerDecision::Fire {
            replies,
            events,
            status: None,
            cancel: vec![],
        }
    }

    pub(super) fn cancel(t: &TimerPlan, why: String) -> TimerDecision {
        TimerDecision::Cancel {
            events: vec![Event::TimerCancelled {
                timer: t.kind,
                key: t.key.clone(),
                rule: t.rule.clone(),
                why: why.clone(),
            }],
            why,
        }
    }
}

/// The event of a timer that did what it is for (`late`: after its due time).
pub(super) fn fired(t: &TimerPlan, late: bool) -> Event {
    Event::TimerFired {
        timer: t.kind,
        key: t.key.clone(),
        due: t.due,
        rule: t.rule.clone(),
        late,
    }
}

/// Who a timer's notice goes to.
pub(super) enum Audience {
    /// Staff, in the pack's language, outside the customer's thread.
    Staff(Vec<String>),
    /// The ticket's customer, in their language and thread.
    Customer,
}

impl TimerInput<'_> {
    /// Who hears of `ticket` on staff's side: its owner, else the staff
    /// members whose queue it is in, else the `[identity] staff` list.
    pub(super) fn staff_for(&self, ticket: &TicketInfo) -> Vec<String> {
        let members = self.staff.notified(
            ticket.owner.as_deref(),
            &ticket.mailbox,
            self.mailbox_role,
            None,
        );
        if members.is_empty() {
            return self.identity.staff.clone();
        }
        crate::config::addresses_of(members)
    }

    /// A notice about `ticket` from its mailbox: `template` rendered with
    /// the vendor, the customer, the ticket's state and `extra` under `key`.
    pub(super) fn notice(
        &self,
        template: &'static str,
        ticket: &TicketInfo,
        to: Audience,
        key: &str,
        extra: serde_json::Value,
    ) -> ReplyPlan {
        let mut data = json!({
            "vendor": self.pack.vendor,
            "customer": {"address": ticket.requester},
            "ticket_state": ticket.status.as_str(),
        });
        data[key] = extra;
        let staff = matches!(to, Audience::Staff(_));
        let (to, language, thread) = match to {
            Audience::Staff(to) => (to, self.pack.language, None),
            Audience::Customer => (
                vec![ticket.requester.clone()],
                Language::parse(&ticket.language).unwrap_or(self.pack.language),
                self.thread,
            ),
        };
        ReplyPlan {
            template,
            to,
            language,
            from_address: self.from_address.to_string(),
            reply_to: Some(self.from_address.to_string()),
            auto_submitted: AutoSubmitted::Generated,
            in_reply_to: thread.map(String::from),
            references: thread.map(String::from).into_iter().collect(),
            // A staff member can answer a staff notice like a notification.
            staff_tokens: staff,
            relay_attachments: false,
            data,
        }
    }
}

/// A timer fired later than this after its due time says so in its notice.
pub(super) const LATE_AFTER: chrono::Duration = chrono::Duration::minutes(1);

/// Decides what the due `timer` on `ticket` does at `i.now`. Pure.
pub fn on_timer(ticket: &TicketInfo, timer: &TimerRow, i: &TimerInput<'_>) -> TimerDecision {
    let t = &timer.plan;
    let cancel = |why: String| TimerDecision::cancel(t, why);
    // An RMA's deadlines follow the RMA: its part is due back however the
    // ticket stands.
    if ticket.status == TicketStatus::Closed && !t.kind.is_rma() {
        return cancel("the ticket is closed".into());
    }
    match t.kind {
        TimerKind::RmaReminder | TimerKind::RmaDeadline | TimerKind::RmaIssueDue => {
            super::rma::on_rma_timer(ticket, timer, i)
        }
        TimerKind::SlaWarning | TimerKind::SlaBreach => super::sla::on_sla_timer(ticket, timer, i),
        TimerKind::CustomerReminder | TimerKind::AutoClose => {
            super::waiting::on_waiting_timer(ticket, timer, i)
        }
        TimerKind::Escalation => {
            let name = t.to.as_deref().unwrap_or("staff");
            let (mut to, unmapped) = match i.staff.addresses(name) {
                Some(a) => (a.to_vec(), false),
                None if !i.identity.staff.is_empty() => (i.identity.staff.clone(), true),
                None => {
                    return cancel(format!(
                        "\"{name}\" has no address under [staff] recipients and no staff are configured"
                    ));
                }
            };
            // The ticket's owner hears of its escalation too.
            if let Some(owner) = ticket.owner.as_deref().and_then(|o| i.staff.member(o)) {
                for a in &owner.addresses {
                    if !to.contains(a) {
                        to.push(a.clone());
                    }
                }
            }
            let late = i.now - t.due > LATE_AFTER;
            let local = |at: DateTime<Utc>| super::local(i.pack.zone, at);
            let open_for = match escalation_span(&t.key) {
                Some(span) => span_words(span, i.pack.language),
                None => span_words_of(t.due - ticket.created_at, i.pack.language),
            };
            let reply = i.notice(
                "staff_escalation",
                ticket,
                Audience::Staff(to),
                "escalation",
                json!({
                    "to": name,
                    "rule": t.rule,
                    "due": local(t.due),
                    "opened": local(ticket.created_at),
                    "open_for": open_for,
                    "late": late,
                    "sent": local(i.now),
                    "unmapped": unmapped,
                }),
            );
            TimerDecision::fire(vec![reply], vec![fired(t, late)])
        }
    }
}

/// The key of an escalation step: who it goes to and its span from the
/// report ("Director of Customer Services after 8h"), unique on a ticket.
pub(super) fn escalation_key(to: &str, after: &str) -> String {
    format!("{to} after {after}")
}

/// The span an escalation step's key records (the inverse of [`escalation_key`]).
fn escalation_span(key: &str) -> Option<&str> {
    key.rsplit_once(" after ").map(|(_, span)| span)
}

/// A count of a unit in `lang`: "1 hour", "3 days"; "3 日"; "3 días".
fn unit(n: i64, u: Unit, lang: Language) -> String {
    let (one, many) = match (lang, u) {
        (Language::Ja, Unit::Minute) => ("分", "分"),
        (Language::Ja, Unit::Hour) => ("時間", "時間"),
        (Language::Ja, Unit::Day) => ("日", "日"),
        (Language::Ja, Unit::BusinessDay) => ("営業日", "営業日"),
        (Language::Es, Unit::Minute) => ("minuto", "minutos"),
        (Language::Es, Unit::Hour) => ("hora", "horas"),
        (Language::Es, Unit::Day) => ("día", "días"),
        (Language::Es, Unit::BusinessDay) => ("día laborable", "días laborables"),
        (Language::En, Unit::Minute) => ("minute", "minutes"),
        (Language::En, Unit::Hour) => ("hour", "hours"),
        (Language::En, Unit::Day) => ("day", "days"),
        (Language::En, Unit::BusinessDay) => ("business day", "business days"),
    };
    format!("{n} {}", if n == 1 { one } else { many })
}

#[derive(Clone, Copy)]
enum Unit {
    Minute,
    Hour,
    Day,
    BusinessDay,
}

/// A pack's span ("8h", "3d", "90m") as staff read it: "8 hours", "3 days".
fn span_words(span: &str, lang: Language) -> String {
    let (n, u) = span.split_at(
        span.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(span.len()),
    );
    let u = match u {
        "m" => Unit::Minute,
        "h" => Unit::Hour,
        "d" => Unit::Day,
        "bd" => Unit::BusinessDay,
        _ => return span.to_string(),
    };
    n.parse::<i64>()
        .map_or_else(|_| span.to_string(), |n| unit(n, u, lang))
}

/// A measured span as staff read it: "8 hours", "3 days", "1 day 6 hours".
fn span_words_of(d: chrono::Duration, lang: Language) -> String {
    let hours = d.num_hours().max(0);
    match (hours / 24, hours % 24) {
        (0, h) => unit(h, Unit::Hour, lang),
        (d, 0) => unit(d, Unit::Day, lang),
        (d, h) => format!("{} {}", unit(d, Unit::Day, lang), unit(h, Unit::Hour, lang)),
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;
    use crate::model::TicketId;

    fn netex() -> Pack {
        pack("netex")
    }

    fn ticket(status: TicketStatus) -> TicketInfo {
        let mut t =
            super::super::fixtures::ticket(4, "ann@customer.test", "2026-11-21T02:00:00-06:00");
        t.subject = "Replication down".into();
        t.status = status;
        t
    }

    fn director_step() -> TimerRow {
        TimerRow {
            id: 1,
            ticket: TicketId(4),
            plan: TimerPlan {
                kind: TimerKind::Escalation,
                key: "Director of Customer Services after 8h".into(),
                due: at("2026-11-21T10:00:00-06:00"),
                rule: "NX-03".into(),
                to: Some("Director of Customer Services".into()),
            },
        }
    }

    fn staff() -> StaffDirectory {
        let mut s = StaffDirectory::default();
        s.recipients.insert(
            "Director of Customer Services".into(),
            vec!["director@netex.test".into()],
        );
        s
    }

    fn identity() -> Identity {
        Identity {
            from_name: "Support".into(),
            message_id_domain: "tickets.netex.test".into(),
            own_addresses: vec!["support@netex.test".into()],
            staff: vec!["lead@netex.test".into()],
        }
    }

    fn run(t: &TicketInfo, timer: &TimerRow, staff: &StaffDirectory, now: &str) -> TimerDecision {
        let (pack, identity) = (netex(), identity());
        on_timer(
            t,
            timer,
            &TimerInput {
                pack: &pack,
                identity: &identity,
                staff,
                from_address: "support@netex.test",
                mailbox_role: None,
                thread: None,
                now: at(now),
            },
        )
    }

    #[test]
    fn nx_03_a_due_step_sends_its_notice_to_the_named_recipient() {
        let d = run(
            &ticket(TicketStatus::Open),
            &director_step(),
            &staff(),
            "2026-11-21T10:00:00-06:00",
        );
        let TimerDecision::Fire {
            replies, events, ..
        } = d
        else {
            panic!("fires: {d:?}");
        };
        assert_eq!(replies[0].to, ["director@netex.test"]);
        assert_eq!(replies[0].template, "staff_escalation");
        assert_eq!(replies[0].data["escalation"]["open_for"], "8 hours");
        assert_eq!(replies[0].data["escalation"]["late"], false);
        assert!(
            matches!(&events[0], Event::TimerFired { late: false, rule, .. } if rule == "NX-03")
        );
    }

    #[test]
    fn nx_03_a_step_fired_late_says_when_it_was_due() {
        let d = run(
            &ticket(TicketStatus::WaitingCustomer),
            &director_step(),
            &staff(),
            "2026-11-21T13:00:00-06:00",
        );
        let TimerDecision::Fire {
            replies, events, ..
        } = d
        else {
            panic!("fires: {d:?}");
        };
        assert_eq!(replies[0].data["escalation"]["late"], true);
        assert_eq!(replies[0].data["escalation"]["due"], "2026-11-21 10:00 CST");
        assert!(matches!(&events[0], Event::TimerFired { late: true, .. }));
    }

    #[test]
    fn nx_03_a_closed_ticket_cancels_its_step_and_says_why() {
        let d = run(
            &ticket(TicketStatus::Closed),
            &director_step(),
            &staff(),
            "2026-11-21T10:00:00-06:00",
        );
        let TimerDecision::Cancel { why, events } = d else {
            panic!("cancelled: {d:?}");
        };
        assert_eq!(why, "the ticket is closed");
        assert_eq!(events[0].kind(), "timer_cancelled");
    }

    #[test]
    fn nx_03_a_recipient_without_an_address_is_told_to_the_staff_list_instead() {
        let d = run(
            &ticket(TicketStatus::Open),
            &director_step(),
            &StaffDirectory::default(),
            "2026-11-21T10:00:00-06:00",
        );
        let TimerDecision::Fire { replies, .. } = d else {
            panic!("fires: {d:?}");
        };
        assert_eq!(replies[0].to, ["lead@netex.test"]);
        assert_eq!(replies[0].data["escalation"]["unmapped"], true);
    }

    #[test]
    fn nx_03_issue_11_an_assigned_tickets_owner_hears_of_its_escalation_with_the_named_recipient() {
        let mut staff = staff();
        staff.members.push(crate::config::StaffMember {
            name: "alice".into(),
            display: "Alice".into(),
            addresses: vec!["alice@netex.test".into()],
            queues: vec!["support".into()],
        });
        let mut t = ticket(TicketStatus::Open);
        t.owner = Some("alice".into());
        let d = run(&t, &director_step(), &staff, "2026-11-21T10:00:00-06:00");
        let TimerDecision::Fire { replies, .. } = d else {
            panic!("fires: {d:?}");
        };
        assert_eq!(replies[0].to, ["director@netex.test", "alice@netex.test"]);
        assert!(replies[0].staff_tokens, "each can answer it");
    }

    #[test]
    fn nx_03_days_keep_the_wall_clock_time_across_the_end_of_daylight_time() {
        // Severity 2, Friday 10:00 CDT; 3 days later DST has ended: 10:00 CST.
        let pack = netex();
        let text = "Severity 2: slow transfers\nHyperIP version 7.0 on Red Hat Enterprise Linux 9 drops transfers every hour since the upgrade; the log shows retransmission timeouts on the WAN side.";
        let e = pack.policy.evaluate(&crate::policy::Request {
            pack: "netex",
            arrival: at("2026-10-30T10:00:00-05:00"),
            mailbox_name: "support",
            mailbox_role: crate::model::Role::Support,
            text,
            attachments: &[],
            serials: &[],
            invoices: &[],
            tax_ids: &[],
            contract: None,
            language: crate::model::Language::En,
            ticket_created: None,
            known_facts: &[],
            quota_used: &Default::default(),
            rma_issued: false,
            acknowledged: at("2026-10-30T10:00:00-05:00"),
        });
        let timers = super::super::person::escalation_timers(&e);
        let dues: Vec<_> = timers.iter().map(|t| t.due).collect();
        assert_eq!(
            dues,
            [
                at("2026-11-02T10:00:00-06:00"),
                at("2026-11-06T10:00:00-06:00")
            ]
        );
        assert!(timers.iter().all(|t| t.rule == "NX-03"));
    }
}
