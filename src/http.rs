//! The one HTTP stack: hyper's HTTP/1.1 client over the TCP and TLS of `net` (token requests, webhooks) with a deadline, a cap on the answer and no redirect followed, and hyper's HTTP/1.1 server with a cap on connections and on the time a request may take to arrive (`/metrics`, `/healthz`).

use crate::config::TokenUrl;
use crate::net;
use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

/// One POST: where, with what, and its limits.
#[derive(Debug, Clone, Copy)]
pub struct Post<'a> {
    /// Who asks (`mailbox support`, `webhook pager`): named in TLS errors.
    pub who: &'a str,
    pub url: &'a TokenUrl,
    /// Trust only this CA file's CAs (else the system's store).
    pub ca_file: Option<&'a Path>,
    pub content_type: &'a str,
    /// Further header fields (name, value).
    pub headers: &'a [(&'a str, &'a str)],
    pub body: &'a [u8],
    /// The whole exchange: connect, TLS, request, answer.
    pub timeout: Duration,
    /// The longest answer body read; a longer one is an error.
    pub max_answer: usize,
}

/// What the server answered: a redirect is an answer like any other (its
/// status is returned, never followed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub body: Bytes,
}

/// Why a request got no answer, in words for a log line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PostError {
    #[error("no answer within {} s", .0.as_secs())]
    Timeout(Duration),
    #[error("{0}")]
    Failed(String),
}

/// POSTs `p.body` to `p.url` (TLS with the project's one configuration
/// unless the URL is plain `http://`, which config allows only to loopback)
/// on a connection of its own, and reads the answer.
pub async fn post(p: Post<'_>) -> Result<Answer, PostError> {
    tokio::time::timeout(p.timeout, exchange(p))
        .await
        .map_err(|_| PostError::Timeout(p.timeout))?
        .map_err(PostError::Failed)
}

async fn exchange(p: Post<'_>) -> Result<Answer, String> {
    let url = p.url;
    let tcp = net::tcp(&url.host, url.port, p.timeout)
        .await
        .map_err(|e| format!("{e:#}"))?;
    let io: Box<dyn net::Stream> = if url.https {
        let peer = net::Peer {
            who: p.who,
            host: &url.host,
            port: url.port,
            ca_file: p.ca_file,
        };
        Box::new(
            net::tls(peer, tcp, p.timeout)
                .await
                .map_err(|e| format!("{e:#}"))?,
        )
    } else {
        Box::new(tcp)
    };
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| format!("HTTP: {e}"))?;
    // The connection is driven beside the request; it ends with it.
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    let host = if url.host.contains(':') {
        format!("[{}]:{}", url.host, url.port)
    } else {
        format!("{}:{}", url.host, url.port)
    };
    let mut req = Request::post(url.path.as_str())
        .header(hyper::header::HOST, host)
        .header(hyper::header::USER_AGENT, "ticketd")
        .header(hyper::header::CONTENT_TYPE, p.content_type);
    for (name, value) in p.headers {
        req = req.header(*name, *value);
    }
    let req = req
        .body(Full::new(Bytes::copy_from_slice(p.body)))
        .map_err(|e| format!("building the request: {e}"))?;
    let answered = sender.send_request(req).await;
    let result = match answered {
        Ok(res) => {
            let status = res.status().as_u16();
            match Limited::new(res.into_body(), p.max_answer).collect().await {
                Ok(b) => Ok(Answer {
                    status,
                    body: b.to_bytes(),
                }),
                Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                    Err(format!("the answer is longer than {} bytes", p.max_answer))
                }
                Err(e) => Err(format!("reading the answer: {}", chain(&*e))),
            }
        }
        Err(e) => Err(format!("HTTP: {}", chain(&e))),
    };
    driver.abort();
    result
}

/// An error with its causes, on one line.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let s = c.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cause = c.source();
    }
    out
}

/// The limits of a server.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections served at once; more wait in the listen backlog.
    pub connections: usize,
    /// How long a client may take to send its request head.
    pub request_head: Duration,
    /// The largest request head read.
    pub head_bytes: usize,
}

/// A body of text as hyper sends it.
pub type Body = Full<Bytes>;

