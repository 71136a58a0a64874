//! Proof of a sender's domain from the raw mail, pure: DKIM signatures verified in-process (mail-auth) with key records from a [`KeyResolver`], and RFC 8601 Authentication-Results trusted only from the vendor's own receiving server.
//!
//! [`verify`] checks every `DKIM-Signature` of a mail. It asks for the key
//! records through the [`KeyResolver`] it is given and hands them to
//! mail-auth's verifier, which does no DNS of its own here (its future is
//! polled once and never waits). Production passes `dns_keys::DnsKeys`
//! (DNS servers with a timeout and a cache), tests pass [`StaticKeys`],
//! and `explain`, which looks nothing up, passes [`Offline`].
//!
//! A signature proves the From domain only when it verifies **and** aligns
//! with it ([`aligned`]), covers the whole body (mail-auth's strict parse
//! refuses an `l=` tag, which would let text be appended), covers and
//! oversigns what the decision reads ([`MUST_SIGN`]), the mail has exactly
//! one From header, and its header section reads one way
//! (`header_section`).
//!
//! [`trusted_results`] reads `Authentication-Results` fields (RFC 8601)
//! and counts only those whose authserv-id is configured as trusted, above
//! that server's own Received line; the rest are ignored (§5). The
//! receiving server should still remove fields carrying its id from
//! incoming mail (with Postfix and OpenDKIM, e.g. OpenDKIM's `RemoveARAll`).

use crate::header_section;
use mail_auth::common::parse::TxtRecordParser;
use mail_auth::common::resolver::ToFqdn;
use mail_auth::common::verify::DomainKey;
use mail_auth::{AuthenticatedMessage, DkimResult, MessageAuthenticator, Parameters, Txt};
use std::collections::HashMap;
use std::future::Future;
use std::sync::OnceLock;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

/// Whether a signing domain `d` aligns with the From domain, in the relaxed
/// sense of RFC 7489 without a public-suffix list: the two are equal, or
/// one is a subdomain of the other (`support.vendor.test` and
/// `vendor.test`). A bare top-level name (`test`, no dot) never aligns, so
/// a key published at a TLD cannot speak for its whole zone. Case and a
/// trailing dot are ignored.
pub fn aligned(d: &str, from_domain: &str) -> bool {
    let d = d.trim_end_matches('.').to_ascii_lowercase();
    let from = from_domain.trim_end_matches('.').to_ascii_lowercase();
    if d.is_empty() || from.is_empty() {
        return false;
    }
    let sub =
        |inner: &str, outer: &str| outer.contains('.') && inner.ends_with(&format!(".{outer}"));
    d == from || sub(&from, &d) || sub(&d, &from)
}

// ---------------------------------------------------------------------------
// Key records

/// Why a key record could not be had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LookupError {
    /// The name has no TXT record (NXDOMAIN, or no TXT at the name).
    NotFound,
    /// No answer within the timeout.
    Timeout,
    /// A look-up under the same domain timed out less than
    /// [`TIMEOUT_MEMORY`] ago: not asked again yet.
    RecentTimeout,
    /// Anything else: a server failure, a refusal, no DNS at all.
    Failed(String),
}

impl std::fmt::Display for LookupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LookupError::NotFound => f.write_str("no such record"),
            LookupError::Timeout => f.write_str("timed out"),
            LookupError::RecentTimeout => f.write_str(
                "timed out less than a minute ago under this domain; not asked again yet",
            ),
            LookupError::Failed(why) => f.write_str(why),
        }
    }
}

/// Where DKIM public keys come from. Tests replace it.
pub trait KeyResolver: Send + Sync + std::fmt::Debug {
    /// The TXT record texts at `name` (e.g. "sel._domainkey.vendor.test"),
    /// each record's character-strings joined.
    fn txt(&self, name: &str) -> Result<Vec<String>, LookupError>;
}

/// The lower-case name without its trailing dot: how every resolver here
/// compares names.
pub(crate) fn normal_name(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// Fixed records, name -> TXT texts (for tests); any other name is
/// [`LookupError::NotFound`].
#[derive(Debug, Clone, Default)]
pub struct StaticKeys(HashMap<String, Vec<String>>);

impl StaticKeys {
    pub fn new<'a>(records: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut map: HashMap<String, Vec<String>> = HashMap::new();
        for (name, text) in records {
            map.entry(normal_name(name))
                .or_default()
                .push(text.to_string());
        }
        StaticKeys(map)
    }
}

impl KeyResolver for StaticKeys {
    fn txt(&self, name: &str) -> Result<Vec<String>, LookupError> {
        self.0
            .get(&normal_name(name))
            .cloned()
            .ok_or(LookupError::NotFound)
    }
}

/// No look-ups at all: every key is "not checked" (`explain` has no DNS).
#[derive(Debug, Clone, Copy, Default)]
pub struct Offline;

impl KeyResolver for Offline {
    fn txt(&self, _name: &str) -> Result<Vec<String>, LookupError> {
        Err(LookupError::Failed("no DNS look-ups offline".into()))
    }
}

// ---------------------------------------------------------------------------
// DKIM

pub use crate::model::DkimVerdict;

/// One signature's outcome, before the mail's verdict is chosen.
enum Checked {
    Verdict(DkimVerdict),
    /// Not checked, and whether the signature's domain aligned.
    NotChecked(String, bool),
}

