//! TCP and TLS for the mailbox watchers, the outbox and the token requests: one rustls configuration (the system's trust store, or a private CA from `ca_file`), a refused certificate named in one line.

use anyhow::{Context, Result, anyhow};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// A byte stream a protocol client can run over: plain TCP or TLS.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send + Sync + std::fmt::Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync + std::fmt::Debug> Stream for T {}

/// Opens a TCP connection with Nagle off: our commands are small and
/// waiting for delayed ACKs would cap throughput at a few dozen per second.
pub async fn tcp(host: &str, port: u16, timeout: Duration) -> Result<TcpStream> {
    let s = tokio::time::timeout(timeout, TcpStream::connect((host, port)))
        .await
        .with_context(|| format!("connecting to {host}:{port} timed out"))?
        .with_context(|| format!("cannot connect to {host}:{port}"))?;
    s.set_nodelay(true)?;
    Ok(s)
}

/// Where a TLS connection goes, and who makes it (for the error line).
#[derive(Debug, Clone, Copy)]
pub struct Peer<'a> {
    /// `mailbox support`, `SMTP relay smtp.example.com:587`, ...
    pub who: &'a str,
    /// The name the certificate must carry (a DNS name or an IP address).
    pub host: &'a str,
    pub port: u16,
    /// Trust only the CAs in this PEM file instead of the system's store.
    pub ca_file: Option<&'a Path>,
}

/// A server certificate the handshake refused (expired, self-signed, for
/// another host, from an unknown CA...): one line naming who connected, the
/// server and the reason.
#[derive(Debug, thiserror::Error)]
#[error("{who}: the TLS certificate of {server} was refused: {reason}")]
pub struct CertificateRefused {
    pub who: String,
    pub server: String,
    pub reason: String,
}

/// The system's trust store (Debian: /etc/ssl/certs, from ca-certificates),
/// read once.
fn system_roots() -> Result<Arc<rustls::RootCertStore>> {
    static ROOTS: OnceLock<Result<Arc<rustls::RootCertStore>, String>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            let mut roots = rustls::RootCertStore::empty();
            roots.add_parsable_certificates(found.certs);
            if roots.is_empty() {
                let why = found
                    .errors
                    .first()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default();
                return Err(format!(
                    "no trusted CA certificates found on this system{why}: install ca-certificates, or set ca_file"
                ));
            }
            Ok(Arc::new(roots))
        })
        .clone()
        .map_err(|e| anyhow!(e))
}

fn private_roots(path: &Path) -> Result<Arc<rustls::RootCertStore>> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path)
        .with_context(|| format!("cannot read CA file {}", path.display()))?
    {
        let cert = cert.with_context(|| format!("bad certificate in {}", path.display()))?;
        roots
            .add(cert)
            .with_context(|| format!("unusable CA certificate in {}", path.display()))?;
    }
    if roots.is_empty() {
        return Err(anyhow!("CA file {} holds no certificate", path.display()));
    }
    Ok(Arc::new(roots))
}

/// The one client configuration every TLS connection uses: TLS 1.2 and 1.3
/// with ring, the server's certificate chain and name checked by webpki
/// against the system's trust store, or only `ca_file`'s CAs when set.
pub fn client_config(ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>> {
    let roots = match ca_file {
        Some(path) => private_roots(path)?,
        None => system_roots()?,
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
        .build()
        .context("TLS setup")?;
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS setup")?
        // The full webpki verification; the wrapper only names a
        // self-signed certificate as such when it is refused.
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Verifier(webpki)))
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}

/// TLS over an open TCP stream, verifying the server's certificate and name.
pub async fn tls(peer: Peer<'_>, tcp: TcpStream, timeout: Duration) -> Result<TlsStream> {
    let connector = tokio_rustls::TlsConnector::from(client_config(peer.ca_file)?);
    let server = format!("{}:{}", peer.host, peer.port);
    let name = ServerName::try_from(peer.host.to_string())
        .with_context(|| format!("{}: {} is not a valid TLS server name", peer.who, peer.host))?;
    let s = tokio::time::timeout(timeout, connector.connect(name, tcp))
        .await
        .map_err(|_| anyhow!("{}: TLS handshake with {server} timed out", peer.who))?;
    match s {
        Ok(s) => Ok(TlsStream(s)),
        Err(e) => match e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            Some(rustls::Error::InvalidCertificate(c)) => Err(CertificateRefused {
                who: peer.who.to_string(),
                server,
                reason: certificate_reason(c, peer),
            }
            .into()),
            Some(other) => Err(anyhow!(
                "{}: TLS handshake with {server} failed: {other}",
                peer.who
            )),
            None => Err(anyhow!(
                "{}: TLS handshake with {server} failed: {e}",
                peer.who
            )),
        },
    }
}