/// A plain answer with its content type.
pub fn answer(status: u16, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::OK);
    if let Ok(v) = hyper::header::HeaderValue::from_str(content_type) {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

/// Binds `addr` (`what` names it in the error: `[metrics] listen`) and
/// serves each request with `handle` until `cancel`, one request per
/// connection, at most `limits.connections` connections at once.
pub async fn serve<H, F>(
    what: &str,
    addr: SocketAddr,
    limits: Limits,
    handle: H,
    cancel: CancellationToken,
) -> Result<tokio::task::JoinHandle<()>>
where
    H: Fn(Request<Incoming>) -> F + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("{what} = {addr}: cannot listen"))?;
    info!(%addr, "{what}: listening");
    let handle = Arc::new(handle);
    let permits = Arc::new(tokio::sync::Semaphore::new(limits.connections));
    Ok(tokio::spawn(async move {
        loop {
            let permit = tokio::select! {
                p = permits.clone().acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => break,
                },
                _ = cancel.cancelled() => break,
            };
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = cancel.cancelled() => break,
            };
            let (conn, peer) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors, mostly: wait, then go on.
                    warn!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let handle = handle.clone();
            let cancel = cancel.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let f = handle(req);
                    async move { Ok::<_, std::convert::Infallible>(f.await) }
                });
                let served = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(limits.request_head)
                    .max_buf_size(limits.head_bytes.max(8192))
                    .keep_alive(false)
                    .serve_connection(TokioIo::new(conn), service);
                tokio::select! {
                    r = served => if let Err(e) = r {
                        debug!(%peer, "HTTP connection: {e}");
                    },
                    _ = cancel.cancelled() => {}
                }
                drop(permit);
            });
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A loopback server answering each connection with the next of
    /// `answers`, written as is, after reading the request head and body.
    async fn server(answers: Vec<&'static str>) -> TokenUrl {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move {
            for a in answers {
                let (mut c, _) = l.accept().await.unwrap();
                let mut got = Vec::new();
                let mut buf = [0u8; 1024];
                while !got.ends_with(b"body") {
                    match c.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                c.write_all(a.as_bytes()).await.unwrap();
                let _ = c.shutdown().await;
            }
        });
        TokenUrl::parse(&format!("http://127.0.0.1:{port}/t")).unwrap()
    }

    fn post_to(url: &TokenUrl) -> Post<'_> {
        Post {
            who: "test",
            url,
            ca_file: None,
            content_type: "text/plain",
            headers: &[],
            body: b"body",
            timeout: Duration::from_secs(5),
            max_answer: 16,
        }
    }

    #[tokio::test]
    async fn answers_with_length_chunks_or_close_come_whole_and_redirects_are_not_followed() {
        let url = server(vec![
            "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nabcd",
            "HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n",
            "HTTP/1.0 200 OK\r\n\r\n{}",
            "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:1/elsewhere\r\nContent-Length: 0\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 17\r\n\r\n01234567890123456",
            "SSH-2.0-OpenSSH\r\n\r\n",
        ])
        .await;
        let answer = |status, body: &'static [u8]| Answer {
            status,
            body: Bytes::from_static(body),
        };
        assert_eq!(post(post_to(&url)).await, Ok(answer(200, b"abcd")));
        assert_eq!(post(post_to(&url)).await, Ok(answer(400, b"abcde")));
        assert_eq!(post(post_to(&url)).await, Ok(answer(200, b"{}")));
        assert_eq!(post(post_to(&url)).await, Ok(answer(302, b"")));
        assert_eq!(
            post(post_to(&url)).await,
            Err(PostError::Failed(
                "the answer is longer than 16 bytes".into()
            ))
        );
        let e = post(post_to(&url)).await.unwrap_err().to_string();
        assert!(e.starts_with("HTTP: "), "{e}");
    }

    #[tokio::test]
    async fn a_server_that_never_answers_is_given_up_at_the_deadline() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = TokenUrl::parse(&format!("http://{}/t", l.local_addr().unwrap())).unwrap();
        let mut p = post_to(&url);
        p.timeout = Duration::from_millis(300);
        assert_eq!(
            post(p).await,
            Err(PostError::Timeout(Duration::from_millis(300)))
        );
        drop(l);
    }
}
