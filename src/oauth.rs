//! OAuth2 access tokens for the IMAP and SMTP logins: from a file an external helper keeps fresh, or from a token endpoint (refresh-token or client-credentials grant) over `http` (no redirect followed), cached until shortly before they expire.

use crate::config::{Grant, Mechanism, OAuth2, Source, TokenRequest};
use crate::http;
use crate::secret::Secret;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::info;

/// How long a refused refresh is remembered: the endpoint is asked again
/// only after this, however often a login wants a token meanwhile.
pub const REFUSED_RETRY: Duration = Duration::from_secs(300);
/// A whole token request (connect, TLS, request, answer).
const TIMEOUT: Duration = Duration::from_secs(30);
/// The longest answer read from a token endpoint.
const MAX_ANSWER: usize = 256 * 1024;
/// A token is renewed this long before it expires, at most (a fifth of its
/// lifetime for short-lived tokens).
const RENEW_AHEAD: Duration = Duration::from_secs(300);

impl Mechanism {
    /// The client's first SASL message. OAUTHBEARER's authzid escapes `,`
    /// and `=` (RFC 5801).
    pub fn initial_response(self, user: &str, host: &str, port: u16, token: &Secret) -> Vec<u8> {
        match self {
            Mechanism::XOAuth2 => format!("user={user}\x01auth=Bearer {}\x01\x01", token.0),
            Mechanism::OAuthBearer => format!(
                "n,a={},\x01host={host}\x01port={port}\x01auth=Bearer {}\x01\x01",
                user.replace('=', "=3D").replace(',', "=2C"),
                token.0
            ),
        }
        .into_bytes()
    }

    /// What the client answers to the server's error challenge so that the
    /// server ends the exchange with its refusal.
    pub fn abort_response(self) -> &'static [u8] {
        match self {
            Mechanism::XOAuth2 => b"",
            Mechanism::OAuthBearer => b"\x01",
        }
    }
}

/// Why no token could be had.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct TokenError {
    /// The endpoint answered and refused (a configuration or consent
    /// problem: retried only after [`REFUSED_RETRY`]); otherwise it could
    /// not be reached or failed, retried like a lost connection.
    pub refused: bool,
    pub message: String,
}

/// The tokens of one login, cached and shared by its connections (the
/// outbox's four share one), so one refresh serves them all.
#[derive(Clone)]
pub struct Tokens(Arc<Inner>);

struct Inner {
    who: String,
    source: Source,
    state: tokio::sync::Mutex<State>,
}

#[derive(Default)]
struct State {
    current: Option<Cached>,
    /// A refresh token the endpoint handed out in place of the configured one.
    rotated: Option<Secret>,
    /// The last refusal and when it came.
    refused: Option<(Instant, TokenError)>,
}

struct Cached {
    token: Secret,
    /// When to ask for a new one; `None`: until it is refused.
    renew_at: Option<Instant>,
}

/// Two logins' tokens are the same when they come from the same place for
/// the same login (a reload compares configurations; the cache is not part
/// of one).
impl PartialEq for Tokens {
    fn eq(&self, other: &Tokens) -> bool {
        self.0.who == other.0.who && self.0.source == other.0.source
    }
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokens")
            .field("who", &self.0.who)
            .field("source", &self.0.source)
            .finish()
    }
}

impl Tokens {
    /// `who` names the login in every message (`mailbox support`).
    pub fn new(who: String, source: Source) -> Tokens {
        Tokens(Arc::new(Inner {
            who,
            source,
            state: tokio::sync::Mutex::new(State::default()),
        }))
    }

