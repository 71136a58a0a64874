//! Who wrote a mail: a person, an auto-responder, a bounce, a list, or ourselves; with the signs that decided.

use crate::dsn::{
    Bounce, ReportType, body_shape, from_body, from_report, read_report, report_type_of,
};
use crate::model::Identity;
use crate::parse::Inbound;
use crate::text::{Phrases, first_chars};
use serde::Serialize;

pub use crate::compose::LOOP_HEADER;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    Human,
    AutoReply,
    Bounce,
    List,
    OwnLoop,
    Unparseable,
}

impl Class {
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Human => "human",
            Class::AutoReply => "auto_reply",
            Class::Bounce => "bounce",
            Class::List => "list",
            Class::OwnLoop => "own_loop",
            Class::Unparseable => "unparseable",
        }
    }

    /// Mail written by a machine: never answered automatically.
    pub fn is_machine(self) -> bool {
        !matches!(self, Class::Human)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Classification {
    pub class: Class,
    /// Which headers or signs decided, in the order they were checked.
    pub reasons: Vec<String>,
    /// For a bounce: what failed, for whom, and which mail of ours it returns.
    pub bounce: Option<Bounce>,
    /// The receiving server's verdict that the mail is spam (`X-Spam-Flag:
    /// YES` and its kin), when it gave one.
    pub spam: Option<String>,
}

impl Classification {
    fn new(class: Class, reasons: Vec<String>) -> Classification {
        Classification {
            class,
            reasons,
            bounce: None,
            spam: None,
        }
    }
}

fn local_part(address: &str) -> String {
    address
        .rsplit_once('@')
        .map(|(l, _)| l)
        .unwrap_or(address)
        .to_ascii_lowercase()
}

fn domain_of(id: &str) -> Option<String> {
    id.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase())
}

/// Subjects that delivery systems give their failure reports (matched at the
/// start of the subject, case-insensitively).
const BOUNCE_SUBJECTS: &[&str] = &[
    "undelivered mail returned to sender",
    "delivery status notification",
    "mail delivery failed",
    "mail delivery failure",
    "returned mail",
    "undeliverable",
    "undelivered mail",
    "undeliverable mail",
    "non-deliverable",
    "nondeliverable",
    "delivery failure",
    "mail delivery warning",
    "delivery warning",
    "delivery failed",
    "delivery notification",
    "failure notice",
    "complaint about message from",
    "message delivery failure",
    "mail system error",
    "delayed mail",
    "warning: could not send message",
    "delivery has failed",
    "unzustellbar",
    "no se puede entregar",
    "no entregado",
    "no se ha podido entregar",
    "permanent delivery failure",
    "message status - undeliverable",
    "mail could not be delivered",
    "message could not be delivered",
    "entrega fallida",
    "non recapitabile",
    "non remis",
    // Security gateways and filters that send their own notices of mail
    // they stopped, and the other languages' MTAs.
    "message blocked",
    "message rejected",
    "mail rejected",
    "blocked message",
    "message not delivered",
    "mail delivery system",
    "returned to sender",
    "delivery has been delayed",
    "delivery delayed",
    "nicht zustellbar",
    "não entregue",
    "mensagem não entregue",
    "onbestelbaar",
    "niedostarczona",
    "wiadomość niedostarczona",
    "olevererbart",
    "kunde inte levereras",
    "не доставлено",
    "недоставленное сообщение",
    "не вдалося доставити",
    "退信",
    "无法投递",
    "邮件投递失败",
    "배달 실패",
    "전송 실패",
    "配信不能",
    "配信エラー",
    "配送エラー",
    "配信できませんでした",
    "エラーメール",
];

/// Subjects of auto-responders (matched at the start of the subject; the
/// Japanese ones anywhere, as they are often bracketed, 【自動返信】).
const AUTO_SUBJECTS: &[&str] = &[
    "out of office",
    "out of the office",
    "automatic reply",
    "auto reply",
    "auto-reply",
    "autoreply",
    "auto response",
    "auto-response",
    "autoresponse",
    "automated response",
    "auto:",
    "away from",
    "on vacation",
    "vacation reply",
    "abwesenheitsnotiz",
    "abwesend",
    "réponse automatique",
    "absence",
    // Challenge-response and quarantine systems: machines answering for a
    // mailbox, asking the sender to prove something or telling of held mail.
    "please confirm your message",
    "please verify your email",
    "verify your message",
    "sender verification",
    "verificación de remitente",
    "verificacion de remitente",
    "bitte bestätigen sie ihre",
    "demande d'authentification",
    "action required: confirm your email",
    "confirm your email to",
    "your message is awaiting verification",
    "approval required",
    "spam quarantine",
    "quarantine summary",
    "quarantine notification",
    "message quarantined",
    "messages held for review",
    "respuesta automática",
    "respuesta automatica",
    "fuera de la oficina",
    "fuera de oficina",
    "ausente",
    "ausencia",
];
static AUTO_SUBJECTS_JA: Phrases = Phrases::new(&[
    "自動応答",
    "自動返信",
    "自動送信",
    "不在通知",
    "不在のお知らせ",
    "不在連絡",
    "【不在】",
    "[不在]",
    "送信者確認",
    "送信者認証",
]);

/// Phrases of out-of-office bodies (searched in the first 1000 characters).
static AUTO_BODIES: Phrases = Phrases::new(&[
    "i am out of the office",
    "i'm out of the office",
    "i will be out of the office",
    "i am currently out of",
    "i'm currently out of",
    "i am away from the office",
    "i am on vacation",
    "i'm on vacation",
    "i am on annual leave",
    "limited access to email",
    "limited access to e-mail",
    "this is an automatic reply",
    "this is an automated reply",
    "this is an auto-reply",
    "to the allowed list",
    "to my allowed list",
    "to the approved senders",
    "to my approved senders",
    "added to the whitelist",
    "added to my whitelist",
    "click the link below to verify",
    "prove you are a human",
    "confirm that you are a human",
    "i use a challenge-response",
    "has been quarantined",
    "have been quarantined",
    "held in quarantine",
    "held for review by",
    "不在にしております",
    "自動応答",
    "自動返信",
    "fuera de la oficina",
    "estoy de vacaciones",
    "estaré fuera de",
    "respuesta automática",
]);

/// What only a challenge-response system writes, asking the sender to
/// prove they are a person (searched in the first 1500 characters, lower
/// case); beside a link, two points.
static CHALLENGE_BODIES: Phrases = Phrases::new(&[
    "confirm that you are a real person",
    "confirm you are a real person",
    "confirm that you are a human",
    "until you confirm",
    "verify your address",
    "verify your email address",
    "sender whitelist",
    "uses a whitelist",
    "remitentes verificados",
    "confirme que es una persona",
    "confirmar que usted es una persona",
    "verificar su dirección",
    "送信者の確認",
    "送信者確認",
    "認証を完了",
    "dass sie ein mensch sind",
    "dass sie kein roboter sind",
    "bestätigen sie ihre e-mail",
    "merci de confirmer votre envoi",
    "confirmer que vous êtes une personne",
    "confirmer votre adresse",
]);

/// What a report that a mail was refused as spam says (searched in the
/// first 1500 characters, lower case); with a copy of the mail attached,
/// it is a bounce.
static SPAM_REJECTIONS: Phrases = Phrases::new(&[
    "rejected as spam",
    "rejected by our spam filter",
    "identified as spam",
    "classified as spam",
    "detected as spam",
    "considered spam",
    "spam firewall",
    "bulk email filter",
    "filtro antispam",
    "filtro de spam",
    "rechazado por spam",
    "als spam eingestuft",
    "als spam abgewiesen",
    "considéré comme spam",
    "comme spam",
    "迷惑メールと判定",
    "迷惑メールとして",
    "被判定为垃圾邮件",
]);

/// Words of a subject that says a mail could not be delivered, anywhere in
/// it (lower case): one point.
static UNDELIVERED_IN_SUBJECT: Phrases = Phrases::new(&[
    "could not be delivered",
    "undeliverable",
    "undelivered",
    "not delivered",
    "delivery failure",
    "delivery failed",
    "no se ha podido entregar",
    "no se pudo entregar",
    "nicht zugestellt",
    "non distribué",
    "配送できませんでした",
    "配信できませんでした",
    "届きませんでした",
]);