/// mail-auth's verifier, built once. Its resolver has no servers and is
/// never asked: every record it wants is in the [`Prefetched`] cache.
fn authenticator() -> Result<&'static MessageAuthenticator, String> {
    static ONE: OnceLock<Result<MessageAuthenticator, String>> = OnceLock::new();
    ONE.get_or_init(|| {
        MessageAuthenticator::new(
            mail_auth::hickory_resolver::config::ResolverConfig::from_name_servers(Vec::new()),
            mail_auth::hickory_resolver::config::ResolverOpts::default(),
        )
        .map_err(|e| format!("DKIM verifier unavailable: {e}"))
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// The key records [`verify`] fetched, as mail-auth's TXT cache. It answers
/// every name, so the verifier never turns to DNS: a name it was not given
/// (an ATPS or report record) is "not found".
struct Prefetched(HashMap<Box<str>, Txt>);

impl mail_auth::ResolverCache<Box<str>, Txt> for Prefetched {
    fn get<Q>(&self, name: &Q) -> Option<Txt>
    where
        Box<str>: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        Some(self.0.get(name).cloned().unwrap_or_else(|| {
            Txt::Error(mail_auth::Error::Dns(mail_auth::DnsError::RecordNotFound(
                mail_auth::hickory_resolver::proto::op::ResponseCode::NXDomain,
            )))
        }))
    }

    fn remove<Q>(&self, _name: &Q) -> Option<Txt>
    where
        Box<str>: std::borrow::Borrow<Q>,
        Q: std::hash::Hash + Eq + ?Sized,
    {
        None
    }

    fn insert(&self, _key: Box<str>, _value: Txt, _valid_until: Instant) {}
}

/// Polls `future` once; `None` if it would wait. mail-auth's verifier only
/// waits on DNS, which [`Prefetched`] spares it.
fn poll_once<F: Future>(future: F) -> Option<F::Output> {
    let mut future = std::pin::pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(out) => Some(out),
        Poll::Pending => None,
    }
}

/// The key record's name of a signature.
fn key_name(selector: &str, domain: &str) -> String {
    normal_name(&format!("{selector}._domainkey.{domain}"))
}

/// Verifies the DKIM signatures of `raw` against the From domain, looking
/// the keys up through `keys` (synchronously: call it on a blocking thread
/// when `keys` is [`DnsKeys`]). Several signatures: the first that passes
/// and aligns wins; failing that, an aligned signature whose key could not
/// be looked up (not checked), then one that verified unaligned, then any
/// not checked, then the first failure.
pub fn verify(raw: &[u8], from_domain: &str, keys: &dyn KeyResolver) -> DkimVerdict {
    let Some(message) = AuthenticatedMessage::parse(raw) else {
        return DkimVerdict::Unsigned;
    };
    if message.dkim_headers.is_empty() && !message.has_dkim_errors {
        return DkimVerdict::Unsigned;
    }
    if let Some(refused) = one_reading(raw, &message) {
        return refused;
    }
    let (lookups, records) = fetch_keys(&message, from_domain, keys);
    let authenticator = match authenticator() {
        Ok(a) => a,
        Err(reason) => return DkimVerdict::NotChecked { reason },
    };
    let cache = Prefetched(records);
    let Some(outputs) =
        poll_once(authenticator.verify_dkim(Parameters::new(&message).with_txt_cache(&cache)))
    else {
        return DkimVerdict::NotChecked {
            reason: "the DKIM verifier wanted a look-up of its own".into(),
        };
    };
    let checked: Vec<Checked> = outputs
        .iter()
        .map(|out| check(out, from_domain, &lookups))
        .collect();
    choose(&checked)
}

/// What the verifier verifies must be what the decision reads: a header
/// section that any reader could read another way proves nothing, nor one
/// whose fields the verifier split otherwise, nor one of several From
/// fields. The failure, if it is so.
fn one_reading(raw: &[u8], message: &AuthenticatedMessage<'_>) -> Option<DkimVerdict> {
    let section = header_section::read(raw);
    if let Some(why) = section.ambiguity.clone().or_else(|| {
        section.disagreement(
            "the DKIM verifier",
            message.headers.iter().map(|(n, v)| (*n, strip_line_end(v))),
        )
    }) {
        return Some(DkimVerdict::Fail {
            reason: format!("its header section could be read two ways: {why}"),
        });
    }
    let froms = section.all("From").count();
    (froms != 1).then(|| DkimVerdict::Fail {
        reason: format!("the mail has {froms} From headers, not one"),
    })
}

/// Each key's look-up outcome, by its record name.
type Lookups = HashMap<String, Result<(), LookupError>>;

/// The key records of the signatures that could prove the From domain
/// (aligned, covering what must be covered), fetched through `keys`: at
/// most [`MAX_LOOKUPS`] of them, so a mail of many signatures by slow
/// domains cannot hold intake up. Each look-up's outcome, and the records
/// as mail-auth's cache wants them.
fn fetch_keys(
    message: &AuthenticatedMessage<'_>,
    from_domain: &str,
    keys: &dyn KeyResolver,
) -> (Lookups, HashMap<Box<str>, Txt>) {
    let mut lookups: Lookups = HashMap::new();
    let mut records: HashMap<Box<str>, Txt> = HashMap::new();
    for header in message
        .dkim_headers
        .iter()
        .filter(|h| could_prove(&h.header, from_domain))
    {
        let name = key_name(&header.header.s, &header.header.d);
        if lookups.contains_key(&name) {
            continue;
        }
        if lookups.len() >= MAX_LOOKUPS {
            break;
        }
        let fetched = keys.txt(&name).and_then(|texts| {
            let mut parsed = None;
            for text in &texts {
                let key = DomainKey::parse(text.as_bytes());
                let ok = key.is_ok();
                parsed = Some(key);
                if ok {
                    break;
                }
            }
            parsed.ok_or(LookupError::NotFound)
        });
        match fetched {
            Ok(key) => {
                records.insert(name.to_fqdn().into_owned().into_boxed_str(), key.into());
                lookups.insert(name, Ok(()));
            }
            Err(e) => {
                lookups.insert(name, Err(e));
            }
        }
    }
    (lookups, records)
}

