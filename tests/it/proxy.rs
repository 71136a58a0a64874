//! A TCP proxy for the fault suite: sits between ticketd and Dovecot or the SMTP server and, on a pattern in the stream, holds or drops the connection or signals the test; it can also answer chosen RCPTs with 550, hang every connection, or stop listening.

use crate::harness::free_port;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Which side wrote the bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// ticketd.
    Client,
    /// Dovecot or the SMTP server.
    Server,
}

/// What a trap does to the connection it fires on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Forwards what came before the pattern, then nothing more either way.
    Hold,
    /// Forwards what came before the pattern, then closes both sides.
    Drop,
    /// Forwards everything; only tells the test.
    Notify,
}

/// Fires when `pattern` passes from `from`: at once, or (with `then`) on
/// the next bytes the other `then` side writes (the server's answer to a
/// command). The first `skip` matches pass; it fires `times` times.
#[derive(Clone, Debug)]
pub struct Trap {
    pub from: Side,
    pub pattern: &'static [u8],
    pub then: Option<Side>,
    pub action: Action,
    pub skip: usize,
    pub times: usize,
}

impl Trap {
    pub fn new(from: Side, pattern: &'static [u8], action: Action) -> Trap {
        Trap {
            from,
            pattern,
            then: None,
            action,
            skip: 0,
            times: 1,
        }
    }

    /// Acts on the first bytes `side` writes after the match instead.
    pub fn then(mut self, side: Side) -> Trap {
        self.then = Some(side);
        self
    }

    pub fn skip(mut self, n: usize) -> Trap {
        self.skip = n;
        self
    }

    pub fn times(mut self, n: usize) -> Trap {
        self.times = n;
        self
    }
}

#[derive(Clone, Debug)]
pub enum Mode {
    Pass,
    Trap(Trap),
    /// Accepts and never answers nor connects upstream.
    Hang,
    /// Answers `RCPT TO:` lines containing this text with a 550 itself.
    RejectRcpt(&'static str),
}

struct State {
    mode: Mutex<Mode>,
    /// Matches of the current trap (skipped ones included).
    matches: AtomicUsize,
    fired: AtomicUsize,
    rejected: AtomicUsize,
    on_fire: Notify,
    /// Every open connection's token: cancelled to end it.
    open: Mutex<Vec<CancellationToken>>,
}

pub struct Proxy {
    pub port: u16,
    upstream: u16,
    state: Arc<State>,
    accept: Option<JoinHandle<()>>,
}

impl Proxy {
    pub async fn start(upstream: u16) -> Proxy {
        let mut p = Proxy {
            port: free_port(),
            upstream,
            state: Arc::new(State {
                mode: Mutex::new(Mode::Pass),
                matches: AtomicUsize::new(0),
                fired: AtomicUsize::new(0),
                rejected: AtomicUsize::new(0),
                on_fire: Notify::new(),
                open: Mutex::new(Vec::new()),
            }),
            accept: None,
        };
        p.listen().await;
        p
    }

    /// Listens (again) on its port.
    pub async fn listen(&mut self) {
        if self.accept.is_some() {
            return;
        }
        let listener = TcpListener::bind(("127.0.0.1", self.port))
            .await
            .expect("bind the proxy's port");
        let (state, upstream) = (self.state.clone(), self.upstream);
        self.accept = Some(tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let _ = client.set_nodelay(true);
                tokio::spawn(serve(client, upstream, state.clone()));
            }
        }));
    }

    /// Stops listening: connections are refused (open ones stay).
    pub async fn close(&mut self) {
        if let Some(t) = self.accept.take() {
            t.abort();
            let _ = t.await;
        }
    }

    /// Sets what the proxy does from now on, for new and open connections.
    pub fn set(&self, mode: Mode) {
        self.state.matches.store(0, Ordering::SeqCst);
        self.state.fired.store(0, Ordering::SeqCst);
        *self.state.mode.lock().unwrap() = mode;
    }

    /// Back to passing everything, and every open connection closed (the
    /// held and hung ones too).
    pub fn reset(&self) {
        self.set(Mode::Pass);
        self.reset_connections();
    }

    /// Closes every open connection.
    pub fn reset_connections(&self) {
        for t in self.state.open.lock().unwrap().drain(..) {
            t.cancel();
        }
    }

    pub fn fired(&self) -> usize {
        self.state.fired.load(Ordering::SeqCst)
    }

    pub fn rejected(&self) -> usize {
        self.state.rejected.load(Ordering::SeqCst)
    }

    /// Waits until the trap has fired at least `n` times, or `deadline`
    /// passes; true when it fired.
    pub async fn wait_fired(&self, n: usize, deadline: std::time::Duration) -> bool {
        let until = tokio::time::Instant::now() + deadline;
        loop {
            let woken = self.state.on_fire.notified();
            if self.fired() >= n {
                return true;
            }
            if tokio::time::timeout_at(until, woken).await.is_err() {
                return self.fired() >= n;
            }
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(t) = self.accept.take() {
            t.abort();
        }
        self.reset();
    }
}