/// Sender local parts that never read their mail.
const NO_REPLY_LOCALS: &[&str] = &[
    "noreply",
    "no-reply",
    "no_reply",
    "donotreply",
    "do-not-reply",
    "do_not_reply",
];

/// Header fields that only list managers and bulk senders write.
const LIST_HEADERS: &[(&str, &str)] = &[
    ("list-id", "List-Id"),
    ("list-unsubscribe", "List-Unsubscribe"),
    ("list-post", "List-Post"),
    ("list-help", "List-Help"),
    ("list-subscribe", "List-Subscribe"),
    ("list-owner", "List-Owner"),
    ("list-archive", "List-Archive"),
    ("mailing-list", "Mailing-List"),
    ("x-mailman-version", "X-Mailman-Version"),
    ("x-beenthere", "X-BeenThere"),
    ("x-loop", "X-Loop"),
    ("x-listmember", "X-ListMember"),
    ("x-list", "X-List"),
    ("x-ml-name", "X-ML-Name"),
    ("x-mlserver", "X-MLServer (fml)"),
    ("x-ml-count", "X-ML-Count"),
    ("x-mailing-list", "X-Mailing-List"),
    ("x-listserver", "X-Listserver"),
    ("x-list-subscribe", "X-List-Subscribe"),
    ("x-list-unsubscribe", "X-List-Unsubscribe"),
    ("x-list-post", "X-List-Post"),
    ("x-campaign", "X-Campaign"),
    ("x-campaignid", "X-CampaignID"),
    ("x-mc-user", "X-MC-User (Mailchimp)"),
    ("x-csa-complaints", "X-CSA-Complaints"),
];

/// Header fields mail providers stamp on everything they relay, bulk or
/// not: Amazon SES, SendGrid and Mailgun carry a person's one-to-one mail
/// too, and Feedback-ID tags any sender's stream. They are no sign of bulk,
/// alone or together; they are named among the reasons of mail that is
/// bulk by another sign.
const PROVIDER_HEADERS: &[(&str, &str)] = &[
    ("x-mailgun-tag", "X-Mailgun-Tag"),
    ("x-sg-eid", "X-SG-EID (SendGrid)"),
    ("x-ses-outgoing", "X-SES-Outgoing"),
    ("x-feedback-id", "X-Feedback-ID"),
    ("feedback-id", "Feedback-ID"),
];

/// The subject under a forwarding prefix (Fwd:, Fw:, TR:, WG:, RV:, 転送:), if it has one.
fn forwarded_subject(subject: &str) -> Option<&str> {
    let s = subject.trim_start();
    ["fwd:", "fw:", "tr:", "wg:", "rv:", "enc:", "転送:"]
        .iter()
        .find_map(|p| {
            s.get(..p.len())
                .filter(|h| h.eq_ignore_ascii_case(p))
                .map(|_| s[p.len()..].trim_start())
        })
}

/// Whether a body is a forwarded delivery report and nothing else: the report's
/// fields appear (quoted or not) and the text before them is only a forwarding line.
fn forwards_a_report(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    let Some(at) = [
        "final-recipient:",
        "action: failed",
        "status: 5.",
        "status: 4.",
    ]
    .iter()
    .filter_map(|k| lower.find(k))
    .min() else {
        return false;
    };
    let own: usize = lower[..at]
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('>') && !l.contains("forwarded"))
        .map(|l| l.split_whitespace().count())
        .sum();
    own <= 3
}

/// Words that mix letters with symbols or digits standing for letters, as spam
/// writes to slip past word filters (`P@tches`, `l!ke`, `kn0vv`, `G01d`).
fn obfuscated_words(text: &str) -> usize {
    text.split_whitespace()
        .take(5000)
        .filter(|w| {
            // Only a word with one of the stand-in characters can be one
            // (checked first: most words have none).
            if !w
                .bytes()
                .any(|b| matches!(b, b'@' | b'!' | b'|' | b'(' | b'$' | b'0' | b'1'))
            {
                return false;
            }
            let w = w.trim_matches(|c: char| !c.is_alphanumeric());
            if w.len() < 3 || w.contains(['.', '/', ':']) {
                return false;
            }
            let letters = w.chars().filter(|c| c.is_ascii_alphabetic()).count();
            let chars: Vec<char> = w.chars().collect();
            let inner = chars.len() >= 3
                && chars[1..chars.len() - 1].iter().enumerate().any(|(i, c)| {
                    let (prev, next) = (chars[i], chars[i + 2]);
                    matches!(c, '@' | '!' | '|' | '(' | '$' | '0' | '1')
                        && prev.is_ascii_alphabetic()
                        && (next.is_ascii_alphabetic() || matches!(next, '0' | '@'))
                });
            letters >= 2 && inner
        })
        .count()
}

fn starts_with_any(subject: &str, list: &[&str]) -> Option<String> {
    let s = subject.trim_start().to_lowercase();
    list.iter()
        .find(|p| s.starts_with(*p))
        .map(|p| p.to_string())
}

/// Signs that a person wrote the mail: a mail client, or files attached.
fn human_signs(m: &Inbound) -> Vec<String> {
    let mut out = Vec::new();
    for h in ["user-agent", "x-mailer"] {
        if let Some(v) = m.header(h) {
            out.push(format!("{h}: {}", v.chars().take(60).collect::<String>()));
        }
    }
    if m.attachments.iter().any(|a| {
        !a.content_type.starts_with("message/") && !a.content_type.starts_with("text/rfc822")
    }) {
        out.push("has attachments".into());
    }
    out
}

/// Classifies `m` from its headers and text. The daemon uses
/// [`classify_message`], which also reads the report parts of the raw mail.
pub fn classify(m: &Inbound, identity: &Identity) -> Classification {
    classify_with(m, None, identity)
}

/// Classifies `m`, reading the MIME report parts of `raw` (its bytes) for
/// delivery reports: per-recipient status and the returned Message-ID.
pub fn classify_message(raw: &[u8], m: &Inbound, identity: &Identity) -> Classification {
    classify_with(m, Some(raw), identity)
}

/// The order of the checks, and how signs add up:
///
/// 1. unreadable mail is `unparseable`; our loop header, our Message-ID
///    domain or one of our addresses as sender make `own_loop`.
/// 2. `bounce`: a multipart/report with report-type=delivery-status,
///    X-Failed-Recipients, or a MAILER-DAEMON/postmaster sender decide alone.
///    A null Return-Path, a mail system's Return-Path (MAILER-DAEMON,
///    postmaster), a bounce subject, an MTA's body shape and an SMTP failure
///    status quoted in the body are each one point; two points are a bounce,
///    and so is a bounce subject alone when nothing says a person wrote (a
///    mail client header, attachments).
/// 3. `auto_reply`: ARF feedback reports and MDN read receipts (machine
///    reports about a mail, never a failure); then Auto-Submitted other than
///    "no", X-Autoreply, X-Autorespond, Precedence: auto_reply and the other
///    autoresponder headers decide alone. An explicit `Auto-Submitted: no`
///    outweighs every weaker sign below. Weak signs are one point each: an
///    out-of-office, challenge-response or quarantine subject, such a body
///    ("added to my approved senders", "have been quarantined"), X-Auto-Response-Suppress
///    (Exchange puts it on its OOF replies, but some clients put it on
///    people's mail too), and Exchange's rules loop and rules-agent headers.
///    Two points are an auto-reply; so is an out-of-office subject alone
///    when nothing says a person wrote.
/// 4. `list`: List-* headers, Precedence list/bulk/junk, list managers' and
///    bulk senders' headers.
/// 5. a null Return-Path or a no-reply sender alone: `auto_reply`.
/// 6. otherwise `human`.
///
/// Apart from the class, the receiving server's spam verdict
/// ([`spam_verdict`]) is read on every readable mail.
fn classify_with(m: &Inbound, raw: Option<&[u8]>, identity: &Identity) -> Classification {
    let mut c = class_of(m, raw, identity);
    if m.parsed {
        c.spam = spam_verdict(m);
    }
    c
}