fn date(t: &UnixTime) -> String {
    chrono::DateTime::from_timestamp(t.as_secs() as i64, 0)
        .map(|d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| format!("{} s after 1970", t.as_secs()))
}

/// Why a certificate was refused, in words an admin can act on.
fn certificate_reason(c: &CertificateError, peer: Peer<'_>) -> String {
    let host = peer.host;
    match c {
        CertificateError::Expired => "it has expired".into(),
        CertificateError::ExpiredContext { not_after, .. } => {
            format!("it expired on {}", date(not_after))
        }
        CertificateError::NotValidYet => "it is not valid yet".into(),
        CertificateError::NotValidYetContext { not_before, .. } => {
            format!("it is not valid before {}", date(not_before))
        }
        CertificateError::NotValidForName => format!("it is not valid for the host name {host}"),
        CertificateError::NotValidForNameContext { presented, .. } => {
            // rustls gives the names as `DnsName("a.example")`.
            let names: Vec<&str> = presented
                .iter()
                .map(|p| {
                    p.split_once('(')
                        .and_then(|(_, r)| r.strip_suffix(')'))
                        .map_or(p.as_str(), |n| n.trim_matches('"'))
                })
                .collect();
            match names.is_empty() {
                true => format!("it names no host, not {host}"),
                false => format!("it is for another host ({}), not {host}", names.join(", ")),
            }
        }
        CertificateError::UnknownIssuer => match peer.ca_file {
            Some(ca) => format!("it is not signed by the CA in {}", ca.display()),
            None => {
                "it is not signed by a CA the system trusts (a private CA needs ca_file)".into()
            }
        },
        CertificateError::Other(e) if e.0.is::<SelfSigned>() => {
            "it is self-signed (trust it only by putting it in ca_file)".into()
        }
        CertificateError::Revoked => "it has been revoked".into(),
        CertificateError::BadSignature => "its signature does not verify".into(),
        other => format!("{other:?}"),
    }
}

/// A refused self-signed certificate (webpki calls it an unknown issuer).
#[derive(Debug, thiserror::Error)]
#[error("self-signed certificate")]
struct SelfSigned;

/// webpki's verification; an unknown issuer whose certificate names itself
/// as its issuer is reported as self-signed.
#[derive(Debug)]
struct Verifier(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let r =
            self.0
                .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now);
        match r {
            Err(rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer))
                if intermediates.is_empty() && self_issued(end_entity) =>
            {
                Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                    rustls::OtherError(Arc::new(SelfSigned)),
                )))
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// One DER element: (tag, contents, what follows).
fn der(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |a, &b| (a << 8) | b as usize);
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// Whether a certificate's issuer and subject are the same name (RFC 5280
/// Certificate -> TBSCertificate: [0] version, serial, signature, issuer,
/// validity, subject).
fn self_issued(cert: &[u8]) -> bool {
    (|| {
        let (_, certificate, _) = der(cert)?;
        let (_, tbs, _) = der(certificate)?;
        let (tag, _, mut rest) = der(tbs)?;
        if tag == 0xa0 {
            rest = der(rest)?.2; // the serial followed the version
        }
        let (_, _, rest) = der(rest)?; // signature algorithm
        let (_, issuer, rest) = der(rest)?;
        let (_, _, rest) = der(rest)?; // validity
        let (_, subject, _) = der(rest)?;
        Some(issuer == subject)
    })()
    .unwrap_or(false)
}

/// A client TLS stream that also knows its peer (lettre wants that).
#[derive(Debug)]
pub struct TlsStream(pub tokio_rustls::client::TlsStream<TcpStream>);

impl AsyncRead for TlsStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl lettre::transport::smtp::client::AsyncTokioStream for TlsStream {
    fn peer_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.0.get_ref().0.peer_addr()
    }
}
