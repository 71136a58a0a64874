//! A staff domain's outgoing server for the end-to-end tests: takes a mail client's SMTP on loopback, signs each mail with DKIM (`c=relaxed/simple`, From oversigned, as OpenDKIM signs) under the test key, and hands it on to the stack's Postfix.

use crate::harness::test_key_pem;
use lettre::AsyncTransport;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// The server: its port, and the task that serves until dropped.
pub struct Submission {
    pub port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Submission {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Submission {
    /// Signs for `domain` with selector `selector`, relaying to 127.0.0.1:`relay`.
    pub async fn start(domain: &str, selector: &str, relay: u16) -> Submission {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (domain, selector) = (domain.to_string(), selector.to_string());
        let task = tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let (domain, selector) = (domain.clone(), selector.clone());
                tokio::spawn(async move {
                    if let Err(e) = session(conn, &domain, &selector, relay).await {
                        eprintln!("submission: {e}");
                    }
                });
            }
        });
        Submission { port, task }
    }
}

/// One SMTP session: EHLO, MAIL, RCPT..., DATA (signed and relayed), QUIT.
async fn session(
    conn: tokio::net::TcpStream,
    domain: &str,
    selector: &str,
    relay: u16,
) -> std::io::Result<()> {
    let (read, mut write) = conn.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 submission.test ESMTP\r\n").await?;
    let (mut from, mut rcpts) = (String::new(), Vec::<String>::new());
    let address = |l: &str| {
        l.split_once('<')
            .and_then(|(_, r)| r.split_once('>'))
            .map(|(a, _)| a.to_string())
            .unwrap_or_default()
    };
    loop {
        let mut line = String::new();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" => b"250-submission.test\r\n250 8BITMIME\r\n",
            "HELO" | "NOOP" => b"250 ok\r\n",
            "RSET" => {
                (from, rcpts) = (String::new(), vec![]);
                b"250 ok\r\n"
            }
            "MAIL" => {
                from = address(&line);
                b"250 ok\r\n"
            }
            "RCPT" => {
                rcpts.push(address(&line));
                b"250 ok\r\n"
            }
            "DATA" => {
                write.write_all(b"354 go on\r\n").await?;
                let mut raw = Vec::new();
                loop {
                    let mut l = Vec::new();
                    if lines.read_until(b'\n', &mut l).await? == 0 {
                        return Ok(());
                    }
                    if l == b".\r\n" || l == b".\n" {
                        break;
                    }
                    let l = if l.starts_with(b"..") {
                        &l[1..]
                    } else {
                        &l[..]
                    };
                    raw.extend_from_slice(l);
                }
                let signed =
                    ticketd::dkim::sign_simple_body(&raw, domain, selector, &test_key_pem())
                        .map_err(std::io::Error::other)?;
                relay_to(relay, &from, &rcpts, &signed).await?;
                b"250 signed and relayed\r\n"
            }
            "QUIT" => {
                write.write_all(b"221 bye\r\n").await?;
                return Ok(());
            }
            _ => b"502 not here\r\n",
        };
        write.write_all(reply).await?;
    }
}

/// Hands `raw` to the SMTP server on 127.0.0.1:`port`.
async fn relay_to(port: u16, from: &str, rcpts: &[String], raw: &[u8]) -> std::io::Result<()> {
    let parse = |a: &str| a.parse::<lettre::Address>().map_err(std::io::Error::other);
    let to = rcpts
        .iter()
        .map(|r| parse(r))
        .collect::<Result<Vec<_>, _>>()?;
    let envelope =
        lettre::address::Envelope::new(Some(parse(from)?), to).map_err(std::io::Error::other)?;
    let smtp = lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(port)
        .build();
    smtp.send_raw(&envelope, raw)
        .await
        .map(|_| ())
        .map_err(std::io::Error::other)
}