    /// The token cache of the login `o` configures: one per login (whose it
    /// is and where its tokens come from), made at its first use and shared
    /// by every connection of the login and across reloads that keep it, so
    /// one refresh serves them all. The configuration holds only the plain
    /// settings; this is the shell's cache of what they give.
    pub fn of(o: &OAuth2) -> Tokens {
        static CACHES: std::sync::OnceLock<parking_lot::Mutex<Vec<Tokens>>> =
            std::sync::OnceLock::new();
        let mut caches = CACHES.get_or_init(Default::default).lock();
        if let Some(t) = caches
            .iter()
            .find(|t| t.0.who == o.who && t.0.source == o.source)
        {
            return t.clone();
        }
        let t = Tokens::new(o.who.clone(), o.source.clone());
        caches.push(t.clone());
        t
    }

    pub fn source(&self) -> &Source {
        &self.0.source
    }

    /// A token to log in with: the cached one unless it is due for renewal.
    /// `now` is the clock's monotonic instant.
    pub async fn get(&self, now: Instant) -> Result<Secret, TokenError> {
        let mut st = self.0.state.lock().await;
        if let Some(c) = &st.current
            && c.renew_at.is_none_or(|t| now < t)
        {
            return Ok(c.token.clone());
        }
        self.fetch(&mut st, now).await
    }

    /// A new token after the server refused `refused`; when another
    /// connection has already replaced it, that one.
    pub async fn renew(&self, refused: &Secret, now: Instant) -> Result<Secret, TokenError> {
        let mut st = self.0.state.lock().await;
        if let Some(c) = &st.current
            && c.token != *refused
        {
            return Ok(c.token.clone());
        }
        st.current = None;
        self.fetch(&mut st, now).await
    }

    async fn fetch(&self, st: &mut State, now: Instant) -> Result<Secret, TokenError> {
        let req = match &self.0.source {
            Source::File(path) => return self.read_file(path),
            Source::Endpoint(req) => req,
        };
        if let Some((at, e)) = &st.refused
            && now < *at + REFUSED_RETRY
        {
            return Err(e.clone());
        }
        let refresh = st.rotated.clone();
        match self.request(req, refresh.as_ref()).await {
            Ok(granted) => {
                let lifetime = granted.expires_in.map(Duration::from_secs);
                let renew_at = lifetime.map(|l| now + l - (l / 5).min(RENEW_AHEAD));
                match lifetime {
                    Some(l) => info!(
                        "{}: new access token from {} (valid for {} s)",
                        self.0.who,
                        req.url,
                        l.as_secs()
                    ),
                    None => info!(
                        "{}: new access token from {} (no lifetime given: kept until refused)",
                        self.0.who, req.url
                    ),
                }
                if let Some(r) = granted.refresh_token {
                    st.rotated = Some(r);
                }
                st.refused = None;
                st.current = Some(Cached {
                    token: granted.access_token.clone(),
                    renew_at,
                });
                Ok(granted.access_token)
            }
            Err(e) => {
                if e.refused {
                    st.refused = Some((now, e.clone()));
                }
                Err(e)
            }
        }
    }

    fn read_file(&self, path: &std::path::Path) -> Result<Secret, TokenError> {
        let unavailable = |why: String| TokenError {
            refused: false,
            message: format!("{}: {why}", self.0.who),
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| unavailable(format!("cannot read token file {}: {e}", path.display())))?;
        let token = text.trim();
        if token.is_empty() {
            return Err(unavailable(format!(
                "token file {} is empty",
                path.display()
            )));
        }
        Ok(Secret(token.to_string()))
    }

