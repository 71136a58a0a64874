//! OAuth2 logins as configured, plain data: the mechanism, a token file or a token endpoint with its grant and client credentials, each checked with its line.

use super::checks::{is_loopback, secret};
use super::raw::RawOAuth2;
use crate::diag::Report;
use crate::secret::Secret;
use std::fmt;
use std::path::PathBuf;
use toml::Spanned;

/// The SASL mechanism a login uses with its token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    /// Google's and Microsoft's `XOAUTH2` (IMAP and SMTP).
    XOAuth2,
    /// RFC 7628 `OAUTHBEARER` (IMAP).
    OAuthBearer,
}

impl Mechanism {
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::XOAuth2 => "XOAUTH2",
            Mechanism::OAuthBearer => "OAUTHBEARER",
        }
    }
}

/// A token endpoint's address: `https://host[:port]/path` (plain `http`
/// only to loopback, which `config` checks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenUrl {
    pub https: bool,
    pub host: String,
    pub port: u16,
    pub path: String,
}

impl TokenUrl {
    pub fn parse(url: &str) -> Result<TokenUrl, String> {
        let (https, rest) = if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("http://") {
            (false, r)
        } else {
            return Err("must start with https://".into());
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.contains('@') {
            return Err("must not carry a user name or password".into());
        }
        let default = if https { 443 } else { 80 };
        let (host, port) = match authority.strip_prefix('[') {
            // [v6 address] and an optional :port
            Some(r) => match r.split_once(']') {
                Some((h, "")) => (h, None),
                Some((h, p)) => (h, Some(p.strip_prefix(':').unwrap_or(p))),
                None => return Err("has an unclosed [".into()),
            },
            None => match authority.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            },
        };
        let port = match port {
            Some(p) => p
                .parse::<u16>()
                .map_err(|_| format!("has a bad port `{p}`"))?,
            None => default,
        };
        if host.is_empty() || port == 0 {
            return Err("has no host".into());
        }
        if path.contains(['#', ' ']) || path.chars().any(|c| c.is_control()) {
            return Err("has a path that cannot be sent as is".into());
        }
        Ok(TokenUrl {
            https,
            host: host.to_string(),
            port,
            path: path.to_string(),
        })
    }
}

impl TokenUrl {
    /// The scheme, host and port without the path, which may be a secret
    /// (a Slack or Teams webhook's URL is its credential).
    pub fn origin(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        let default = if self.https { 443 } else { 80 };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == default {
            format!("{scheme}://{host}")
        } else {
            format!("{scheme}://{host}:{}", self.port)
        }
    }
}

impl fmt::Display for TokenUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.origin(), self.path)
    }
}

/// Which OAuth2 grant gets the tokens.
#[derive(Debug, Clone, PartialEq)]
pub enum Grant {
    /// Delegated access: a refresh token obtained once by consent.
    RefreshToken(Secret),
    /// Application access (Microsoft 365 app-only): the client's own secret.
    ClientCredentials,
}

impl Grant {
    pub fn name(&self) -> &'static str {
        match self {
            Grant::RefreshToken(_) => "refresh_token",
            Grant::ClientCredentials => "client_credentials",
        }
    }
}

/// A token endpoint and what to ask it for.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenRequest {
    pub url: TokenUrl,
    pub grant: Grant,
    pub client_id: String,
    pub client_secret: Option<Secret>,
    /// Space-separated scopes, sent when set.
    pub scope: Option<String>,
    /// Trust only this CA for the endpoint's certificate.
    pub ca_file: Option<PathBuf>,
}

/// Where the access tokens come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// A file holding the current token, kept fresh by an external helper;
    /// read again for every login.
    File(PathBuf),
    /// ticketd asks the endpoint itself.
    Endpoint(TokenRequest),
}

/// A login's OAuth2 settings: the mechanism, whose login it is (`mailbox
/// support`, named in every message) and where its tokens come from. Plain
/// data: `oauth::Tokens::of` gives the login's shared token cache.
#[derive(Debug, Clone, PartialEq)]
pub struct OAuth2 {
    pub mechanism: Mechanism,
    pub who: String,
    pub source: Source,
}