/// One signature's outcome: what it proves of the From domain, or why it
/// was not checked.
fn check(out: &mail_auth::DkimOutput<'_>, from_domain: &str, lookups: &Lookups) -> Checked {
    let Some(sig) = out.signature() else {
        return Checked::Verdict(DkimVerdict::Fail {
            reason: format!("malformed DKIM-Signature: {}", error_of(out.result())),
        });
    };
    if !aligned(&sig.d, from_domain) {
        // Whether it verifies or not, it proves nothing of From: its key is
        // not looked up.
        return Checked::Verdict(DkimVerdict::Unaligned {
            domain: sig.d.clone(),
        });
    }
    if !covers_from(sig) {
        return Checked::Verdict(DkimVerdict::Fail {
            reason: format!("d={}: the signature does not cover the From header", sig.d),
        });
    }
    let uncovered = uncovered(sig);
    if !uncovered.is_empty() {
        return Checked::Verdict(DkimVerdict::Fail {
            reason: format!(
                "d={}: the signature does not cover {} (a field it leaves out could be added after signing)",
                sig.d,
                uncovered.join(", ")
            ),
        });
    }
    let name = key_name(&sig.s, &sig.d);
    match lookups.get(&name) {
        None => {
            return Checked::NotChecked(
                format!(
                    "d={}: more than {MAX_LOOKUPS} signatures to check; this one was not",
                    sig.d
                ),
                true,
            );
        }
        Some(Err(LookupError::NotFound)) => {
            return Checked::Verdict(DkimVerdict::Fail {
                reason: format!("d={}: no key record at {name}", sig.d),
            });
        }
        Some(Err(e)) => {
            return Checked::NotChecked(
                format!("d={}: the key at {name} could not be looked up: {e}", sig.d),
                true,
            );
        }
        _ => {}
    }
    Checked::Verdict(match out.result() {
        DkimResult::Pass => DkimVerdict::Pass {
            domain: sig.d.clone(),
            selector: sig.s.clone(),
        },
        other => DkimVerdict::Fail {
            reason: format!("d={}: {}", sig.d, error_of(other)),
        },
    })
}

/// The mail's verdict from its signatures' outcomes: the first that passes
/// and aligns; failing that, an aligned one not checked, then one that
/// verified unaligned, then any not checked, then the first failure.
fn choose(checked: &[Checked]) -> DkimVerdict {
    let find = |want: &dyn Fn(&Checked) -> bool| checked.iter().find(|c| want(c));
    let chosen = find(&|c| matches!(c, Checked::Verdict(DkimVerdict::Pass { .. })))
        .or_else(|| find(&|c| matches!(c, Checked::NotChecked(_, true))))
        .or_else(|| find(&|c| matches!(c, Checked::Verdict(DkimVerdict::Unaligned { .. }))))
        .or_else(|| find(&|c| matches!(c, Checked::NotChecked(..))))
        .or_else(|| checked.first());
    match chosen {
        Some(Checked::Verdict(v)) => v.clone(),
        Some(Checked::NotChecked(reason, _)) => DkimVerdict::NotChecked {
            reason: reason.clone(),
        },
        None => DkimVerdict::Unsigned,
    }
}

/// Key records looked up for one mail at most (each bounded by the timeout).
const MAX_LOOKUPS: usize = 3;

/// A signature covers From when `h=` names it (RFC 6376 §5.4: it must).
fn covers_from(sig: &mail_auth::dkim::Signature) -> bool {
    sig.h.iter().any(|h| h.eq_ignore_ascii_case("from"))
}

/// The header fields a signature must cover, besides From, for ticketd to
/// act on the mail it proves: every field the decision reads. Named in
/// `h=` while absent from the mail, a field is signed as absent, so adding
/// one breaks the signature (RFC 6376 §5.4).
pub const MUST_SIGN: &[&str] = &[
    "To",
    "Cc",
    "Subject",
    "Message-ID",
    "In-Reply-To",
    "References",
    "Content-Type",
    "Content-Transfer-Encoding",
];

/// What `sig` leaves out of what it must cover: From oversigned (named in
/// `h=` more often than the mail has From fields, so a second one cannot be
/// added), and each of [`MUST_SIGN`].
fn uncovered(sig: &mail_auth::dkim::Signature) -> Vec<String> {
    let count = |name: &str| {
        sig.h
            .iter()
            .filter(|h| h.eq_ignore_ascii_case(name))
            .count()
    };
    let mut missing = Vec::new();
    if count("From") < 2 {
        missing.push("From twice (oversigned)".to_string());
    }
    missing.extend(
        MUST_SIGN
            .iter()
            .filter(|name| count(name) == 0)
            .map(|name| name.to_string()),
    );
    missing
}

/// A signature whose key is worth looking up: by the From domain, over
/// every field it must cover.
fn could_prove(sig: &mail_auth::dkim::Signature, from_domain: &str) -> bool {
    aligned(&sig.d, from_domain) && covers_from(sig) && uncovered(sig).is_empty()
}

/// Whether `raw` carries a DKIM signature that could prove its From domain
/// to ticketd: aligned with `from_domain`, over From oversigned and every
/// field of [`MUST_SIGN`]. An Authentication-Results pass counts only with
/// one (the receiving server says it verified; what it verified is read
/// here), and `Ok(relaxed)` says whether that signature hashed the body
/// relaxed (then white space in the body is not covered). The error says
/// why none could.
pub fn covering_signature(raw: &[u8], from_domain: &str) -> Result<bool, String> {
    let Some(message) = AuthenticatedMessage::parse(raw) else {
        return Err("the mail could not be read for its DKIM signatures".into());
    };
    let mut why = format!("no DKIM signature by {from_domain}");
    for h in &message.dkim_headers {
        let sig = &h.header;
        if !aligned(&sig.d, from_domain) {
            continue;
        }
        let missing = uncovered(sig);
        if missing.is_empty() {
            return Ok(sig.cb == mail_auth::dkim::Canonicalization::Relaxed);
        }
        why = format!(
            "the DKIM signature by {} does not cover {}",
            sig.d,
            missing.join(", ")
        );
    }
    Err(why)
}

/// Whether the signature of `domain` and `selector` in `raw` hashed the body
/// relaxed (RFC 6376 §3.4.4: trailing white space dropped, runs of it made
/// one space), so that white space in the body is not covered.
pub fn relaxed_body(raw: &[u8], domain: &str, selector: &str) -> bool {
    AuthenticatedMessage::parse(raw).is_some_and(|m| {
        m.dkim_headers.iter().any(|h| {
            h.header.d.eq_ignore_ascii_case(domain)
                && h.header.s == selector
                && h.header.cb == mail_auth::dkim::Canonicalization::Relaxed
        })
    })
}