async fn serve(client: TcpStream, upstream: u16, state: Arc<State>) {
    let token = CancellationToken::new();
    state.open.lock().unwrap().push(token.clone());
    if matches!(*state.mode.lock().unwrap(), Mode::Hang) {
        token.cancelled().await;
        return;
    }
    let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)).await else {
        return;
    };
    let _ = server.set_nodelay(true);
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    let (cw, sw) = (
        Arc::new(tokio::sync::Mutex::new(cw)),
        Arc::new(tokio::sync::Mutex::new(sw)),
    );
    let conn = Arc::new(Conn {
        token: token.clone(),
        armed: Mutex::new(None),
        held: std::sync::atomic::AtomicBool::new(false),
    });
    let up = tokio::spawn(pump(
        Side::Client,
        cr,
        sw.clone(),
        cw.clone(),
        conn.clone(),
        state.clone(),
    ));
    let down = tokio::spawn(pump(Side::Server, sr, cw, sw, conn, state));
    let _ = tokio::join!(up, down);
}

struct Conn {
    token: CancellationToken,
    /// A fired `then` trap: the side whose next bytes it acts on.
    armed: Mutex<Option<(Side, Action)>>,
    held: std::sync::atomic::AtomicBool,
}

/// Copies what `from` writes to `to`, applying the proxy's mode.
async fn pump(
    from: Side,
    mut r: OwnedReadHalf,
    to: Arc<tokio::sync::Mutex<OwnedWriteHalf>>,
    back: Arc<tokio::sync::Mutex<OwnedWriteHalf>>,
    conn: Arc<Conn>,
    state: Arc<State>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut tail: Vec<u8> = Vec::new();
    loop {
        let k = tokio::select! {
            _ = conn.token.cancelled() => return,
            k = r.read(&mut buf) => k.unwrap_or(0),
        };
        if k == 0 {
            conn.token.cancel();
            return;
        }
        if conn.held.load(Ordering::SeqCst) {
            conn.token.cancelled().await;
            return;
        }
        let chunk = &buf[..k];
        // (bytes to forward, what to do after)
        let mut act: Option<Action> = None;
        let mut forward = k;
        let armed = *conn.armed.lock().unwrap();
        if let Some((side, action)) = armed
            && side == from
        {
            *conn.armed.lock().unwrap() = None;
            act = Some(action);
            if action != Action::Notify {
                forward = 0;
            }
        } else {
            let mode = state.mode.lock().unwrap().clone();
            match mode {
                Mode::Trap(t) if t.from == from => {
                    let mut seen = std::mem::take(&mut tail);
                    let before = seen.len();
                    seen.extend_from_slice(chunk);
                    if let Some(at) = find(&seen, t.pattern) {
                        let n = state.matches.fetch_add(1, Ordering::SeqCst);
                        if n >= t.skip && state.fired.load(Ordering::SeqCst) < t.times {
                            match t.then {
                                Some(side) => *conn.armed.lock().unwrap() = Some((side, t.action)),
                                None => {
                                    act = Some(t.action);
                                    if t.action != Action::Notify {
                                        forward = at.saturating_sub(before);
                                    }
                                }
                            }
                        }
                    }
                    let keep = seen.len().saturating_sub(t.pattern.len().saturating_sub(1));
                    tail = seen.split_off(keep);
                }
                Mode::RejectRcpt(who)
                    if from == Side::Client
                        && chunk.starts_with(b"RCPT TO:")
                        && find(chunk, who.as_bytes()).is_some() =>
                {
                    state.rejected.fetch_add(1, Ordering::SeqCst);
                    let answer = b"550 5.1.1 Recipient address rejected: no such user\r\n";
                    if back.lock().await.write_all(answer).await.is_err() {
                        return;
                    }
                    continue;
                }
                _ => {}
            }
        }
        if forward > 0 && to.lock().await.write_all(&chunk[..forward]).await.is_err() {
            conn.token.cancel();
            return;
        }
        if let Some(action) = act {
            state.fired.fetch_add(1, Ordering::SeqCst);
            state.on_fire.notify_waiters();
            match action {
                Action::Notify => {}
                Action::Drop => {
                    conn.token.cancel();
                    return;
                }
                Action::Hold => {
                    conn.held.store(true, Ordering::SeqCst);
                    conn.token.cancelled().await;
                    return;
                }
            }
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
