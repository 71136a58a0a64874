//! What the core reads of the configuration, as values `config` builds: who we are, the reply limits, the mailboxes' addresses and roles, the staff directory and its reply-token key, and the pack's length of time.

use super::vocab::Role;
use ring::hmac;
use std::fmt;
use std::time::Duration;

/// A length of time as packs write it: `90m`, `8h`, `30d`, `2w`, `2mo`, `3y`, or `5bd` (business days).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Span {
    Minutes(i64),
    Days(i64),
    Months(u32),
    BusinessDays(u32),
}

#[derive(Debug, Clone)]
pub struct Identity {
    pub from_name: String,
    pub message_id_domain: String,
    /// Lower-cased addresses that are ours: never a customer, never answered.
    pub own_addresses: Vec<String>,
    pub staff: Vec<String>,
}

impl Identity {
    pub fn is_own(&self, address: &str) -> bool {
        let a = address.to_ascii_lowercase();
        self.own_addresses.contains(&a)
    }
}

/// A token bucket for automatic replies: `burst` replies at once, refilled
/// at `per_hour` replies an hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub burst: u32,
    pub per_hour: u32,
}

impl Rate {
    /// Five acknowledgements to one address at once, then two an hour: a
    /// loop with another autoresponder stops after five replies.
    pub const DEFAULT_PER_RECIPIENT: Rate = Rate {
        burst: 5,
        per_hour: 2,
    };
    /// Five acknowledgements on one ticket at once, then one an hour.
    pub const DEFAULT_PER_TICKET: Rate = Rate {
        burst: 5,
        per_hour: 1,
    };
    /// A thousand new tickets' acknowledgements at once, then a thousand an
    /// hour: a flood of forged senders gets no more replies than that.
    pub const DEFAULT_NEW_TICKET_ACKS: Rate = Rate {
        burst: 1000,
        per_hour: 1000,
    };
}

/// Larger mail is quarantined with its header stored (`[limits] max_message_bytes`).
pub const DEFAULT_MAX_MESSAGE_BYTES: u64 = 25 * 1024 * 1024;
/// How long reading and deciding one mail may take (`[limits] max_processing_ms`).
pub const DEFAULT_MAX_PROCESSING_MS: u64 = 5000;

#[derive(Debug, Clone)]
pub struct Limits {
    pub max_message_bytes: u64,
    pub replies_per_recipient: Rate,
    pub replies_per_ticket: Rate,
    /// Every new ticket's acknowledgement, whoever it goes to.
    pub new_ticket_acks: Rate,
    /// How long reading and deciding one message may take before it is
    /// quarantined as "processing budget exceeded".
    pub max_processing: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            replies_per_recipient: Rate::DEFAULT_PER_RECIPIENT,
            replies_per_ticket: Rate::DEFAULT_PER_TICKET,
            new_ticket_acks: Rate::DEFAULT_NEW_TICKET_ACKS,
            max_processing: Duration::from_millis(DEFAULT_MAX_PROCESSING_MS),
        }
    }
}

/// The configured mailboxes as the decision and the renderer need them:
/// each one's name, the address it answers from, and its role.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mailboxes(pub Vec<(String, String, Role)>);

impl Mailboxes {
    /// The address a ticket of mailbox `name` is answered from: the first
    /// own address when the mailbox is no longer configured.
    pub fn answer_address<'a>(&'a self, identity: &'a Identity, name: &str) -> &'a str {
        self.0
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, a, _)| a.as_str())
            .or(identity.own_addresses.first().map(String::as_str))
            .unwrap_or_default()
    }

    /// The role of mailbox `name`, if it is configured.
    pub fn role(&self, name: &str) -> Option<Role> {
        self.0
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, _, r)| *r)
    }
}

/// A staff member (`[staff.members.NAME]`): who may act on tickets by
/// mail, once their mail is proven theirs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffMember {
    /// The name `#assign` and `ticketd assign` use.
    pub name: String,
    /// How staff mail names them ("Alice Example"); the name when not set.
    pub display: String,
    /// Lower-cased.
    pub addresses: Vec<String>,
    /// Mailbox names or roles, pack route rule IDs, or `*`.
    pub queues: Vec<String>,
}

/// The addresses of `members`, in order.
pub fn addresses_of<'a>(members: impl IntoIterator<Item = &'a StaffMember>) -> Vec<String> {
    members
        .into_iter()
        .flat_map(|m| m.addresses.iter().cloned())
        .collect()
}