/// `raw` with its body as relaxed canonicalization sees it: each line's
/// runs of white space made one space and trailing white space dropped
/// (the header section is kept as it is). What ticketd reads of this is a
/// function of what a relaxed signature covers.
pub fn relaxed_form(raw: &[u8]) -> Vec<u8> {
    // The body starts after the first empty line (CRLF or LF line ends).
    let split = (0..raw.len())
        .find_map(|i| {
            let rest = &raw[i..];
            if rest.starts_with(b"\n\r\n") {
                Some(i + 3)
            } else if rest.starts_with(b"\n\n") {
                Some(i + 2)
            } else {
                None
            }
        })
        .unwrap_or(raw.len());
    let mut out = raw[..split].to_vec();
    for line in raw[split..].split_inclusive(|&b| b == b'\n') {
        let (text, end): (&[u8], &[u8]) = match line {
            [t @ .., b'\r', b'\n'] => (t, b"\r\n"),
            [t @ .., b'\n'] => (t, b"\n"),
            t => (t, b""),
        };
        let mut space = false;
        let mut kept = Vec::with_capacity(text.len());
        for &b in text {
            if b == b' ' || b == b'\t' {
                space = true;
            } else {
                if space {
                    kept.push(b' ');
                    space = false;
                }
                kept.push(b);
            }
        }
        out.extend_from_slice(&kept);
        out.extend_from_slice(end);
    }
    out
}

/// A header value without the line end that closes it.
fn strip_line_end(value: &[u8]) -> &[u8] {
    let value = value.strip_suffix(b"\n").unwrap_or(value);
    value.strip_suffix(b"\r").unwrap_or(value)
}

fn error_of(result: &DkimResult) -> String {
    match result {
        DkimResult::Pass => "pass".into(),
        DkimResult::None => "no result".into(),
        DkimResult::Neutral(e)
        | DkimResult::Fail(e)
        | DkimResult::PermError(e)
        | DkimResult::TempError(e) => e.to_string(),
    }
}

/// Signs `raw` for `domain` with `selector` and an RSA key (PKCS#8 PEM):
/// the mail with a `DKIM-Signature` header (relaxed/relaxed, rsa-sha256)
/// on top, over From (oversigned), To, Cc, Subject, Date, Message-ID,
/// In-Reply-To, References and the MIME fields, as OpenDKIM and rspamd sign
/// by default. For the tests, which play the vendor's mail server.
#[doc(hidden)]
pub fn sign(
    raw: &[u8],
    domain: &str,
    selector: &str,
    private_key_pem: &str,
) -> Result<Vec<u8>, String> {
    sign_with(raw, (domain, selector), private_key_pem, false)
}

/// `sign` with the body hashed `simple` (`c=relaxed/simple`), as a staff
/// domain's server should sign (`docs/staff.md`): white space in the body
/// is covered too. For the tests.
#[doc(hidden)]
pub fn sign_simple_body(
    raw: &[u8],
    domain: &str,
    selector: &str,
    private_key_pem: &str,
) -> Result<Vec<u8>, String> {
    sign_with(raw, (domain, selector), private_key_pem, true)
}

fn sign_with(
    raw: &[u8],
    (domain, selector): (&str, &str),
    private_key_pem: &str,
    simple_body: bool,
) -> Result<Vec<u8>, String> {
    use mail_auth::common::crypto::{RsaKey, Sha256};
    use mail_auth::common::headers::HeaderWriter;
    use mail_auth::dkim::{Canonicalization, DkimSigner};
    use rustls::pki_types::{PrivateKeyDer, pem::PemObject};
    let der = PrivateKeyDer::from_pem_slice(private_key_pem.as_bytes())
        .map_err(|e| format!("reading the signing key: {e}"))?;
    let key =
        RsaKey::<Sha256>::from_key_der(der).map_err(|e| format!("reading the signing key: {e}"))?;
    let signature = DkimSigner::from_key(key)
        .domain(domain)
        .selector(selector)
        .headers([
            "From",
            "From",
            "To",
            "Cc",
            "Subject",
            "Date",
            "Message-ID",
            "In-Reply-To",
            "References",
            "MIME-Version",
            "Content-Type",
            "Content-Transfer-Encoding",
        ])
        .header_canonicalization(Canonicalization::Relaxed)
        .body_canonicalization(if simple_body {
            Canonicalization::Simple
        } else {
            Canonicalization::Relaxed
        })
        .sign(raw)
        .map_err(|e| format!("signing: {e}"))?;
    let mut out = signature.to_header().into_bytes();
    out.extend_from_slice(raw);
    Ok(out)
}

// ---------------------------------------------------------------------------
// Authentication-Results (RFC 8601)

/// One `method=result` of an Authentication-Results header with its
/// properties (`header.d`, `header.from`, ...; names lower-case).
#[derive(Debug, Clone, PartialEq, Eq)]
struct ResInfo {
    method: String,
    result: String,
    props: Vec<(String, String)>,
}

/// An Authentication-Results header: who added it and what it found.
#[derive(Debug, Clone, PartialEq, Eq)]
struct AuthResults {
    authserv_id: String,
    results: Vec<ResInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Semi,
    Eq,
    Slash,
}

/// Splits a header value into words, quoted strings (unquoted, as words),
/// `;`, `=` and `/`, dropping white space and (nested) comments.
fn tokens(value: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut chars = value.chars().peekable();
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut Vec<Token>| {
        if !word.is_empty() {
            out.push(Token::Word(std::mem::take(word)));
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '(' => {
                flush(&mut word, &mut out);
                let mut depth = 1;
                while depth > 0 {
                    match chars.next() {
                        Some('\\') => {
                            chars.next();
                        }
                        Some('(') => depth += 1,
                        Some(')') => depth -= 1,
                        Some(_) => {}
                        None => break,
                    }
                }
            }
            '"' => {
                flush(&mut word, &mut out);
                let mut quoted = String::new();
                while let Some(q) = chars.next() {
                    match q {
                        '\\' => quoted.extend(chars.next()),
                        '"' => break,
                        _ => quoted.push(q),
                    }
                }
                out.push(Token::Word(quoted));
            }
            ';' | '=' | '/' => {
                flush(&mut word, &mut out);
                out.push(match c {
                    ';' => Token::Semi,
                    '=' => Token::Eq,
                    _ => Token::Slash,
                });
            }
            c if c.is_whitespace() => flush(&mut word, &mut out),
            c => word.push(c),
        }
    }
    flush(&mut word, &mut out);
    out
}