/// The receiving server's spam verdict among the headers: SpamAssassin's
/// X-Spam-Flag and X-Spam-Status, Amazon SES's X-SES-Spam-Verdict,
/// Exchange Online's SFV:SPM and SCL, Barracuda's, Rspamd's X-Spam,
/// MailScanner's. A mail a spammer sends with such a header only sets
/// their own mail aside.
pub fn spam_verdict(m: &Inbound) -> Option<String> {
    let yes = |v: &str| {
        let v = v.trim().to_ascii_lowercase();
        ["yes", "true", "spam"].iter().any(|p| {
            v.strip_prefix(p)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with([',', ';', ' ']))
        })
    };
    for (h, label) in [
        ("x-spam-flag", "X-Spam-Flag"),
        ("x-spam-status", "X-Spam-Status"),
        ("x-spam", "X-Spam"),
        ("x-barracuda-spam-status", "X-Barracuda-Spam-Status"),
        ("x-mailscanner-spamcheck", "X-MailScanner-SpamCheck"),
        ("x-spam-verdict", "X-Spam-Verdict"),
    ] {
        if let Some(v) = m.header(h).filter(|v| yes(v)) {
            return Some(format!(
                "{label}: {}",
                v.chars().take(60).collect::<String>()
            ));
        }
    }
    if let Some(v) = m.header("x-ses-spam-verdict")
        && v.trim().eq_ignore_ascii_case("fail")
    {
        return Some("X-SES-Spam-Verdict: FAIL".into());
    }
    if let Some(v) = m.header("x-forefront-antispam-report") {
        let upper = v.to_ascii_uppercase();
        if let Some(sfv) = ["SFV:SPM", "SFV:SKS"].iter().find(|p| upper.contains(*p)) {
            return Some(format!("X-Forefront-Antispam-Report: {sfv}"));
        }
    }
    if let Some(scl) = m
        .header("x-ms-exchange-organization-scl")
        .and_then(|v| v.trim().parse::<i32>().ok())
        .filter(|scl| *scl >= 5)
    {
        return Some(format!("X-MS-Exchange-Organization-SCL: {scl}"));
    }
    None
}

/// The class of `m` and the signs that decided it.
fn class_of(m: &Inbound, raw: Option<&[u8]>, identity: &Identity) -> Classification {
    if !m.parsed {
        return Classification::new(Class::Unparseable, m.warnings.clone());
    }
    let own = own_loop_signs(m, identity);
    if !own.is_empty() {
        return Classification::new(Class::OwnLoop, own);
    }
    let env = Envelope::of(m);
    if let Some(bounce) = bounce(m, raw, identity, &env) {
        return bounce;
    }
    let reports = report_signs(raw, env.report_type);
    if !reports.is_empty() {
        return Classification::new(Class::AutoReply, reports);
    }
    let token = auto_submitted(m);
    let explicit_no = token.as_deref() == Some("no");
    let headers = autoresponder_headers(m, token.as_deref());
    if !headers.is_empty() {
        return Classification::new(Class::AutoReply, headers);
    }
    let (weak, auto_subject) = weak_auto_reply_signs(m, &env.head);
    let weak_enough = weak.points >= 2 || (auto_subject.is_some() && env.humans.is_empty());
    if weak_enough && !explicit_no {
        return Classification::new(Class::AutoReply, weak.reasons);
    }
    let mut reasons = Vec::new();
    if weak_enough {
        reasons.push("Auto-Submitted: no outweighs the weaker auto-reply signs".into());
    }
    let list = list_signs(m, env.from);
    if !list.is_empty() {
        reasons.extend(list);
        return Classification::new(Class::List, reasons);
    }
    last_signs(reasons, explicit_no, &env)
}

/// What several checks read of a mail: its sender, its Return-Path, its
/// report type, and the signs that a person wrote it.
struct Envelope<'m> {
    from: &'m str,
    from_local: String,
    null_return_path: bool,
    content_type: &'m str,
    report_type: Option<ReportType>,
    humans: Vec<String>,
    /// The text's first `HEAD_CHARS` characters, lower-cased once for the
    /// checks that read the start of the body.
    head: String,
}

/// How much of the text the body checks read, in characters.
const HEAD_CHARS: usize = 4000;

impl<'m> Envelope<'m> {
    fn of(m: &'m Inbound) -> Envelope<'m> {
        let from = m.sender_address().unwrap_or("");
        let content_type = m.header("content-type").unwrap_or("");
        Envelope {
            from,
            from_local: local_part(from),
            null_return_path: m
                .header("return-path")
                .is_some_and(|rp| rp.trim().trim_matches(['<', '>', ' ']).is_empty()),
            content_type,
            report_type: report_type_of(content_type),
            humans: human_signs(m),
            head: first_chars(&m.text, HEAD_CHARS).to_lowercase(),
        }
    }
}

/// Signs counted toward one class: the reasons, whether one of them
/// decides alone, and the points of the weak ones.
#[derive(Default)]
struct Tally {
    reasons: Vec<String>,
    strong: bool,
    points: u32,
}

impl Tally {
    fn strong(&mut self, reason: String) {
        self.reasons.push(reason);
        self.strong = true;
    }