/// How DKIM signatures of staff mail are checked (`[staff] dkim`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DkimSettings {
    /// The DNS servers asked for keys; empty: the system's (/etc/resolv.conf).
    pub nameservers: Vec<std::net::SocketAddr>,
    pub timeout: Duration,
}

/// Staff: the people a pack's rules name, by the name the pack uses
/// ("Director of Customer Services"), with their addresses; the staff
/// members who work tickets by mail, and how their mail is proven theirs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffDirectory {
    pub recipients: std::collections::BTreeMap<String, Vec<String>>,
    /// How long before a first-response target staff are warned.
    pub sla_warning_lead: Span,
    /// Staff get first-response warnings and breach notices (`[staff] sla_notices`, default on).
    pub sla_notices: bool,
    pub members: Vec<StaffMember>,
    /// The reply tokens' key; without one, notifications carry no token.
    pub token_key: Option<TokenKey>,
    /// Authserv-ids whose Authentication-Results are trusted, lower-cased.
    pub authserv_ids: Vec<String>,
    /// `None`: DKIM signatures are not checked.
    pub dkim: Option<DkimSettings>,
}

impl Default for StaffDirectory {
    fn default() -> Self {
        StaffDirectory {
            recipients: Default::default(),
            sla_warning_lead: Span::Minutes(60),
            sla_notices: true,
            members: vec![],
            token_key: None,
            authserv_ids: vec![],
            dkim: Some(DkimSettings {
                nameservers: vec![],
                timeout: Duration::from_secs(5),
            }),
        }
    }
}

impl StaffDirectory {
    /// The staff member `address` belongs to.
    pub fn member_by_address(&self, address: &str) -> Option<&StaffMember> {
        let a = address.trim().to_ascii_lowercase();
        self.members.iter().find(|m| m.addresses.contains(&a))
    }

    /// Every staff member's address (lower-cased).
    pub fn all_addresses(&self) -> Vec<String> {
        addresses_of(&self.members)
    }

    /// The staff member called `name` (case-insensitive).
    pub fn member(&self, name: &str) -> Option<&StaffMember> {
        self.members
            .iter()
            .find(|m| m.name.eq_ignore_ascii_case(name))
    }

    /// Who hears of a ticket: its owner once assigned, else every member
    /// whose queues name the ticket's mailbox (by name or role), the pack
    /// route its mail took (AV-04), or `*`.
    pub fn notified(
        &self,
        owner: Option<&str>,
        mailbox: &str,
        role: Option<Role>,
        route: Option<&str>,
    ) -> Vec<&StaffMember> {
        if let Some(m) = owner.and_then(|o| self.member(o)) {
            return vec![m];
        }
        self.members
            .iter()
            .filter(|m| {
                m.queues.iter().any(|q| {
                    q == "*"
                        || q == mailbox
                        || role.is_some_and(|r| q == r.as_str())
                        || route.is_some_and(|r| q == r)
                })
            })
            .collect()
    }

    /// The addresses of `name`, if the directory knows it.
    pub fn addresses(&self, name: &str) -> Option<&[String]> {
        self.recipients
            .get(name)
            .map(Vec::as_slice)
            .filter(|a| !a.is_empty())
    }
}

/// The key reply tokens are made with. Never printed.
#[derive(Clone)]
pub struct TokenKey(hmac::Key, Vec<u8>);

impl TokenKey {
    /// The HMAC key itself, for `token`.
    pub fn hmac(&self) -> &hmac::Key {
        &self.0
    }

    /// The key from its bytes (at least 16; a file or credential's content).
    pub fn new(bytes: &[u8]) -> Result<TokenKey, String> {
        if bytes.len() < 16 {
            return Err(format!(
                "the reply token key has {} bytes; it needs at least 16 (e.g. `head -c 32 /dev/urandom | base64`)",
                bytes.len()
            ));
        }
        Ok(TokenKey(
            hmac::Key::new(hmac::HMAC_SHA256, bytes),
            bytes.to_vec(),
        ))
    }
}

impl PartialEq for TokenKey {
    fn eq(&self, other: &TokenKey) -> bool {
        self.1 == other.1
    }
}

impl Eq for TokenKey {}

impl fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenKey(..)")
    }
}
