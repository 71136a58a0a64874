//! What a timer does when it comes due: `on_timer` checks the ticket first (a closed ticket ends every timer but the RMA's) and sends the timer to its kind's file, which checks its reason again; a timer whose reason is gone is cancelled. Pure.

use super::escalation::on_escalation_timer;
use super::rma::on_rma_timer;
use super::sla::on_sla_timer;
use super::timer::{TimerDecision, TimerInput};
use super::waiting::on_waiting_timer;
use crate::model::{TicketInfo, TicketStatus, TimerKind, TimerRow};

/// Decides what the due `timer` on `ticket` does at `i.now`. Pure.
pub fn on_timer(ticket: &TicketInfo, timer: &TimerRow, i: &TimerInput<'_>) -> TimerDecision {
    let t = &timer.plan;
    if !t.cause.fits(t.kind) {
        return TimerDecision::cancel(
            t,
            format!("a {} timer cannot be for {}", t.kind.as_str(), t.cause),
        );
    }
    // An RMA's deadlines follow the RMA: its part is due back however the
    // ticket stands.
    if ticket.status == TicketStatus::Closed && !t.kind.is_rma() {
        return TimerDecision::cancel(t, "the ticket is closed".into());
    }
    match t.kind {
        TimerKind::RmaReminder | TimerKind::RmaDeadline | TimerKind::RmaIssueDue => {
            on_rma_timer(ticket, timer, i)
        }
        TimerKind::SlaWarning | TimerKind::SlaBreach => on_sla_timer(ticket, timer, i),
        TimerKind::CustomerReminder | TimerKind::AutoClose => on_waiting_timer(ticket, timer, i),
        TimerKind::Escalation => on_escalation_timer(ticket, timer, i),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::fixtures::*;
    use crate::model::{Event, TicketId, TimerCause, TimerPlan};
    use crate::model::{Identity, StaffDirectory};
    use crate::pack::Pack;

    fn netex() -> Pack {
        pack("netex")
    }

    fn ticket(status: TicketStatus) -> TicketInfo {
        let mut t =
            crate::decide::fixtures::ticket(4, "ann@customer.test", "2026-11-21T02:00:00-06:00");
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
                cause: TimerCause::Escalation {
                    to: "Director of Customer Services".into(),
                    after: Some("8h".into()),
                },
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
        staff.members.push(crate::model::StaffMember {
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
            scan: None,
        });
        let timers = super::super::escalation::escalation_timers(&e);
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
