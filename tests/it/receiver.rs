//! A webhook receiver on loopback, plain or TLS, written for the tests: it answers each request as its script says (200, 500, hang, drop), records every request, and checks each signature with its own Standard Webhooks 1.0 verification (HMAC-SHA256 from RFC 2104 over SHA-256, written here from the specification).

use crate::harness::ServerCert;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use sha2::{Digest, Sha256};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// What the receiver does with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    Ok,
    /// 500 Internal Server Error.
    Fail,
    /// Reads the request, then never answers (until the test ends).
    Hang,
    /// Reads the request, then closes without a word.
    Drop,
}

/// One request as it came.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub id: String,
    pub timestamp: String,
    pub signature: String,
    pub body: String,
    /// The signature verified under the receiver's key.
    pub verified: bool,
    pub reply: Reply,
}

struct State {
    script: VecDeque<Reply>,
    got: Vec<Received>,
    key: Option<Vec<u8>>,
}

pub struct Receiver {
    pub port: u16,
    state: Arc<Mutex<State>>,
}

/// HMAC-SHA256 (RFC 2104): H((K ^ opad) || H((K ^ ipad) || m)), 64-byte blocks.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let inner = Sha256::new()
        .chain_update(k.map(|b| b ^ 0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(k.map(|b| b ^ 0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

/// The Standard Webhooks check: the signed content is `id.timestamp.body`;
/// the header holds space-separated `v1,<base64>` signatures, any of which
/// may match; the timestamp is whole seconds.
pub fn verify(key: &[u8], id: &str, timestamp: &str, body: &str, header: &str) -> bool {
    if id.is_empty() || timestamp.parse::<i64>().is_err() {
        return false;
    }
    let expected = B64.encode(hmac_sha256(
        key,
        format!("{id}.{timestamp}.{body}").as_bytes(),
    ));
    header.split(' ').any(|s| {
        s.strip_prefix("v1,").is_some_and(|sig| {
            sig.len() == expected.len()
                && sig
                    .bytes()
                    .zip(expected.bytes())
                    .fold(0u8, |a, (x, y)| a | (x ^ y))
                    == 0
        })
    })
}

/// A `whsec_` secret for a fresh random key: (secret text, key bytes).
pub fn new_secret() -> (String, Vec<u8>) {
    let key: Vec<u8> = (0..32).map(|_| fastrand::u8(..)).collect();
    (format!("whsec_{}", B64.encode(&key)), key)
}

impl Receiver {
    /// Listens on loopback (TLS with `cert` when given); `key` checks the
    /// signatures; `script` answers the first requests, 200 after.
    pub async fn start(
        key: Option<Vec<u8>>,
        cert: Option<&ServerCert>,
        script: &[Reply],
    ) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State {
            script: script.iter().copied().collect(),
            got: Vec::new(),
            key,
        }));
        let acceptor = cert.map(acceptor);
        let s = state.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (s, acceptor) = (s.clone(), acceptor.clone());
                tokio::spawn(async move {
                    match acceptor {
                        Some(a) => {
                            if let Ok(tls) = a.accept(tcp).await {
                                serve(tls, s).await;
                            }
                        }
                        None => serve(tcp, s).await,
                    }
                });
            }
        });
        Receiver { port, state }
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().got.clone()
    }
}

fn acceptor(cert: &ServerCert) -> tokio_rustls::TlsAcceptor {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(cert.cert_pem.as_bytes())
            .map(|c| c.unwrap())
            .collect();
    let key = PrivateKeyDer::from_pem_slice(cert.key_pem.as_bytes()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

/// Reads one request (head, then the body its Content-Length gives).
async fn read_request<S: AsyncRead + Unpin>(
    s: &mut S,
) -> Option<(String, Vec<(String, String)>, String)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..end]).to_string();
    let mut lines = head.split("\r\n");
    let path = lines.next()?.split(' ').nth(1)?.to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[end + 4..].to_vec();
    while body.len() < length {
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some((path, headers, String::from_utf8_lossy(&body).to_string()))
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, state: Arc<Mutex<State>>) {
    let Some((path, headers, body)) = read_request(&mut s).await else {
        return;
    };
    let field = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let (id, timestamp, signature) = (
        field("webhook-id"),
        field("webhook-timestamp"),
        field("webhook-signature"),
    );
    let reply = {
        let mut st = state.lock().unwrap();
        let reply = st.script.pop_front().unwrap_or(Reply::Ok);
        let verified = st
            .key
            .as_ref()
            .is_some_and(|k| verify(k, &id, &timestamp, &body, &signature));
        st.got.push(Received {
            path,
            id,
            timestamp,
            signature,
            body,
            verified,
            reply,
        });
        reply
    };
    let status = match reply {
        Reply::Ok => "200 OK",
        Reply::Fail => "500 Internal Server Error",
        // The sender's timeout ends the exchange; the connection is held
        // until then (the test's end drops it).
        Reply::Hang => return std::future::pending::<()>().await,
        Reply::Drop => return,
    };
    let _ = s
        .write_all(
            format!("HTTP/1.1 {status}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
                .as_bytes(),
        )
        .await;
    let _ = s.shutdown().await;
}

#[test]
fn the_receivers_check_agrees_with_the_specifications_example() {
    // The example of the Standard Webhooks specification.
    let key = B64.decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
    let (id, ts, body) = (
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "1614265330",
        r#"{"test": 2432232314}"#,
    );
    let good = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
    assert!(verify(&key, id, ts, body, good));
    assert!(verify(&key, id, ts, body, &format!("v1,bm90IGl0 {good}")));
    assert!(!verify(&key, id, ts, &body.replace('2', "3"), good));
    assert!(!verify(&key, "msg_other", ts, body, good));
    assert!(!verify(&key, id, ts, body, &good.replace("v1,", "v2,")));
}
