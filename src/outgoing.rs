//! Outgoing mail rendered from the decision's plans: templates filled in with the ticket's name and tag, one mail per recipient where reply tokens go, and the notice of a send that failed. Intake, the scheduler, the shell's staff actions and the outbox all render through it.

use crate::compose::{self, Draft};
use crate::config::Config;
use crate::decide::ReplyPlan;
use crate::model::{Identity, Language, NewMail, TicketId, TokenKey};
use crate::templates::Templates;
use crate::thread;
use anyhow::Result;
use chrono::{DateTime, Utc};

/// A rendered mail with the template, language and recipients of the plan
/// it came from.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub template: &'static str,
    pub language: Language,
    pub to: Vec<String>,
    pub subject: String,
    pub body: String,
    pub mail: NewMail,
}

/// What rendering needs: who we are, the templates (with the pack's notice
/// texts), the ticket tag's prefix, the reply-token key, and the pack's
/// language and vendor name for the notices it writes itself.
#[derive(Debug)]
pub struct Renderer {
    pub identity: Identity,
    pub templates: Templates,
    pub ticket_prefix: String,
    pub token_key: Option<TokenKey>,
    pub language: Language,
    pub vendor: String,
}

impl Renderer {
    /// The renderer a configuration describes: its templates with the
    /// pack's notice texts compiled in.
    pub fn from_config(cfg: &Config) -> Result<Renderer> {
        let mut templates = Templates::from_source(&cfg.templates)?;
        templates.compile_notices(cfg.pack.policy.notice_texts());
        Ok(Renderer {
            identity: cfg.identity.clone(),
            templates,
            ticket_prefix: cfg.ticket_prefix.clone(),
            token_key: cfg.staff.token_key.clone(),
            language: cfg.pack.language,
            vendor: cfg.pack.vendor.clone(),
        })
    }

