//! A secret string (password, client secret, refresh or access token) that never prints.

use std::fmt;

/// A secret, never printed: its `Debug` shows `Secret(..)` and it has no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}
