//! A secret string (password, client secret, refresh or access token) that never prints, and identifiers no one can guess.

use std::fmt;

/// A secret, never printed: its `Debug` shows `Secret(..)` and it has no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// 128 bits from the system's CSPRNG as 32 hex digits: identifiers no one
/// may guess (our Message-IDs, webhook message ids).
pub fn random_hex128() -> String {
    let mut bytes = [0u8; 16];
    match ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes) {
        Ok(()) => crate::text::hex(&bytes),
        // No system randomness (it does not happen on Linux): still unique.
        Err(_) => format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..)),
    }
}