    /// Renders `replies` about the ticket `ticket_id` named `subject`: the
    /// template data gets `ticket` (id, tag, subject) and the subject the tag.
    /// Each reply's data is moved into its template's context, not copied.
    pub fn render_replies(
        &self,
        replies: Vec<ReplyPlan>,
        subject: &str,
        ticket_id: Option<TicketId>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Rendered>> {
        self.render_with(replies, subject, ticket_id, None, now)
    }

    /// `render_replies`, with `source` the raw mail whose attachments a
    /// relayed answer carries. A plan with `staff_tokens` becomes one mail
    /// per recipient, each with its own reply token in its Message-ID.
    pub fn render_with(
        &self,
        replies: Vec<ReplyPlan>,
        subject: &str,
        ticket_id: Option<TicketId>,
        source: Option<&[u8]>,
        now: DateTime<Utc>,
    ) -> Result<Vec<Rendered>> {
        let mut out = Vec::new();
        let tag = ticket_id.map(|t| thread::tag(&self.ticket_prefix, t.0));
        for mut r in replies {
            let mut data = r.data.take();
            if let (Some(t), Some(obj)) = (ticket_id, data.as_object_mut()) {
                obj.insert(
                    "ticket".into(),
                    serde_json::json!({"id": t, "tag": tag, "subject": subject}),
                );
            }
            let (mut subject, body) = self.templates.render(r.language, r.template, data)?;
            if let Some(tag) = &tag
                && !subject.contains(tag.as_str())
            {
                subject = format!("{subject} {tag}");
            }
            let attachments = match source {
                Some(raw) if r.relay_attachments => crate::parse::attachment_files(raw),
                _ => vec![],
            };
            let token = match (&self.token_key, ticket_id) {
                (Some(k), Some(t)) if r.staff_tokens => Some((k, t)),
                _ => None,
            };
            let groups: Vec<Vec<String>> = if token.is_some() {
                r.to.iter().map(|a| vec![a.clone()]).collect()
            } else {
                vec![r.to.clone()]
            };
            for to in groups {
                let id = match token {
                    Some((k, t)) => crate::token::message_id(
                        k,
                        &self.identity.message_id_domain,
                        t,
                        &to[0],
                        now,
                    ),
                    None => compose::new_message_id(&self.identity.message_id_domain, ticket_id),
                };
                let draft = Draft {
                    kind: r.template.to_string(),
                    from_address: r.from_address.clone(),
                    to,
                    subject: subject.clone(),
                    body: body.clone(),
                    in_reply_to: r.in_reply_to.clone(),
                    references: r.references.clone(),
                    auto_submitted: r.auto_submitted,
                    reply_to: r.reply_to.clone(),
                    attachments: attachments.clone(),
                };
                let mail = compose::build(&draft, &id, &self.identity, now)?;
                out.push(Rendered {
                    template: r.template,
                    language: r.language,
                    to: r.to.clone(),
                    subject: subject.clone(),
                    body: body.clone(),
                    mail,
                });
            }
        }
        Ok(out)
    }

    /// A staff notice about mail the outbox could not deliver.
    pub fn send_failed_notice(
        &self,
        row: &crate::store::OutboxRow,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<NewMail>> {
        // A relayed staff answer is the customer's mail: its failure is told.
        if self.identity.staff.is_empty()
            || (row.kind.starts_with("staff_") && row.kind != "staff_reply")
        {
            // Never notify about a failed notice: that way lies a loop.
            return Ok(None);
        }
        // The subject it was queued with (rows queued before it was kept: read
        // from the mail itself).
        let subject = match &row.subject {
            Some(s) => s.clone(),
            None => crate::parse::parse(&row.raw, now).subject,
        };
        let data = serde_json::json!({
            "vendor": self.vendor,
            "failure": {"error": error, "to": row.rcpt_to.join(", "), "subject": subject},
        });
        let (subject, body) = self
            .templates
            .render(self.language, "staff_send_failed", data)?;
        let draft = Draft {
            kind: "staff_send_failed".into(),
            from_address: row.mail_from.clone(),
            to: self.identity.staff.clone(),
            subject,
            body,
            in_reply_to: None,
            references: vec![],
            auto_submitted: compose::AutoSubmitted::Generated,
            reply_to: None,
            attachments: vec![],
        };
        let id = compose::new_message_id(&self.identity.message_id_domain, row.ticket_id);
        Ok(Some(compose::build(&draft, &id, &self.identity, now)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn renderer() -> Renderer {
        Renderer {
            identity: Identity {
                from_name: "Support".into(),
                message_id_domain: "tickets.acme.test".into(),
                own_addresses: vec!["support@acme.test".into()],
                staff: vec!["lead@acme.test".into()],
            },
            templates: Templates::built_in().unwrap(),
            ticket_prefix: "TKT".into(),
            token_key: None,
            language: Language::En,
            vendor: "ACME".into(),
        }
    }

    #[test]
    fn issue_24_replies_are_rendered_from_their_data_moved_not_copied() {
        let data = serde_json::json!({
            "vendor": "ACME",
            "customer": {"name": "Ann Lee", "address": "ann@example.net"},
            "received_at": "2026-12-07 09:00",
        });
        let replies = vec![ReplyPlan::notice(
            "ack_new",
            vec!["ann@example.net".into()],
            Language::En,
            "support@acme.test",
            data,
        )];
        let now = chrono::DateTime::UNIX_EPOCH;
        let rendered = renderer()
            .render_replies(replies, "Pool offline", Some(TicketId(7)), now)
            .unwrap();
        let body = &rendered[0].body;
        assert!(body.contains("Hello Ann Lee,"), "{body}");
        assert!(body.contains("contacting ACME support"), "{body}");
        // `ticket` was added to the data, and the tag to the subject.
        assert!(body.contains("ticket [TKT#7]: \"Pool offline\""), "{body}");
        assert!(
            rendered[0].subject.ends_with("[TKT#7]"),
            "{}",
            rendered[0].subject
        );
    }

    #[test]
    fn issue_21_a_failed_sends_notice_names_the_subject_kept_with_the_queued_mail() {
        let renderer = renderer();
        let now = chrono::DateTime::UNIX_EPOCH;
        let row = crate::store::OutboxRow {
            id: 1,
            ticket_id: Some(TicketId(3)),
            kind: "ack_new".into(),
            message_id: "m@tickets.acme.test".into(),
            mail_from: "support@acme.test".into(),
            rcpt_to: vec!["ann@example.net".into()],
            // The mail says another subject: the row's is what counts.
            raw: b"Subject: something else\r\n\r\nx".to_vec(),
            status: "failed".into(),
            attempts: 1,
            next_attempt_at: now,
            last_error: None,
            claims: 0,
            deferrals: 0,
            created_at: now,
            subject: Some("[TKT#3] We received your request".into()),
        };
        let notice = renderer
            .send_failed_notice(&row, "550 no such user", now)
            .unwrap()
            .expect("a notice to staff");
        let text = String::from_utf8_lossy(&notice.raw);
        assert!(text.contains("We received your request"), "{text}");
        assert!(!text.contains("something else"), "{text}");
        // A row queued before subjects were kept: read from the mail.
        let old = crate::store::OutboxRow {
            subject: None,
            ..row
        };
        let notice = renderer
            .send_failed_notice(&old, "550", now)
            .unwrap()
            .unwrap();
        assert!(String::from_utf8_lossy(&notice.raw).contains("something else"));
    }
}