    /// One token request: the grant's form POSTed, the JSON answer read.
    async fn request(
        &self,
        req: &TokenRequest,
        rotated: Option<&Secret>,
    ) -> Result<Granted, TokenError> {
        let who = &self.0.who;
        let unavailable = |why: String| TokenError {
            refused: false,
            message: format!("{who}: cannot get an access token from {}: {why}", req.url),
        };
        let mut form = vec![("grant_type", req.grant.name())];
        if let Grant::RefreshToken(configured) = &req.grant {
            form.push(("refresh_token", &rotated.unwrap_or(configured).0));
        }
        form.push(("client_id", &req.client_id));
        if let Some(s) = &req.client_secret {
            form.push(("client_secret", &s.0));
        }
        if let Some(s) = &req.scope {
            form.push(("scope", s));
        }
        let body = form
            .iter()
            .map(|(k, v)| format!("{k}={}", form_encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let answered = http::post(http::Post {
            who,
            url: &req.url,
            ca_file: req.ca_file.as_deref(),
            content_type: "application/x-www-form-urlencoded",
            headers: &[("accept", "application/json")],
            body: body.as_bytes(),
            timeout: TIMEOUT,
            max_answer: MAX_ANSWER,
        })
        .await
        .map_err(|e| unavailable(e.to_string()))?;
        let (status, answer) = (answered.status, answered.body);
        let json: Option<serde_json::Value> = serde_json::from_slice(&answer).ok();
        let field = |k: &str| {
            json.as_ref()
                .and_then(|j| j.get(k))
                .and_then(|v| v.as_str())
                .map(str::to_string)
        };
        if (400..500).contains(&status) {
            let answer = match (field("error"), field("error_description")) {
                (Some(e), Some(d)) => format!("{e}: {d}"),
                (Some(e), None) => e,
                _ => String::from_utf8_lossy(&answer).into_owned(),
            };
            return Err(TokenError {
                refused: true,
                message: format!(
                    "{who}: the token endpoint {} refused the {} grant (HTTP {status}): {}",
                    req.url,
                    req.grant.name(),
                    crate::text::one_line(&answer, 400)
                ),
            });
        }
        if status != 200 {
            return Err(unavailable(format!("HTTP {status}")));
        }
        let Some(access_token) = field("access_token").filter(|t| !t.is_empty()) else {
            return Err(unavailable("the answer holds no access_token".into()));
        };
        let expires_in = json
            .as_ref()
            .and_then(|j| j.get("expires_in"))
            .and_then(|v| {
                v.as_u64()
                    .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
            });
        Ok(Granted {
            access_token: Secret(access_token),
            expires_in,
            refresh_token: field("refresh_token").filter(|t| !t.is_empty()).map(Secret),
        })
    }
}

/// What a token endpoint granted.
struct Granted {
    access_token: Secret,
    expires_in: Option<u64>,
    refresh_token: Option<Secret>,
}

/// `application/x-www-form-urlencoded`: unreserved characters as they are,
/// everything else percent-encoded.
fn form_encode(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, SystemClock};
    use crate::config::TokenUrl;
    use std::io::{Read, Write};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A loopback endpoint answering each request with the next of
    /// `answers` (status line, JSON), counting the requests.
    fn endpoint(answers: Vec<(&'static str, &'static str)>) -> (Tokens, Arc<AtomicUsize>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(AtomicUsize::new(0));
        let counter = seen.clone();
        std::thread::spawn(move || {
            for (status, body) in answers {
                let Ok((mut c, _)) = listener.accept() else {
                    return;
                };
                let mut buf = [0u8; 4096];
                let mut got = Vec::new();
                // The form is small: the head and body come in one or two reads.
                while !String::from_utf8_lossy(&got).contains("grant_type=") {
                    let n = c.read(&mut buf).unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    got.extend_from_slice(&buf[..n]);
                }
                counter.fetch_add(1, Ordering::SeqCst);
                let _ = write!(
                    c,
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        let req = TokenRequest {
            url: TokenUrl::parse(&format!("http://127.0.0.1:{port}/token")).unwrap(),
            grant: Grant::ClientCredentials,
            client_id: "c".into(),
            client_secret: Some(Secret("s".into())),
            scope: Some("x".into()),
            ca_file: None,
        };
        (Tokens::new("mailbox t".into(), Source::Endpoint(req)), seen)
    }

    #[tokio::test]
    async fn a_token_is_kept_until_shortly_before_it_expires() {
        let (tokens, seen) = endpoint(vec![
            ("200 OK", r#"{"access_token":"a1","expires_in":100}"#),
            ("200 OK", r#"{"access_token":"a2","expires_in":"100"}"#),
            ("200 OK", r#"{"access_token":"a3"}"#),
        ]);
        let t0 = SystemClock.monotonic();
        let at = |s: u64| t0 + Duration::from_secs(s);
        assert_eq!(tokens.get(at(0)).await.unwrap().0, "a1");
        assert_eq!(tokens.get(at(79)).await.unwrap().0, "a1");
        // A fifth of its lifetime before it expires, a new one.
        assert_eq!(tokens.get(at(81)).await.unwrap().0, "a2");
        assert_eq!(seen.load(Ordering::SeqCst), 2);
        // A refusal of an older token does not cost a request.
        let old = Secret("a1".into());
        assert_eq!(tokens.renew(&old, at(82)).await.unwrap().0, "a2");
        assert_eq!(seen.load(Ordering::SeqCst), 2);
        let current = Secret("a2".into());
        assert_eq!(tokens.renew(&current, at(83)).await.unwrap().0, "a3");
        // No lifetime given: kept until refused.
        assert_eq!(tokens.get(at(100_000)).await.unwrap().0, "a3");
        assert_eq!(seen.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_refused_request_is_asked_again_only_after_the_slow_retry() {
        let (tokens, seen) = endpoint(vec![
            (
                "401 Unauthorized",
                r#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided."}"#,
            ),
            ("200 OK", r#"{"access_token":"b1","expires_in":3600}"#),
        ]);
        let t0 = SystemClock.monotonic();
        let e = tokens.get(t0).await.unwrap_err();
        assert!(e.refused);
        assert!(
            e.message.ends_with("refused the client_credentials grant (HTTP 401): invalid_client: AADSTS7000215: Invalid client secret provided."),
            "{}",
            e.message
        );
        assert!(
            e.message
                .starts_with("mailbox t: the token endpoint http://127.0.0.1:")
        );
        let again = tokens.get(t0 + Duration::from_secs(299)).await.unwrap_err();
        assert_eq!(again.message, e.message);
        assert_eq!(seen.load(Ordering::SeqCst), 1);
        let later = t0 + REFUSED_RETRY + Duration::from_secs(1);
        assert_eq!(tokens.get(later).await.unwrap().0, "b1");
        assert_eq!(seen.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn token_urls_parse_and_print() {
        let u = TokenUrl::parse("https://login.microsoftonline.com/t1/oauth2/v2.0/token").unwrap();
        assert_eq!(
            (u.https, u.port, u.path.as_str()),
            (true, 443, "/t1/oauth2/v2.0/token")
        );
        assert_eq!(
            u.to_string(),
            "https://login.microsoftonline.com/t1/oauth2/v2.0/token"
        );
        let u = TokenUrl::parse("http://127.0.0.1:8080/token").unwrap();
        assert_eq!(
            (u.https, u.host.as_str(), u.port),
            (false, "127.0.0.1", 8080)
        );
        assert_eq!(u.to_string(), "http://127.0.0.1:8080/token");
        let u = TokenUrl::parse("http://[::1]:81/t").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 81));
        assert!(TokenUrl::parse("ftp://x/").is_err());
        assert!(TokenUrl::parse("https://user:pw@x/").is_err());
        assert!(TokenUrl::parse("https://x:99999/").is_err());
    }

    #[test]
    fn forms_are_percent_encoded() {
        assert_eq!(
            form_encode("https://outlook.office365.com/.default a+b"),
            "https%3A%2F%2Foutlook.office365.com%2F.default%20a%2Bb"
        );
    }

    #[test]
    fn sasl_initial_responses() {
        let t = Secret("tok".into());
        assert_eq!(
            Mechanism::XOAuth2.initial_response("a@b", "h", 993, &t),
            b"user=a@b\x01auth=Bearer tok\x01\x01"
        );
        assert_eq!(
            Mechanism::OAuthBearer.initial_response("a,=b", "h", 993, &t),
            b"n,a=a=2C=3Db,\x01host=h\x01port=993\x01auth=Bearer tok\x01\x01"
        );
    }
}
