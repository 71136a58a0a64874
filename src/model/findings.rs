//! What reading a mail found that the decision weighs: a delivery report's bounce (`dsn` reads it) and the DKIM verdict on its From domain (`dkim` reaches it).

use serde::Serialize;

/// What a delivery report says happened to the mail it returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Bounce {
    /// The enhanced status code (RFC 3463), e.g. "5.1.1"; "" when none could be read.
    pub status: String,
    /// The status is 5.x.x: delivery to `recipients` will never work.
    pub permanent: bool,
    /// The recipients the status is about (lower-cased).
    pub recipients: Vec<String>,
    /// The Message-ID of the returned mail, without angle brackets.
    pub original_message_id: Option<String>,
    /// The remote server's words (Diagnostic-Code, or the SMTP reply in the body).
    pub diagnostic: Option<String>,
}

/// What the DKIM signatures of a mail prove about its From domain.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum DkimVerdict {
    /// A signature verified and its `d=` aligns with the From domain.
    Pass { domain: String, selector: String },
    /// A signature by a domain that does not align with the From domain
    /// (its key is not looked up: it could prove nothing of From).
    Unaligned { domain: String },
    /// No signature verified: a bad signature, a body hash mismatch, no key
    /// record, a revoked key, a partial body (`l=`), several From headers...
    Fail { reason: String },
    /// A key could not be looked up (a timeout, no DNS, offline).
    NotChecked { reason: String },
    /// No DKIM-Signature header.
    Unsigned,
}