/// Parses an Authentication-Results value (RFC 8601 §2.2): the authserv-id,
/// an optional version, then `;`-separated `method[/version]=result`
/// entries with an optional `reason=` and `ptype.property=value`
/// properties. A malformed entry is skipped; `None` without an authserv-id.
fn parse_auth_results(value: &str) -> Option<AuthResults> {
    let tokens = tokens(value);
    let mut parts = tokens.split(|t| *t == Token::Semi);
    let head = parts.next()?;
    let Some(Token::Word(id)) = head.first() else {
        return None;
    };
    // Anything after the id but the version number is malformed.
    match &head[1..] {
        [] => {}
        [Token::Word(v)] if v.bytes().all(|b| b.is_ascii_digit()) => {}
        _ => return None,
    }
    let mut results = Vec::new();
    for part in parts {
        if let Some(info) = parse_resinfo(part) {
            results.push(info);
        }
    }
    Some(AuthResults {
        authserv_id: id.to_ascii_lowercase(),
        results,
    })
}

fn parse_resinfo(part: &[Token]) -> Option<ResInfo> {
    let word = |i: usize| match part.get(i) {
        Some(Token::Word(w)) => Some(w.as_str()),
        _ => None,
    };
    let method = word(0)?.to_ascii_lowercase();
    let mut i = 1;
    if part.get(i) == Some(&Token::Slash) {
        word(i + 1)?;
        i += 2;
    }
    if part.get(i) != Some(&Token::Eq) {
        return None;
    }
    let result = word(i + 1)?.to_ascii_lowercase();
    i += 2;
    let mut props = Vec::new();
    while i < part.len() {
        let name = word(i)?.to_ascii_lowercase();
        if part.get(i + 1) != Some(&Token::Eq) {
            return None;
        }
        let value = word(i + 2)?.to_string();
        if name != "reason" && name.contains('.') {
            props.push((name, value));
        }
        i += 3;
    }
    Some(ResInfo {
        method,
        result,
        props,
    })
}

/// The domain of a property value: `vendor.test`, or the part after the
/// last `@` of `user@vendor.test` or `@vendor.test`.
fn domain_of(value: &str) -> &str {
    value.rsplit_once('@').map_or(value, |(_, d)| d)
}

/// What a trusted result proves, if anything: `dkim=pass` with `header.d`
/// or `header.i` aligned with the From domain, or `dmarc=pass` with
/// `header.from` the From domain.
fn proving(info: &ResInfo, from_domain: &str) -> Option<String> {
    if info.result != "pass" {
        return None;
    }
    let prop = |want: &[&str]| {
        info.props
            .iter()
            .find(|(name, _)| want.contains(&name.as_str()))
    };
    let (name, value) = match info.method.as_str() {
        "dkim" => {
            prop(&["header.d", "header.i"]).filter(|(_, v)| aligned(domain_of(v), from_domain))?
        }
        "dmarc" => prop(&["header.from"])
            .filter(|(_, v)| normal_name(domain_of(v)) == normal_name(from_domain))?,
        _ => return None,
    };
    Some(format!("{}=pass {name}={value}", info.method))
}

/// The first `dkim=pass` (`header.d` aligned with `from_domain`) or
/// `dmarc=pass` (`header.from` = `from_domain`) in an
/// Authentication-Results field whose authserv-id is one of `trusted`
/// (case-insensitive), standing above the first Received field that a
/// trusted server added (its `by` names a trusted authserv-id): RFC 8601
/// §5. Fields with any other authserv-id are ignored, and so is every field
/// below that Received line, which came with the mail from outside; with
/// no such Received line at all nothing counts. Only fields named exactly
/// `Authentication-Results` are read (`section` holds no near-names: a
/// section with one is ambiguous and proves nothing). Returns a
/// description such as "Authentication-Results from mx.vendor.test:
/// dkim=pass header.d=vendor.test".
pub fn trusted_results(
    section: &header_section::Section<'_>,
    trusted: &[String],
    from_domain: &str,
) -> Option<String> {
    if section.ambiguity.is_some() {
        return None;
    }
    let is_trusted = |id: &str| trusted.iter().any(|t| t.eq_ignore_ascii_case(id));
    let mut found = None;
    for field in &section.fields {
        if field.name.eq_ignore_ascii_case("Received") {
            if received_by(&field.unfolded()).is_some_and(|by| is_trusted(&by)) {
                return found;
            }
            continue;
        }
        if found.is_some() || !field.name.eq_ignore_ascii_case("Authentication-Results") {
            continue;
        }
        let Some(ar) = parse_auth_results(&field.unfolded()) else {
            continue;
        };
        if !is_trusted(&ar.authserv_id) {
            continue;
        }
        found = ar
            .results
            .iter()
            .find_map(|r| proving(r, from_domain))
            .map(|proof| format!("Authentication-Results from {}: {proof}", ar.authserv_id));
    }
    None
}