    fn weak(&mut self, reason: String) {
        self.reasons.push(reason);
        self.points += 1;
    }
}

/// Our own mail, come back: our loop header, one of our addresses as
/// sender, a Message-ID in our domain.
fn own_loop_signs(m: &Inbound, identity: &Identity) -> Vec<String> {
    let mut reasons = Vec::new();
    let loop_header = LOOP_HEADER.to_ascii_lowercase();
    if let Some(v) = m.header(&loop_header)
        && v.trim().eq_ignore_ascii_case(&identity.message_id_domain)
    {
        reasons.push(format!("{LOOP_HEADER}: {}", v.trim()));
    }
    if let Some(from) = m.sender_address()
        && identity.is_own(from)
    {
        reasons.push(format!("From is our own address {from}"));
    }
    if let Some(id) = &m.message_id
        && domain_of(id).as_deref()
            == Some(identity.message_id_domain.to_ascii_lowercase().as_str())
    {
        reasons.push(format!("Message-ID <{id}> is in our domain"));
    }
    reasons
}

/// Bounces and other delivery reports: a strong sign, two weak ones, or
/// a bounce subject with no sign of a person; with what the bounce says.
fn bounce(
    m: &Inbound,
    raw: Option<&[u8]>,
    identity: &Identity,
    env: &Envelope<'_>,
) -> Option<Classification> {
    let mut t = Tally::default();
    bounce_header_signs(m, env, &mut t);
    let bounce_subject = bounce_text_signs(m, &env.head, &mut t);
    if m.header("x-ms-exchange-message-is-ndr").is_some() {
        t.strong("X-MS-Exchange-Message-Is-Ndr present".into());
    }
    if !(t.strong || t.points >= 2 || (bounce_subject.is_some() && env.humans.is_empty())) {
        return None;
    }
    let mut reasons = t.reasons;
    if env.null_return_path {
        reasons.push("Return-Path: <>".into());
    }
    let bounce = bounce_details(m, raw, identity);
    if let Some(b) = &bounce {
        reasons.push(describe(b));
    }
    Some(Classification {
        class: Class::Bounce,
        reasons,
        bounce,
        spam: None,
    })
}

/// A mail system's own headers: a delivery-status report, the failed
/// recipients, a MAILER-DAEMON sender (strong); a null or mail-system
/// Return-Path (weak).
fn bounce_header_signs(m: &Inbound, env: &Envelope<'_>, t: &mut Tally) {
    if env.report_type == Some(ReportType::DeliveryStatus) {
        t.strong("Content-Type: multipart/report; report-type=delivery-status".into());
    }
    let bare_type = env
        .content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if bare_type == "message/delivery-status" {
        t.strong("Content-Type: message/delivery-status".into());
    }
    if let Some(v) = m.header("x-failed-recipients") {
        t.strong(format!("X-Failed-Recipients: {}", v.trim()));
    }
    if is_mail_system(&env.from_local) {
        t.strong(format!("From {}", env.from));
    }
    if env.null_return_path {
        t.points += 1;
    }
    // Weak alone, conclusive with another: a Return-Path of the mail system.
    if let Some(rp) = m.header("return-path").and_then(address_in)
        && is_mail_system(&local_part(&rp))
    {
        t.weak(format!("Return-Path <{rp}>"));
    }
}

/// MAILER-DAEMON, postmaster and their spellings (mailer_daemon, ...).
fn is_mail_system(local: &str) -> bool {
    let squashed: String = local
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    squashed.starts_with("mailerdaemon") || squashed.starts_with("postmaster")
}

/// A bounce's words: an SMTP failure status quoted in the body, a bounce
/// subject, an MTA's body shape (weak); a forwarded report with no text of
/// its own (strong). Gives the bounce subject.
fn bounce_text_signs(m: &Inbound, head: &str, t: &mut Tally) -> Option<String> {
    if let Some(status) = smtp_failure_status(head) {
        t.weak(format!("body quotes an SMTP failure status ({status})"));
    }
    let bounce_subject = starts_with_any(&m.subject, BOUNCE_SUBJECTS);
    // A person forwarding a delivery report without a word of their own.
    if bounce_subject.is_none()
        && let Some(inner) = forwarded_subject(&m.subject)
        && let Some(s) = starts_with_any(inner, BOUNCE_SUBJECTS)
        && forwards_a_report(&m.text)
    {
        t.strong(format!(
            "a forwarded delivery report (\"{s}\") with no text of its own"
        ));
    }
    if let Some(s) = &bounce_subject {
        t.weak(format!("subject starts with \"{s}\""));
    }
    if let Some(mta) = body_shape(&m.text) {
        t.weak(format!("body has the shape of a {mta} bounce"));
    }
    old_mta_signs(m, head, bounce_subject.is_some(), t);
    bounce_subject
}

/// Older MTAs' plain-text bounces, with no report and no MAILER-DAEMON:
/// a subject that says the mail was not delivered (anywhere in it, not a
/// reply or forward) and first lines that tell the reader "your message
/// could not be delivered", a point each; a report that a mail was refused
/// as spam with its copy attached decides alone.
fn old_mta_signs(m: &Inbound, lower: &str, bounce_subject: bool, t: &mut Tally) {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let re = RE.get_or_init(|| {
        regex::Regex::new(
            r"(?i)(?:your (?:message|e-?mail|mail)|the (?:message|e-?mail) (?:that )?you sent|the following message|the attached message|su mensaje|el mensaje que envió|ihre nachricht|votre message|お送りいただいた(?:メッセージ|メール))[^
]{0,80}?(?:could not be delivered|was not delivered|was undeliverable|were undeliverable|not been delivered|did not reach|permanent fatal|could not be sent|no ha podido ser entregado|no pudo ser entregado|no se pudo entregar|konnte nicht zugestellt|n'a pas pu être (?:remis|distribué)|配送できませんでした|配信できませんでした|届きませんでした)",
        )
        .expect("a valid pattern")
    });
    let subject = m.subject.to_lowercase();
    let replying = [
        "re:", "aw:", "sv:", "fw:", "fwd:", "wg:", "rv:", "tr:", "返信:", "転送:",
    ]
    .iter()
    .any(|p| subject.trim_start().starts_with(p));
    if !bounce_subject
        && !replying
        && let Some(w) = UNDELIVERED_IN_SUBJECT.first_in(&subject)
    {
        t.weak(format!("subject says \"{w}\""));
    }
    let head = first_chars(&m.text, 600);
    if let Some(found) = re.find(head) {
        t.weak(format!(
            "first lines say \"{}\"",
            found.as_str().chars().take(80).collect::<String>()
        ));
    }
    let copy_attached = m.attachments.iter().any(|a| {
        a.content_type.starts_with("message/rfc822")
            || a.content_type.starts_with("text/rfc822-headers")
    });
    if copy_attached && let Some(p) = SPAM_REJECTIONS.first_in(first_chars(lower, 1500)) {
        t.strong(format!(
            "a report that a mail was refused as spam (\"{p}\"), its copy attached"
        ));
    }
}

/// Reports about a mail that are not failures (ARF, MDN): answered by nobody.
fn report_signs(raw: Option<&[u8]>, report_type: Option<ReportType>) -> Vec<String> {
    let mut reasons = Vec::new();
    let report = match (report_type, raw) {
        (Some(ReportType::Feedback | ReportType::Disposition), Some(raw)) => Some(read_report(raw)),
        _ => None,
    };
    match report_type {
        Some(ReportType::Feedback) => {
            reasons.push("Content-Type: multipart/report; report-type=feedback-report (ARF)".into())
        }
        Some(ReportType::Disposition) => reasons.push(
            "Content-Type: multipart/report; report-type=disposition-notification (MDN)".into(),
        ),
        _ => {}
    }
    if let Some(r) = &report {
        if r.feedback_part && report_type != Some(ReportType::Feedback) {
            reasons.push("message/feedback-report part".into());
        }
        if r.disposition_part && report_type != Some(ReportType::Disposition) {
            reasons.push("message/disposition-notification part".into());
        }
    }
    reasons
}

/// The token of an Auto-Submitted header (RFC 3834), lowercase.
fn auto_submitted(m: &Inbound) -> Option<String> {
    let v = m.header("auto-submitted")?.trim().to_ascii_lowercase();
    Some(
        v.split([';', ' ', '('])
            .next()
            .unwrap_or("")
            .trim()
            .to_string(),
    )
}

/// Auto-responders by their headers (RFC 3834 and the de-facto ones):
/// each decides alone. `token` is Auto-Submitted's.
fn autoresponder_headers(m: &Inbound, token: Option<&str>) -> Vec<String> {
    let mut reasons = Vec::new();
    if let Some(token) = token
        && token != "no"
        && !token.is_empty()
    {
        reasons.push(format!("Auto-Submitted: {token}"));
    }
    for (h, label) in [
        ("x-autoreply", "X-Autoreply"),
        ("x-autorespond", "X-Autorespond"),
        ("x-autoresponder", "X-Autoresponder"),
        ("x-autoresponse", "X-Autoresponse"),
        ("x-autogenerated", "X-Autogenerated"),
        ("x-autoreply-from", "X-AutoReply-From"),
        ("x-mail-autoreply", "X-Mail-Autoreply"),
        ("x-vacation", "X-Vacation"),
        ("x-apple-auto-reply", "X-Apple-Auto-Reply"),
        ("x-zimbra-autoreply", "X-Zimbra-Autoreply"),
        ("x-fc-machinegenerated", "X-FC-MachineGenerated"),
        ("x-cron-env", "X-Cron-Env"),
    ] {
        if let Some(v) = m.header(h) {
            let v = v.trim().to_ascii_lowercase();
            if !matches!(v.as_str(), "no" | "false" | "0") {
                reasons.push(format!("{label}: {v}"));
            }
        }
    }
    if let Some(v) = m.header("x-post-messageclass")
        && v.to_ascii_lowercase().contains("autoresponder")
    {
        reasons.push(format!("X-POST-MessageClass: {}", v.trim()));
    }
    if let Some(v) = m.header("delivered-to")
        && v.trim().eq_ignore_ascii_case("autoresponder")
    {
        reasons.push("Delivered-To: Autoresponder".into());
    }
    for h in ["precedence", "x-precedence"] {
        if let Some(p) = m.header(h)
            && p.trim().eq_ignore_ascii_case("auto_reply")
        {
            reasons.push("Precedence: auto_reply".into());
        }
    }
    reasons
}

/// The weak signs of an auto-reply, a point each: an out-of-office
/// subject or body, X-Auto-Response-Suppress, Exchange's rules headers.
/// Gives the out-of-office subject too.
fn weak_auto_reply_signs(m: &Inbound, lower: &str) -> (Tally, Option<String>) {
    let mut t = Tally::default();
    let subject = m.subject.to_lowercase();
    // A reply or forward of an auto-reply is a person writing about it.
    let replying = [
        "re:", "re：", "fw:", "fwd:", "aw:", "wg:", "rv:", "返信:", "転送:",
    ]
    .iter()
    .any(|p| subject.trim_start().starts_with(p));
    let auto_subject = starts_with_any(&m.subject, AUTO_SUBJECTS).or_else(|| {
        (!replying)
            .then(|| AUTO_SUBJECTS_JA.first_in(&subject).map(str::to_string))
            .flatten()
    });
    if let Some(s) = &auto_subject {
        t.weak(format!("out-of-office subject \"{s}\""));
    }
    if let Some(p) = AUTO_BODIES.first_in(first_chars(lower, 1000)) {
        t.weak(format!("out-of-office body \"{p}\""));
    }
    let head = first_chars(lower, 1500);
    if let Some(p) = CHALLENGE_BODIES.first_in(head)
        && (head.contains("http://") || head.contains("https://"))
    {
        t.weak(format!("challenge-response body \"{p}\""));
        t.weak("a link to prove the sender is a person".into());
    }
    if let Some(v) = m.header("x-auto-response-suppress") {
        let v = v.trim();
        if !v.eq_ignore_ascii_case("none") && !v.is_empty() {
            t.weak(format!("X-Auto-Response-Suppress: {v}"));
        }
    }
    if m.has_header("x-ms-exchange-inbox-rules-loop") {
        t.weak("X-MS-Exchange-Inbox-Rules-Loop present (Exchange rule or OOF)".into());
    }
    if let Some(v) = m.header("x-ms-exchange-generated-message-source")
        && v.to_ascii_lowercase().contains("rules")
    {
        t.weak(format!(
            "X-MS-Exchange-Generated-Message-Source: {}",
            v.trim()
        ));
    }
    (t, auto_subject)
}

/// Lists and bulk: the list headers and senders, malware and spam; the
/// providers' stamps only beside another sign.
fn list_signs(m: &Inbound, from: &str) -> Vec<String> {
    let mut list = list_headers(m, from);
    if let Some(a) = m.attachments.iter().find_map(|a| a.executable.as_ref()) {
        list.push(format!(
            "an attachment is or carries an executable ({a}): malware sent in bulk"
        ));
    }
    let obfuscated = obfuscated_words(&m.text);
    if obfuscated >= 4 {
        list.push(format!(
            "{obfuscated} words spelled with symbols for letters (P@ck@ge, l!ke): bulk spam"
        ));
    }
    if !list.is_empty() {
        list.extend(PROVIDER_HEADERS.iter().filter_map(|(h, label)| {
            m.header(h)
                .map(|v| format!("{label}: {}", v.chars().take(80).collect::<String>()))
        }));
    }
    list
}

/// A list's headers: List-* and the list managers', Precedence
/// bulk/junk/list, a Sender that is the list, a list manager's Return-Path.
fn list_headers(m: &Inbound, from: &str) -> Vec<String> {
    let mut list = Vec::new();
    for (h, label) in LIST_HEADERS {
        if let Some(v) = m.header(h) {
            list.push(format!(
                "{label}: {}",
                v.chars().take(80).collect::<String>()
            ));
        }
    }
    for h in ["precedence", "x-precedence"] {
        if let Some(p) = m.header(h) {
            let p = p.trim().to_ascii_lowercase();
            if matches!(p.as_str(), "bulk" | "junk" | "list") {
                list.push(format!("Precedence: {p}"));
            }
        }
    }
    // LISTSERV and its kin: the Sender is the list the mail was sent to.
    if let Some(sender) = m.header("sender").and_then(address_in)
        && !sender.eq_ignore_ascii_case(from)
        && (m
            .to
            .iter()
            .chain(m.reply_to.iter())
            .any(|a| a.address.eq_ignore_ascii_case(&sender)))
    {
        list.push(format!("Sender {sender} is the list it was sent to"));
    }
    if let Some(rp) = m.header("return-path").and_then(address_in) {
        let l = local_part(&rp);
        if l.starts_with("owner-")
            || l.ends_with("-owner")
            || l.ends_with("-bounces")
            || l.contains("-bounces+")
            || l.ends_with("-request")
            || l.ends_with("-admin")
        {
            list.push(format!("Return-Path <{rp}> is a list manager's"));
        }
    }
    list
}

/// The last signs: an explicit `Auto-Submitted: no` is a person; a null
/// Return-Path or a no-reply sender alone a machine; else a person.
fn last_signs(mut reasons: Vec<String>, explicit_no: bool, env: &Envelope<'_>) -> Classification {
    if explicit_no {
        reasons.push("Auto-Submitted: no".into());
        return Classification::new(Class::Human, reasons);
    }
    // A null reverse path is only ever used by machines (RFC 5321 4.5.5).
    if env.null_return_path {
        reasons.push("Return-Path: <>".into());
        return Classification::new(Class::AutoReply, reasons);
    }
    if NO_REPLY_LOCALS.contains(&env.from_local.as_str()) {
        reasons.push(format!("From {} is a no-reply address", env.from));
        return Classification::new(Class::AutoReply, reasons);
    }
    reasons.push("no sign of a machine: no auto-reply, bounce or list headers".into());
    Classification::new(Class::Human, reasons)
}

/// An SMTP failure a report quotes: an enhanced status code (RFC 3463,
/// 4.x.x or 5.x.x) beside a reply code, or a 5xx reply with its text.
fn smtp_failure_status(text: &str) -> Option<String> {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let re = RE.get_or_init(|| {
        // ASCII classes and word boundaries (`-u`): a status is ASCII, and
        // a Unicode word boundary would keep the search off its fast engine.
        regex::Regex::new(
            r"(?im-u)\b(?:[45]\d\d[ -]+[45]\.\d{1,3}\.\d{1,3}|5[05]\d[ -]+(?:user unknown|mailbox (?:unavailable|full|not found)|no such user|recipient (?:rejected|address rejected)|relay(?:ing)? denied))\b",
        )
        .expect("a valid pattern")
    });
    re.find(text).map(|m| m.as_str().to_string())
}

/// The address in a header value such as `Name <a@b>` or `a@b`.
fn address_in(v: &str) -> Option<String> {
    let v = v.trim();
    let a = match (v.rfind('<'), v.rfind('>')) {
        (Some(s), Some(e)) if s < e => &v[s + 1..e],
        _ => v,
    };
    let a = a.trim();
    a.contains('@').then(|| a.to_ascii_lowercase())
}

/// What a bounce says, from its report parts when it has them, else its text.
fn bounce_details(m: &Inbound, raw: Option<&[u8]>, identity: &Identity) -> Option<Bounce> {
    let report = raw.map(read_report).unwrap_or_default();
    let mut exclude: Vec<String> = identity.own_addresses.clone();
    if let Some(f) = m.sender_address() {
        exclude.push(f.to_ascii_lowercase());
    }
    let from_text = from_body(&m.text, &exclude);
    let mut b = from_report(&report).unwrap_or_else(|| {
        let mut b = from_text.clone();
        if let Some(failed) = m.header("x-failed-recipients") {
            let listed: Vec<String> = failed
                .split([',', ' '])
                .map(|a| a.trim().trim_matches(['<', '>']).to_ascii_lowercase())
                .filter(|a| a.contains('@'))
                .collect();
            if !listed.is_empty() {
                b.recipients = listed;
            }
        }
        b
    });
    if b.original_message_id.is_none() {
        b.original_message_id = report
            .original_message_id
            .clone()
            .or(from_text.original_message_id);
    }
    if b.diagnostic.is_none() {
        b.diagnostic = from_text.diagnostic;
    }
    if b.status.is_empty() && b.recipients.is_empty() && b.original_message_id.is_none() {
        return None;
    }
    Some(b)
}

/// "Status 5.1.1 for x@y" and the rest of what a bounce says, for reasons.
pub fn describe(b: &Bounce) -> String {
    let mut s = if b.status.is_empty() {
        "no status code".to_string()
    } else {
        format!(
            "Status {} ({})",
            b.status,
            if b.permanent {
                "permanent"
            } else {
                "temporary"
            }
        )
    };
    if !b.recipients.is_empty() {
        s.push_str(&format!(" for {}", b.recipients.join(", ")));
    }
    if let Some(id) = &b.original_message_id {
        s.push_str(&format!("; returns <{id}>"));
    }
    if let Some(d) = &b.diagnostic {
        s.push_str(&format!("; {}", d.chars().take(200).collect::<String>()));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse;

    fn identity() -> Identity {
        Identity {
            from_name: "Support".into(),
            message_id_domain: "tickets.vendor.test".into(),
            own_addresses: vec!["support@vendor.test".into()],
            staff: vec![],
        }
    }

    fn class_of(headers: &str) -> Class {
        let raw = format!("{headers}Subject: hi\r\n\r\nbody\r\n");
        classify(
            &parse(raw.as_bytes(), chrono::DateTime::UNIX_EPOCH),
            &identity(),
        )
        .class
    }

    #[test]
    fn a_plain_mail_is_human() {
        assert_eq!(class_of("From: ann@example.net\r\n"), Class::Human);
        assert_eq!(
            class_of("From: ann@example.net\r\nAuto-Submitted: no\r\n"),
            Class::Human
        );
    }

    #[test]
    fn machines_are_recognised() {
        assert_eq!(
            class_of("From: ann@example.net\r\nAuto-Submitted: auto-replied\r\n"),
            Class::AutoReply
        );
        assert_eq!(
            class_of("From: ann@example.net\r\nPrecedence: bulk\r\n"),
            Class::List
        );
        assert_eq!(
            class_of("From: ann@example.net\r\nPrecedence: junk\r\n"),
            Class::List
        );
        assert_eq!(
            class_of("From: ann@example.net\r\nList-Id: <users.lists.example.net>\r\n"),
            Class::List
        );
        assert_eq!(
            class_of("Return-Path: <>\r\nFrom: ann@example.net\r\n"),
            Class::AutoReply
        );
        assert_eq!(
            class_of("From: MAILER-DAEMON@mx.example.net\r\n"),
            Class::Bounce
        );
        assert_eq!(class_of("From: support@vendor.test\r\n"), Class::OwnLoop);
        assert_eq!(
            class_of("From: ann@example.net\r\nX-Ticketd-Loop: tickets.vendor.test\r\n"),
            Class::OwnLoop
        );
    }

    fn classified(raw: &str) -> Classification {
        let m = parse(raw.as_bytes(), chrono::DateTime::UNIX_EPOCH);
        classify_message(raw.as_bytes(), &m, &identity())
    }

    #[test]
    fn rfc3834_auto_submitted_and_an_explicit_no() {
        for v in [
            "auto-replied",
            "auto-generated",
            "auto-notified",
            "auto-replied (vacation)",
        ] {
            let c = classified(&format!(
                "From: ann@example.net\r\nAuto-Submitted: {v}\r\nSubject: Re: Disk\r\n\r\nx\r\n"
            ));
            assert_eq!(c.class, Class::AutoReply, "{v}");
            assert!(
                c.reasons[0].starts_with("Auto-Submitted: auto-"),
                "{:?}",
                c.reasons
            );
        }
        // "no" outweighs an out-of-office subject and body.
        let c = classified(
            "From: ann@example.net\r\nAuto-Submitted: no\r\nSubject: Out of office until Monday?\r\n\r\nI am out of the office, but here is my question.\r\n",
        );
        assert_eq!(c.class, Class::Human, "{:?}", c.reasons);
    }

    #[test]
    fn de_facto_autoresponder_headers() {
        for h in [
            "X-Autoreply: yes",
            "X-Autorespond: on vacation",
            "Precedence: auto_reply",
            "X-POST-MessageClass: 9; Autoresponder",
            "Delivered-To: Autoresponder",
            "X-FC-MachineGenerated: true",
        ] {
            let c = classified(&format!(
                "From: ann@example.net\r\n{h}\r\nSubject: hi\r\n\r\nx\r\n"
            ));
            assert_eq!(c.class, Class::AutoReply, "{h}");
        }
    }

    #[test]
    fn exchange_oof_without_auto_submitted_is_an_auto_reply() {
        // Older Exchange OOF: no Auto-Submitted, but its suppress header,
        // the rules loop marker and the subject prefix.
        let c = classified(
            "From: Ann <ann@example.net>\r\nSubject: Automatic reply: Pool degraded [TKT#3]\r\nThread-Topic: Pool degraded [TKT#3]\r\nX-MS-Has-Attach:\r\nX-MS-TNEF-Correlator:\r\nX-Auto-Response-Suppress: All\r\nX-MS-Exchange-Inbox-Rules-Loop: ann@example.net\r\n\r\nI am out of the office until Monday.\r\n",
        );
        assert_eq!(c.class, Class::AutoReply);
        assert!(
            c.reasons
                .iter()
                .any(|r| r == "X-Auto-Response-Suppress: All")
        );
        assert!(c.reasons.iter().any(|r| r.contains("Inbox-Rules-Loop")));
    }

    #[test]
    fn x_auto_response_suppress_alone_is_not_enough() {
        let c = classified(
            "From: ann@example.net\r\nX-Auto-Response-Suppress: All\r\nSubject: Pool degraded\r\n\r\nMy pool is degraded.\r\n",
        );
        assert_eq!(c.class, Class::Human);
    }

    #[test]
    fn a_forwarded_report_spam_malware_and_list_admins_are_not_people() {
        let fwd = classified(
            "From: ann@example.jp\r\nSubject: Fwd: Returned mail: see transcript for details\r\n\r\nBegin forwarded message:\r\n\r\n> From: MAILER-DAEMON\r\n> Final-Recipient: rfc822; x@example.org\r\n> Action: failed\r\n> Status: 5.1.1\r\n",
        );
        assert_eq!(fwd.class, Class::Bounce, "{:?}", fwd.reasons);
        // The same forward with a question of the person's own is a person.
        let asked = classified(
            "From: ann@example.jp\r\nSubject: Fwd: Returned mail: see transcript for details\r\n\r\nWhy does my mail to the support address bounce since Monday?\r\n\r\n> Final-Recipient: rfc822; x@example.org\r\n> Status: 5.1.1\r\n",
        );
        assert_eq!(asked.class, Class::Human, "{:?}", asked.reasons);
        let spam = classified(
            "From: x@example.net\r\nSubject: hi\r\n\r\nSteel P@ck@ge now! 10 P@tches, I kn0vv l!ke 10 guys, G01d deal\r\n",
        );
        assert_eq!(spam.class, Class::List, "{:?}", spam.reasons);
        let fml = classified(
            "From: neko-admin@example.co.jp\r\nReturn-Path: <neko-admin@example.co.jp>\r\nX-MLServer: fml [fml 4.0.3]\r\nSubject: Loop Alert\r\n\r\nDuplicated Message-ID.\r\n",
        );
        assert_eq!(fml.class, Class::List);
        let person = classified(
            "From: ann@example.net\r\nSubject: Win10 update\r\n\r\nAfter the Win10 update the share at \\\\nas01 is gone; IPv6 and SMB1 are off.\r\n",
        );
        assert_eq!(person.class, Class::Human, "{:?}", person.reasons);
    }

    #[test]
    fn subject_and_body_signs_in_three_languages() {
        for subject in [
            "Out of Office: Disk",
            "Automatic reply: Disk",
            "Auto: Disk",
            "Abwesenheitsnotiz: Disk",
            "Respuesta automática: Disk",
            "Fuera de la oficina",
            "【自動返信】お問い合わせ",
            "不在通知",
        ] {
            let c = classified(&format!(
                "From: ann@example.net\r\nSubject: {subject}\r\n\r\nThanks for your mail.\r\n"
            ));
            assert_eq!(c.class, Class::AutoReply, "{subject}");
        }
        // A subject sign from a mail client, and nothing else: a person.
        let c = classified(
            "From: ann@example.net\r\nUser-Agent: Thunderbird\r\nSubject: Out of office mode broke my rules\r\n\r\nThe filter is wrong.\r\n",
        );
        assert_eq!(c.class, Class::Human);
        // Subject and body together outweigh the client header.
        let c = classified(
            "From: ann@example.net\r\nX-Mailer: Apple Mail\r\nSubject: Out of office\r\n\r\nI am out of the office until May 3.\r\n",
        );
        assert_eq!(c.class, Class::AutoReply);
        let c = classified(
            "From: taro@example.jp\r\nSubject: Re: 【自動返信】お問い合わせ\r\n\r\nまだ返事がありません。\r\n",
        );
        assert_eq!(c.class, Class::Human);
        // A reply about an out-of-office matter is a person.
        let c = classified(
            "From: ann@example.net\r\nSubject: Re: Out of office replies\r\n\r\nWhy do I get these?\r\n",
        );
        assert_eq!(c.class, Class::Human);
    }

    #[test]
    fn arf_and_mdn_are_machines_that_are_not_bounces() {
        let arf = "From: abuse@isp.example\r\nSubject: FW: spam\r\nContent-Type: multipart/report; report-type=feedback-report; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nThis is an abuse report.\r\n--b\r\nContent-Type: message/feedback-report\r\n\r\nFeedback-Type: abuse\r\nVersion: 1\r\n--b--\r\n";
        let c = classified(arf);
        assert_eq!(c.class, Class::AutoReply);
        assert!(c.reasons[0].contains("feedback-report"));
        let mdn = "From: ann@example.net\r\nSubject: Read: Disk\r\nContent-Type: multipart/report; report-type=disposition-notification; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nYour message was read.\r\n--b\r\nContent-Type: message/disposition-notification\r\n\r\nFinal-Recipient: rfc822; ann@example.net\r\nDisposition: manual-action/MDN-sent-manually; displayed\r\n--b--\r\n";
        let c = classified(mdn);
        assert_eq!(c.class, Class::AutoReply);
        assert!(c.bounce.is_none());
    }

    #[test]
    fn rfc3464_report_gives_status_recipients_and_original_id() {
        let raw = "From: MAILER-DAEMON@mx.example.net\r\nSubject: Undelivered Mail Returned to Sender\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nThis is the mail system at host mx.example.net.\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.net\r\n\r\nFinal-Recipient: rfc822; ann@example.net\r\nAction: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 <ann@example.net>: User unknown\r\n\r\nFinal-Recipient: rfc822; bob@example.net\r\nAction: failed\r\nStatus: 5.2.2\r\n--b\r\nContent-Type: message/rfc822\r\n\r\nFrom: support@vendor.test\r\nMessage-ID: <ticketd.7.ab@tickets.vendor.test>\r\nSubject: Re: Disk\r\n\r\nThanks\r\n--b--\r\n";
        let c = classified(raw);
        assert_eq!(c.class, Class::Bounce);
        let b = c.bounce.unwrap();
        assert_eq!(b.status, "5.1.1");
        assert!(b.permanent);
        assert_eq!(b.recipients, vec!["ann@example.net", "bob@example.net"]);
        assert_eq!(
            b.original_message_id.as_deref(),
            Some("ticketd.7.ab@tickets.vendor.test")
        );
        assert!(b.diagnostic.unwrap().contains("User unknown"));
        assert!(
            c.reasons
                .iter()
                .any(|r| r.starts_with("Status 5.1.1 (permanent) for ann@example.net")),
            "{:?}",
            c.reasons
        );
    }

    #[test]
    fn exim_bounce_by_body_and_x_failed_recipients() {
        let raw = "Return-Path: <>\r\nFrom: Mail Delivery System <Mailer-Daemon@mx.example.org>\r\nX-Failed-Recipients: gone@example.org\r\nAuto-Submitted: auto-replied\r\nSubject: Mail delivery failed: returning message to sender\r\n\r\nThis message was created automatically by mail delivery software.\r\n\r\nA message that you sent could not be delivered to one or more of its\r\nrecipients. This is a permanent error. The following address(es) failed:\r\n\r\n  gone@example.org\r\n    SMTP error from remote mail server after RCPT TO:<gone@example.org>:\r\n    host mx.example.org [192.0.2.1]: 550 5.1.1 User unknown\r\n\r\n------ This is a copy of the message, including all the headers. ------\r\n\r\nMessage-ID: <ticketd.4.cd@tickets.vendor.test>\r\nFrom: support@vendor.test\r\n";
        let c = classified(raw);
        assert_eq!(c.class, Class::Bounce);
        let b = c.bounce.unwrap();
        assert_eq!(b.recipients, vec!["gone@example.org"]);
        assert_eq!(b.status, "5.1.1");
        assert_eq!(
            b.original_message_id.as_deref(),
            Some("ticketd.4.cd@tickets.vendor.test")
        );
    }

    #[test]
    fn smtp_failure_statuses_are_found_in_ascii_text_and_beside_any_letters() {
        for (text, found) in [
            (
                "remote host said: 550 5.1.1 <a@b>: user unknown",
                Some("550 5.1.1"),
            ),
            ("421-4.7.0 try again later", Some("421-4.7.0")),
            ("550 User Unknown", Some("550 User Unknown")),
            ("554 relaying denied", Some("554 relaying denied")),
            ("エラー 550 5.1.1 宛先不明", Some("550 5.1.1")),
            // ASCII boundaries: a status right after a Japanese word counts.
            ("宛先550 5.1.1不明", Some("550 5.1.1")),
            ("call 555-0100 about order 4.1.2", None),
            ("version 5503.1.1", None),
            ("host 192.0.2.5.1.1 said nothing", None),
        ] {
            assert_eq!(smtp_failure_status(text).as_deref(), found, "{text}");
        }
    }

    #[test]
    fn qmail_postfix_sendmail_and_exchange_body_shapes() {
        let qmail = "Return-Path: <>\r\nFrom: MAILER-DAEMON@mail.example.com\r\nSubject: failure notice\r\n\r\nHi. This is the qmail-send program at mail.example.com.\r\nI'm afraid I wasn't able to deliver your message to the following addresses.\r\nThis is a permanent error; I've given up. Sorry it didn't work out.\r\n\r\n<nobody@example.com>:\r\nSorry, no mailbox here by that name. (#5.1.1)\r\n\r\n--- Below this line is a copy of the message.\r\n\r\nMessage-ID: <q1@tickets.vendor.test>\r\n";
        let b = classified(qmail).bounce.unwrap();
        assert_eq!(
            (b.status.as_str(), b.recipients.clone()),
            ("5.1.1", vec!["nobody@example.com".to_string()])
        );
        // Postfix without a DSN, from a null sender only (no MAILER-DAEMON).
        let postfix = "Return-Path: <>\r\nFrom: Mail System <system@mx.example.net>\r\nSubject: Undelivered Mail Returned to Sender\r\n\r\nThis is the mail system at host mx.example.net.\r\n\r\nI'm sorry to have to inform you that your message could not\r\nbe delivered to one or more recipients.\r\n\r\n<ann@example.net>: host mx2.example.net[192.0.2.7] said: 550 5.1.1\r\n    <ann@example.net>: Recipient address rejected: User unknown\r\n";
        let c = classified(postfix);
        assert_eq!(c.class, Class::Bounce);
        let b = c.bounce.unwrap();
        assert_eq!(b.recipients, vec!["ann@example.net"]);
        assert!(b.permanent);
        let sendmail = "From: Mail Delivery Subsystem <MAILER-DAEMON@relay.example.jp>\r\nSubject: Returned mail: see transcript for details\r\n\r\nThe original message was received at Thu, 16 Apr 2009 17:26:31 +0900\r\n\r\n   ----- The following addresses had permanent fatal errors -----\r\n<taro@example.jp>\r\n    (reason: 550 Unknown user)\r\n";
        let b = classified(sendmail).bounce.unwrap();
        assert_eq!(b.recipients, vec!["taro@example.jp"]);
        assert_eq!(b.status, "5.0.0");
        let exchange = "From: postmaster@corp.example\r\nSubject: Undeliverable: Pool degraded\r\n\r\nDelivery has failed to these recipients or groups:\r\n\r\nkim@corp.example\r\nThe e-mail address you entered couldn't be found.\r\n\r\nDiagnostic information for administrators:\r\n\r\nGenerating server: EX1.corp.example\r\n\r\nkim@corp.example\r\n#550 5.1.1 RESOLVER.ADR.RecipNotFound; not found ##\r\n";
        let b = classified(exchange).bounce.unwrap();
        assert_eq!(b.recipients, vec!["kim@corp.example"]);
        assert_eq!(b.status, "5.1.1");
        // A Japanese bounce subject with a null sender.
        let ja = "Return-Path: <>\r\nFrom: system@mail.example.jp\r\nSubject: =?UTF-8?B?6YWN5L+h5LiN6IO9?=\r\n\r\nx\r\n";
        assert_eq!(classified(ja).class, Class::Bounce);
        // A temporary failure is not permanent.
        let delayed = "From: MAILER-DAEMON@mx.example.net\r\nSubject: Delayed Mail (still being retried)\r\n\r\nThis is the mail system at host mx.example.net.\r\n\r\n####################################################################\r\n# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #\r\n####################################################################\r\n\r\n<ann@example.net>: connect to mx.example.net[192.0.2.9]:25: Connection timed out\r\nThe message will be retried.\r\n";
        let b = classified(delayed).bounce.unwrap();
        assert!(!b.permanent, "{b:?}");
    }

    #[test]
    fn a_bounce_whose_signs_are_each_weak_alone_is_a_bounce_together() {
        let c = classified(
            "Return-Path: <MAILER-DAEMON@mx.example.org>\r\nFrom: Mail System <mailsys@mx.example.org>\r\nSubject: Delivery failure\r\n\r\nYour message could not be delivered.\r\nRemote server said: 550 5.1.1 <ann@example.net>: user unknown\r\n",
        );
        assert_eq!(c.class, Class::Bounce, "{:?}", c.reasons);
        // Security gateways' notices and other languages' MTAs.
        for raw in [
            "From: Security Gateway <gateway@mx.example.org>\r\nSubject: Message blocked: Invoice 42\r\n\r\nYour message to bob@example.org was blocked by policy.\r\n550 5.7.1 Message rejected due to content restrictions\r\n",
            "From: Mailserver <mail@example.de>\r\nSubject: Nicht zustellbar: Anfrage\r\n\r\nIhre Nachricht konnte nicht zugestellt werden.\r\n550 5.1.1 <bob@example.de>: Recipient address rejected\r\n",
            "From: 系统退信 <postmaster-cn@example.cn>\r\nSubject: 退信: 询价\r\n\r\n您的邮件无法投递。\r\n554 5.7.1 recipient rejected\r\n",
        ] {
            let c = classified(raw);
            assert_eq!(c.class, Class::Bounce, "{raw}: {:?}", c.reasons);
        }
        // A person quoting the error they got is a person.
        let c = classified(
            "From: Ann <ann@example.net>\r\nSubject: Re: cannot mail you\r\nUser-Agent: Thunderbird\r\n\r\nWhen I write to sales I get back 550 5.1.1 user unknown. Which address should I use?\r\n",
        );
        assert_eq!(c.class, Class::Human, "{:?}", c.reasons);
    }

    #[test]
    fn challenge_response_and_quarantine_notices_are_machines() {
        for raw in [
            "From: Ann <ann@example.net>\r\nSubject: Please verify your email\r\n\r\nI use a challenge-response system against spam. Please click the link below to verify, and you will be added to my approved senders.\r\n",
            "From: Mail Gateway <gateway@example.net>\r\nSubject: Spam quarantine summary\r\n\r\n3 messages have been quarantined for ann@example.net since yesterday.\r\n",
            "From: Protection <protect@example.net>\r\nSubject: Sender verification\r\n\r\nYour mail is held for review by the recipient's filter: prove you are a human to deliver it.\r\n",
        ] {
            let c = classified(raw);
            assert_eq!(c.class, Class::AutoReply, "{raw}: {:?}", c.reasons);
        }
    }

    #[test]
    fn lists_and_bulk_by_their_headers() {
        for h in [
            "List-Unsubscribe: <mailto:u@lists.example.net>",
            "List-Post: <mailto:l@lists.example.net>",
            "List-Help: <mailto:h@lists.example.net>",
            "Mailing-List: contact l-help@example.net",
            "X-Mailman-Version: 2.1.39",
            "X-BeenThere: l@lists.example.net",
            "Precedence: list",
            "Feedback-ID: 1:2:3:ses\r\nX-Campaign: winter-sale",
            "X-Listserver: ListSTAR v2.2",
        ] {
            let c = classified(&format!(
                "From: ann@example.net\r\n{h}\r\nSubject: hi\r\n\r\nx\r\n"
            ));
            assert_eq!(c.class, Class::List, "{h}");
        }
        // A person's one-to-one mail through a provider that stamps all it
        // relays is a person's.
        for tag in [
            "X-SES-Outgoing: 2026.12.02-54.240.11.1",
            "Feedback-ID: 1.eu-west-1.abc=:AmazonSES",
            "X-SG-EID: u001.abc",
            "X-Mailgun-Tag: reply",
            "X-SES-Outgoing: 2026.12.02-54.240.11.1\r\nFeedback-ID: 1.eu-west-1.abc=:AmazonSES",
        ] {
            let c = classified(&format!(
                "From: Ann <ann@example.net>\r\nTo: support@vendor.test\r\n{tag}\r\nSubject: Re: my ticket\r\n\r\nThanks, that worked.\r\n"
            ));
            assert_eq!(c.class, Class::Human, "{tag}: {:?}", c.reasons);
        }
        let listserv = "From: Jan <jan@example.com>\r\nSender: SOAP <SOAP@DISCUSS.EXAMPLE.COM>\r\nReply-To: SOAP <SOAP@DISCUSS.EXAMPLE.COM>\r\nTo: SOAP@DISCUSS.EXAMPLE.COM\r\nSubject: Re: Messages\r\n\r\nx\r\n";
        assert_eq!(classified(listserv).class, Class::List);
    }

    #[test]
    fn own_mail_by_message_id_domain() {
        let c = classified(
            "From: someone@example.net\r\nMessage-ID: <ticketd.1.2@tickets.vendor.test>\r\nSubject: x\r\n\r\nx\r\n",
        );
        assert_eq!(c.class, Class::OwnLoop);
    }

    #[test]
    fn issue_23_item_6_challenge_response_spam_rejections_and_old_mta_bounces_are_machines() {
        let challenges = [
            "From: Eva Novak <eva@example.cz>\r\nSubject: Re: your ticket\r\n\r\nYour message is held until you confirm that you are a human:\r\nhttps://check.example.cz/x\r\n",
            "From: Rosa <rosa@example.com.ar>\r\nSubject: Aviso\r\n\r\nSolo acepto correo de remitentes verificados. Confirme que es una persona en https://v.example.com.ar/1\r\n",
        ];
        for raw in challenges {
            let c = classified(raw);
            assert_eq!(c.class, Class::AutoReply, "{raw}: {:?}", c.reasons);
        }
        let rejection = "From: Gateway <gw@example.org>\r\nSubject: Notice\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nThe mail below was detected as spam and refused.\r\n--b\r\nContent-Type: message/rfc822\r\n\r\nFrom: support@vendor.test\r\nSubject: hi\r\n\r\nhi\r\n--b--\r\n";
        for raw in [
            rejection,
            "From: Mail Service <svc@example.org>\r\nSubject: Message could not be delivered\r\n\r\nYour message to ops@example.org could not be delivered: mailbox unknown.\r\n",
            "From: Servidor <srv@example.com.uy>\r\nSubject: Aviso: correo no entregado (undeliverable)\r\n\r\nSu mensaje no pudo ser entregado a ventas@example.com.uy.\r\n",
        ] {
            let c = classified(raw);
            assert_eq!(c.class, Class::Bounce, "{raw}: {:?}", c.reasons);
        }
        // People: a link and no challenge, a failed delivery told in their own words.
        for raw in [
            "From: Ann <ann@example.net>\r\nSubject: Firmware link\r\n\r\nCan you verify the download at https://example.net/fw is the right one?\r\n",
            "From: Ann <ann@example.net>\r\nSubject: Mail to sales could not be delivered\r\n\r\nMy mail to sales came back yesterday. Who else can I write to?\r\n",
            "From: Ann <ann@example.net>\r\nSubject: Spam\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nYour last answer landed in my junk folder, here it is.\r\n--b\r\nContent-Type: message/rfc822\r\n\r\nFrom: support@vendor.test\r\nSubject: hi\r\n\r\nhi\r\n--b--\r\n",
        ] {
            let c = classified(raw);
            assert_eq!(c.class, Class::Human, "{raw}: {:?}", c.reasons);
        }
    }

    #[test]
    fn issue_23_item_9_the_receiving_servers_spam_verdict_is_read() {
        for h in [
            "X-Spam-Flag: YES",
            "X-Spam-Status: Yes, score=7.1 required=5.0",
            "X-Spam: yes",
            "X-SES-Spam-Verdict: FAIL",
            "X-Forefront-Antispam-Report: CIP:192.0.2.1;SFV:SPM;SCL:9",
            "X-MS-Exchange-Organization-SCL: 6",
            "X-Barracuda-Spam-Status: Yes, SCORE=8.0",
            "X-MailScanner-SpamCheck: spam, SpamAssassin (score=9)",
        ] {
            let c = classified(&format!(
                "From: ann@example.net\r\n{h}\r\nSubject: hi\r\n\r\nhi\r\n"
            ));
            assert!(c.spam.is_some(), "{h}");
            assert_eq!(c.class, Class::Human, "{h}");
        }
        for h in [
            "X-Spam-Flag: NO",
            "X-Spam-Status: No, score=0.1",
            "X-SES-Spam-Verdict: PASS",
            "X-Forefront-Antispam-Report: CIP:192.0.2.1;SFV:NSPM;SCL:1",
            "X-MS-Exchange-Organization-SCL: -1",
            "X-MailScanner-SpamCheck: not spam",
            "X-Spam: yesterday",
        ] {
            let c = classified(&format!(
                "From: ann@example.net\r\n{h}\r\nSubject: hi\r\n\r\nhi\r\n"
            ));
            assert!(c.spam.is_none(), "{h}: {:?}", c.spam);
        }
    }
}