/// `oauth2 = { ... }`: a token file, or a token endpoint with a complete grant.
pub(super) fn oauth2_login(
    r: &mut Report<'_>,
    label: &str,
    who: &str,
    raw: &Spanned<RawOAuth2>,
    resolve: &dyn Fn(&str) -> PathBuf,
) -> Option<OAuth2> {
    let o = raw.get_ref();
    let before = r.problems.len();
    let mechanism = match &o.mechanism {
        None => Mechanism::XOAuth2,
        Some(m) => match m.get_ref().as_str() {
            "xoauth2" => Mechanism::XOAuth2,
            "oauthbearer" => Mechanism::OAuthBearer,
            other => {
                r.spanned(
                    m,
                    format!(
                        "{label}: oauth2 mechanism `{other}` is not one of xoauth2, oauthbearer"
                    ),
                );
                Mechanism::XOAuth2
            }
        },
    };
    let endpoint_keys = [
        ("grant", o.grant.as_ref()),
        ("client_id", o.client_id.as_ref()),
        ("client_secret_file", o.client_secret_file.as_ref()),
        (
            "client_secret_credential",
            o.client_secret_credential.as_ref(),
        ),
        ("refresh_token_file", o.refresh_token_file.as_ref()),
        (
            "refresh_token_credential",
            o.refresh_token_credential.as_ref(),
        ),
        ("scope", o.scope.as_ref()),
        ("ca_file", o.ca_file.as_ref()),
    ];
    let source = match (&o.token_file, &o.token_url) {
        (Some(f), Some(_)) => {
            r.spanned(
                f,
                format!("{label}: oauth2 takes token_file or token_url, not both"),
            );
            None
        }
        (None, None) => {
            r.spanned(
                raw,
                format!("{label}: oauth2 needs token_file, or token_url with a grant"),
            );
            None
        }
        (Some(f), None) => {
            for (key, value) in endpoint_keys {
                if let Some(v) = value {
                    r.spanned(
                        v,
                        format!("{label}: oauth2 {key} is for token_url; token_file needs none"),
                    );
                }
            }
            let path = resolve(f.get_ref());
            if !path.is_file() {
                r.spanned(
                    f,
                    format!(
                        "{label}: oauth2 token_file {} does not exist",
                        path.display()
                    ),
                );
            }
            Some(Source::File(path))
        }
        (None, Some(u)) => token_request(r, label, o, u, resolve).map(Source::Endpoint),
    };
    if r.problems.len() > before {
        return None;
    }
    Some(OAuth2 {
        mechanism,
        who: who.to_string(),
        source: source?,
    })
}

/// The token endpoint, the grant and the client's credentials.
/// The token endpoint, the grant and the client's credentials.
fn token_request(
    r: &mut Report<'_>,
    label: &str,
    o: &RawOAuth2,
    u: &Spanned<String>,
    resolve: &dyn Fn(&str) -> PathBuf,
) -> Option<TokenRequest> {
    let url = match TokenUrl::parse(u.get_ref().trim()) {
        Ok(url) => Some(url),
        Err(e) => {
            r.spanned(u, format!("{label}: oauth2 token_url {e}"));
            None
        }
    };
    if let Some(url) = &url
        && !url.https
        && !is_loopback(&url.host)
    {
        r.spanned(
            u,
            format!("{label}: oauth2 token_url must be https:// (plain http only to loopback)"),
        );
    }
    let client_id = match &o.client_id {
        Some(c) if !c.get_ref().trim().is_empty() => Some(c.get_ref().trim().to_string()),
        Some(c) => {
            r.spanned(c, format!("{label}: oauth2 client_id is empty"));
            None
        }
        None => {
            r.spanned(u, format!("{label}: oauth2 with token_url needs client_id"));
            None
        }
    };
    let client_secret = secret(
        r,
        "client_secret",
        o.client_secret_file.as_ref(),
        o.client_secret_credential.as_ref(),
        resolve,
    );
    let has_secret = o.client_secret_file.is_some() || o.client_secret_credential.is_some();
    let has_refresh = o.refresh_token_file.is_some() || o.refresh_token_credential.is_some();
    let grant = match o.grant.as_ref().map(|g| (g, g.get_ref().as_str())) {
        None => {
            r.spanned(
                u,
                format!("{label}: oauth2 with token_url needs grant = \"refresh_token\" or \"client_credentials\""),
            );
            None
        }
        Some((g, "refresh_token")) => {
            if !has_refresh {
                r.spanned(
                    g,
                    format!("{label}: oauth2 grant refresh_token needs refresh_token_file or refresh_token_credential"),
                );
            }
            secret(
                r,
                "refresh_token",
                o.refresh_token_file.as_ref(),
                o.refresh_token_credential.as_ref(),
                resolve,
            )
            .map(Grant::RefreshToken)
        }
        Some((g, "client_credentials")) => {
            if !has_secret {
                r.spanned(
                    g,
                    format!("{label}: oauth2 grant client_credentials needs client_secret_file or client_secret_credential"),
                );
            }
            if o.scope.is_none() {
                r.spanned(
                    g,
                    format!("{label}: oauth2 grant client_credentials needs scope (Microsoft 365: https://outlook.office365.com/.default)"),
                );
            }
            if let Some(t) = o
                .refresh_token_file
                .as_ref()
                .or(o.refresh_token_credential.as_ref())
            {
                r.spanned(
                    t,
                    format!("{label}: oauth2 grant client_credentials uses no refresh token"),
                );
            }
            Some(Grant::ClientCredentials)
        }
        Some((g, other)) => {
            r.spanned(
                g,
                format!("{label}: oauth2 grant `{other}` is not one of refresh_token, client_credentials"),
            );
            None
        }
    };
    let ca_file = o.ca_file.as_ref().map(|c| {
        let p = resolve(c.get_ref());
        if !p.is_file() {
            r.spanned(
                c,
                format!("{label}: oauth2 ca_file {} does not exist", p.display()),
            );
        }
        p
    });
    Some(TokenRequest {
        url: url?,
        grant: grant?,
        client_id: client_id?,
        client_secret,
        scope: o
            .scope
            .as_ref()
            .map(|s| s.get_ref().trim().to_string())
            .filter(|s| !s.is_empty()),
        ca_file,
    })
}