/// The host a Received field's `by` clause names (RFC 5321 §4.4),
/// lower-cased and without a trailing dot; comments are skipped.
fn received_by(value: &str) -> Option<String> {
    let words = tokens(value);
    let at = words
        .iter()
        .position(|t| matches!(t, Token::Word(w) if w.eq_ignore_ascii_case("by")))?;
    match words.get(at + 1) {
        Some(Token::Word(host)) => Some(host.trim_end_matches('.').to_ascii_lowercase()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = include_str!("../tests/fixtures/dkim/private.pem");
    const KEY_TXT: &str = include_str!("../tests/fixtures/dkim/public.txt");

    fn mail(from: &str, body: &str) -> Vec<u8> {
        format!(
            "From: Ana Staff <{from}>\r\nTo: support@example.test\r\nSubject: Re: [#42] pump\r\n\
             Date: Mon, 2 Mar 2026 10:00:00 +0000\r\nMessage-ID: <r1@vendor.test>\r\n\r\n{body}"
        )
        .into_bytes()
    }

    fn signed(from: &str, domain: &str) -> Vec<u8> {
        sign(
            &mail(from, "#close\r\nDone, thanks.\r\n"),
            domain,
            "sel",
            KEY,
        )
        .unwrap()
    }

    fn keys_for(domain: &str) -> StaticKeys {
        let name = format!("sel._domainkey.{domain}");
        StaticKeys::new([(name.as_str(), KEY_TXT.trim())])
    }

    fn failed(got: DkimVerdict) -> String {
        match got {
            DkimVerdict::Fail { reason } => reason,
            other => panic!("not a failure: {other:?}"),
        }
    }

    fn not_checked(got: DkimVerdict) -> String {
        match got {
            DkimVerdict::NotChecked { reason } => reason,
            other => panic!("not \"not checked\": {other:?}"),
        }
    }

    #[derive(Debug)]
    struct Failing(LookupError);
    impl KeyResolver for Failing {
        fn txt(&self, _: &str) -> Result<Vec<String>, LookupError> {
            Err(self.0.clone())
        }
    }

    #[test]
    fn a_signed_mail_passes_with_its_key() {
        let raw = signed("ana@vendor.test", "vendor.test");
        assert_eq!(
            verify(&raw, "vendor.test", &keys_for("vendor.test")),
            DkimVerdict::Pass {
                domain: "vendor.test".into(),
                selector: "sel".into()
            }
        );
    }

    #[test]
    fn a_parent_domain_signature_aligns_with_a_subdomain_from() {
        let raw = signed("ana@support.vendor.test", "vendor.test");
        let got = verify(&raw, "support.vendor.test", &keys_for("vendor.test"));
        assert!(matches!(got, DkimVerdict::Pass { .. }), "{got:?}");
    }

    /// Why the signed mail fails once `was` is replaced by `now` in it.
    fn tampered(was: &str, now: &str) -> String {
        let raw = signed("ana@vendor.test", "vendor.test");
        let text = String::from_utf8(raw).unwrap().replace(was, now);
        failed(verify(
            text.as_bytes(),
            "vendor.test",
            &keys_for("vendor.test"),
        ))
    }

    #[test]
    fn one_changed_body_byte_fails() {
        let reason = tampered("Done,", "Done;");
        assert!(reason.contains("body hash does not match"), "{reason}");
    }

    #[test]
    fn a_from_header_changed_after_signing_fails() {
        let reason = tampered("<ana@vendor.test>", "<boss@vendor.test>");
        assert!(reason.contains("Signature verification failed"), "{reason}");
    }

    #[test]
    fn a_second_from_header_above_a_signed_mail_fails() {
        let raw = signed("news@vendor.test", "vendor.test");
        let mut forged = b"From: <boss@vendor.test>\r\n".to_vec();
        forged.extend_from_slice(&raw);
        let reason = failed(verify(&forged, "vendor.test", &keys_for("vendor.test")));
        assert!(reason.contains("2 From fields"), "{reason}");
    }

    #[test]
    fn a_signature_over_part_of_the_body_fails() {
        use mail_auth::common::crypto::{RsaKey, Sha256};
        use mail_auth::common::headers::HeaderWriter;
        use rustls::pki_types::{PrivateKeyDer, pem::PemObject};
        let key =
            RsaKey::<Sha256>::from_key_der(PrivateKeyDer::from_pem_slice(KEY.as_bytes()).unwrap())
                .unwrap();
        let raw = mail("ana@vendor.test", "#close\r\n");
        let sig = mail_auth::dkim::DkimSigner::from_key(key)
            .domain("vendor.test")
            .selector("sel")
            .headers(["From", "Subject"])
            .body_length(true)
            .sign(&raw)
            .unwrap();
        let mut partial = sig.to_header().into_bytes();
        partial.extend_from_slice(&raw);
        partial.extend_from_slice(b"appended after signing\r\n");
        let reason = failed(verify(&partial, "vendor.test", &keys_for("vendor.test")));
        assert!(reason.contains("'l='"), "{reason}");
    }

    /// `raw` signed by vendor.test over exactly `headers`.
    fn signed_over(raw: &[u8], headers: &[&str]) -> Vec<u8> {
        use mail_auth::common::crypto::{RsaKey, Sha256};
        use mail_auth::common::headers::HeaderWriter;
        use rustls::pki_types::{PrivateKeyDer, pem::PemObject};
        let key =
            RsaKey::<Sha256>::from_key_der(PrivateKeyDer::from_pem_slice(KEY.as_bytes()).unwrap())
                .unwrap();
        let sig = mail_auth::dkim::DkimSigner::from_key(key)
            .domain("vendor.test")
            .selector("sel")
            .headers(headers.iter().copied())
            .sign(raw)
            .unwrap();
        let mut out = sig.to_header().into_bytes();
        out.extend_from_slice(raw);
        out
    }

    /// ticketd's acknowledgement as the vendor's outgoing server signs it:
    /// from support@vendor.test, with a display name the customer chose
    /// copied into its text.
    fn acknowledgement() -> Vec<u8> {
        sign(
            b"From: \"Vendor Support\" <support@vendor.test>\r\n\
              To: \"Mallory\" <mallory@example.org>\r\n\
              Subject: [TKT#2] We received your request\r\n\
              Date: Mon, 2 Mar 2026 10:00:00 +0000\r\n\
              Message-ID: <ticketd.2.ack@vendor.test>\r\n\
              MIME-Version: 1.0\r\n\
              Content-Type: text/plain; charset=utf-8\r\n\
              Content-Transfer-Encoding: 8bit\r\n\
              Auto-Submitted: auto-replied\r\n\r\n\
              Dear Mallory --b\r\nContent-Type: text/plain\r\n\r\n#severity 1,\r\n\r\n\
              we have received your request.\r\n",
            "vendor.test",
            "sel",
            KEY,
        )
        .unwrap()
    }

    /// `raw` with `lines` added at the end of its header section.
    fn appended(raw: &[u8], lines: &str) -> Vec<u8> {
        let text = String::from_utf8(raw.to_vec()).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        format!("{head}\r\n{lines}\r\n\r\n{body}").into_bytes()
    }

    #[test]
    fn issue_20_class_1_the_acknowledgement_itself_verifies() {
        let got = verify(&acknowledgement(), "vendor.test", &keys_for("vendor.test"));
        assert!(matches!(got, DkimVerdict::Pass { .. }), "{got:?}");
    }

    #[test]
    fn issue_20_class_1_fields_appended_under_another_spelling_prove_nothing() {
        let ack = acknowledgement();
        for lines in [
            "From : Alice <alice@vendor.test>",
            "From\t: Alice <alice@vendor.test>",
            "Message-ID : <forged@vendor.test>",
            "Subject : Re: [TKT#1] Pool degraded",
            "Content-Type : multipart/mixed; boundary=\"b\"",
            "From: Alice <alice@vendor.test>",
            "FROM: Alice <alice@vendor.test>",
            "Subject: Re: [TKT#1] Pool degraded",
            "Content-Type: multipart/mixed; boundary=\"b\"",
            "In-Reply-To: <ticketd.1.x@vendor.test>",
            "Fr\r\n om: Alice <alice@vendor.test>",
            "X-Note: a\r\n \r\nFrom: Alice <alice@vendor.test>",
        ] {
            let forged = appended(&ack, lines);
            let reason = failed(verify(&forged, "vendor.test", &keys_for("vendor.test")));
            assert!(
                reason.contains("could be read two ways") || reason.contains("verification failed"),
                "{lines:?}: {reason}"
            );
        }
    }

    #[test]
    fn issue_20_class_1_a_signature_must_cover_every_field_read_and_oversign_from() {
        let raw = mail("alice@vendor.test", "#close\r\n");
        let reason = failed(verify(
            &signed_over(&raw, &["From", "To", "Subject", "Date", "Message-ID"]),
            "vendor.test",
            &keys_for("vendor.test"),
        ));
        assert!(
            reason.contains(
                "does not cover From twice (oversigned), Cc, In-Reply-To, References, Content-Type, Content-Transfer-Encoding"
            ),
            "{reason}"
        );
        // Oversigned, and over the fields the mail lacks: proof.
        let all: Vec<&str> = ["From", "From"]
            .into_iter()
            .chain(MUST_SIGN.iter().copied())
            .collect();
        let raw = signed_over(&raw, &all);
        assert!(matches!(
            verify(&raw, "vendor.test", &keys_for("vendor.test")),
            DkimVerdict::Pass { .. }
        ));
        // Then a Content-Type added where the mail had none breaks it: the
        // signature covered its absence.
        let reason = failed(verify(
            &appended(&raw, "Content-Type: multipart/mixed; boundary=\"b\""),
            "vendor.test",
            &keys_for("vendor.test"),
        ));
        assert!(reason.contains("verification failed"), "{reason}");
    }

    #[test]
    fn issue_20_class_2_results_under_a_near_name_or_below_the_trusted_received_count_for_nothing()
    {
        let received = "Received: from a.test by mx.vendor.test (Postfix) with ESMTP id 1; Mon, 2 Mar 2026 10:00:00 +0000\r\n";
        let pass = "mx.vendor.test; dkim=pass header.d=vendor.test";
        // Above the trusted server's Received line: its own.
        assert!(
            results(&format!(
                "Authentication-Results: {pass}\r\n{received}From: a@vendor.test\r\n\r\n"
            ))
            .is_some()
        );
        // A near-name above it: the section is ambiguous and nothing counts.
        assert_eq!(
            results(&format!(
                "Authentication-Results : {pass}\r\n{received}From: a@vendor.test\r\n\r\n"
            )),
            None
        );
        // Below it: it came with the mail from outside.
        assert_eq!(
            results(&format!(
                "{received}Authentication-Results: {pass}\r\nFrom: a@vendor.test\r\n\r\n"
            )),
            None
        );
        // A later hop's Received (Dovecot's LMTP) above is no boundary.
        assert!(
            results(&format!(
                "Received: from mx.vendor.test by imap.vendor.test (Dovecot) with LMTP\r\n\
             Authentication-Results: {pass}\r\n{received}From: a@vendor.test\r\n\r\n"
            ))
            .is_some()
        );
        // No Received line of the trusted server at all: nothing to tell
        // its results from forged ones.
        assert_eq!(
            results(&format!(
                "Authentication-Results: {pass}\r\nFrom: a@vendor.test\r\n\r\n"
            )),
            None
        );
        // A "by" inside a comment is no by clause.
        assert_eq!(
            results(&format!(
                "Authentication-Results: {pass}\r\nReceived: from x (by mx.vendor.test) by mx.evil.test\r\nFrom: a@vendor.test\r\n\r\n"
            )),
            None
        );
    }

    #[test]
    fn a_signature_of_another_domain_is_unaligned() {
        let raw = signed("ana@vendor.test", "other.test");
        assert_eq!(
            verify(&raw, "vendor.test", &keys_for("other.test")),
            DkimVerdict::Unaligned {
                domain: "other.test".into()
            }
        );
    }

    #[test]
    fn a_missing_key_record_fails_and_a_revoked_key_fails() {
        let raw = signed("ana@vendor.test", "vendor.test");
        let reason = failed(verify(&raw, "vendor.test", &StaticKeys::default()));
        assert!(
            reason.contains("no key record at sel._domainkey.vendor.test"),
            "{reason}"
        );
        let revoked = StaticKeys::new([("sel._domainkey.vendor.test", "v=DKIM1; k=rsa; p=")]);
        let reason = failed(verify(&raw, "vendor.test", &revoked));
        assert!(reason.contains("revoked"), "{reason}");
    }

    #[test]
    fn a_key_lookup_timeout_is_not_checked() {
        let raw = signed("ana@vendor.test", "vendor.test");
        let reason = not_checked(verify(&raw, "vendor.test", &Failing(LookupError::Timeout)));
        assert!(reason.contains("timed out"), "{reason}");
    }

    #[test]
    fn offline_is_not_checked() {
        let raw = signed("ana@vendor.test", "vendor.test");
        let reason = not_checked(verify(&raw, "vendor.test", &Offline));
        assert!(reason.contains("offline"), "{reason}");
    }

    #[test]
    fn an_unsigned_mail_is_unsigned() {
        let raw = mail("ana@vendor.test", "hello\r\n");
        assert_eq!(
            verify(&raw, "vendor.test", &keys_for("vendor.test")),
            DkimVerdict::Unsigned
        );
    }

    #[test]
    fn any_passing_aligned_signature_wins_over_a_broken_one() {
        let good = signed("ana@vendor.test", "vendor.test");
        // A second, unverifiable signature (no key) of another domain on top.
        let both = sign(&good, "other.test", "sel", KEY).unwrap();
        assert!(matches!(
            verify(&both, "vendor.test", &keys_for("vendor.test")),
            DkimVerdict::Pass { .. }
        ));
    }

    #[test]
    fn the_verdict_serialises_with_its_result_tag() {
        let v = DkimVerdict::Pass {
            domain: "vendor.test".into(),
            selector: "sel".into(),
        };
        assert_eq!(
            serde_json::to_string(&v).unwrap(),
            r#"{"result":"pass","domain":"vendor.test","selector":"sel"}"#
        );
        assert_eq!(
            serde_json::to_string(&DkimVerdict::Unsigned).unwrap(),
            r#"{"result":"unsigned"}"#
        );
    }

    #[test]
    fn alignment_is_relaxed_but_never_by_a_bare_top_level_name() {
        assert!(aligned("vendor.test", "vendor.test"));
        assert!(aligned("Vendor.Test.", "vendor.test"));
        assert!(aligned("vendor.test", "support.vendor.test"));
        assert!(aligned("mail.vendor.test", "vendor.test"));
        assert!(!aligned("test", "vendor.test"));
        assert!(!aligned("other.test", "vendor.test"));
        assert!(!aligned("evilvendor.test", "vendor.test"));
        assert!(!aligned("", "vendor.test"));
    }

    /// A mail's header section with these Authentication-Results values on
    /// top, above the Received line the trusted server added.
    fn with_ar(values: &[&str]) -> String {
        let mut raw: String = values
            .iter()
            .map(|v| format!("Authentication-Results: {v}\r\n"))
            .collect();
        raw.push_str(
            "Received: from a.test by mx.vendor.test (Postfix) with ESMTP id 1; Mon, 2 Mar 2026 10:00:00 +0000\r\n\
             From: ana@vendor.test\r\n\r\n",
        );
        raw
    }

    fn trusted() -> Vec<String> {
        vec!["mx.vendor.test".to_string()]
    }

    /// What `trusted_results` finds in the header section `raw` for
    /// vendor.test, mx.vendor.test trusted.
    fn results(raw: &str) -> Option<String> {
        trusted_results(
            &header_section::read(raw.as_bytes()),
            &trusted(),
            "vendor.test",
        )
    }

    #[test]
    fn a_trusted_dkim_pass_aligned_is_proof() {
        let raw = with_ar(&["mx.vendor.test; dkim=pass header.d=vendor.test header.s=sel"]);
        assert_eq!(
            results(&raw).as_deref(),
            Some("Authentication-Results from mx.vendor.test: dkim=pass header.d=vendor.test")
        );
        // The authserv-id compares case-insensitively.
        let raw = with_ar(&["MX.Vendor.Test; dkim=pass header.i=@vendor.test"]);
        assert!(results(&raw).is_some());
    }

    #[test]
    fn the_same_result_from_another_authserv_id_is_ignored() {
        let raw = with_ar(&["mx.attacker.test; dkim=pass header.d=vendor.test"]);
        assert_eq!(results(&raw), None);
        assert_eq!(
            trusted_results(&header_section::read(raw.as_bytes()), &[], "vendor.test"),
            None
        );
    }

    #[test]
    fn a_trusted_dkim_fail_is_no_proof() {
        let raw = with_ar(&["mx.vendor.test; dkim=fail header.d=vendor.test"]);
        assert_eq!(results(&raw), None);
    }

    #[test]
    fn a_trusted_dkim_pass_for_another_domain_is_no_proof() {
        let raw = with_ar(&["mx.vendor.test; dkim=pass header.d=other.test"]);
        assert_eq!(results(&raw), None);
    }

    #[test]
    fn comments_versions_and_quoted_strings_are_parsed() {
        let raw = with_ar(&[
            "mx.vendor.test 1 (Postfix (with \\) OpenDKIM)); spf=pass (sender ok; really) \
             smtp.mailfrom=vendor.test; dkim=pass (2048-bit key; \"quoted\") reason=\"good; sig\" \
             header.d=\"vendor.test\" header.s=sel",
        ]);
        assert_eq!(
            results(&raw).as_deref(),
            Some("Authentication-Results from mx.vendor.test: dkim=pass header.d=vendor.test")
        );
        let parsed = parse_auth_results(
            "mx.vendor.test (comment) ; dkim/1 = pass (x) header.d = vendor.test; none-such",
        )
        .unwrap();
        assert_eq!(parsed.authserv_id, "mx.vendor.test");
        assert_eq!(
            parsed.results,
            vec![ResInfo {
                method: "dkim".into(),
                result: "pass".into(),
                props: vec![("header.d".into(), "vendor.test".into())],
            }]
        );
        assert_eq!(
            parse_auth_results("mx.vendor.test; none").unwrap().results,
            vec![]
        );
        assert_eq!(parse_auth_results("(only a comment)"), None);
    }

    #[test]
    fn a_trusted_dmarc_pass_for_the_from_domain_is_proof() {
        let raw = with_ar(&[
            "mx.vendor.test; dkim=fail header.d=vendor.test; dmarc=pass (p=reject) header.from=vendor.test",
        ]);
        assert_eq!(
            results(&raw).as_deref(),
            Some("Authentication-Results from mx.vendor.test: dmarc=pass header.from=vendor.test")
        );
        let raw = with_ar(&["mx.vendor.test; dmarc=pass header.from=other.test"]);
        assert_eq!(results(&raw), None);
    }

    #[test]
    fn an_untrusted_header_above_a_trusted_one_changes_nothing() {
        let raw = with_ar(&[
            "mx.attacker.test; dkim=pass header.d=vendor.test",
            "mx.vendor.test; dkim=none",
        ]);
        assert_eq!(results(&raw), None);
    }
}
