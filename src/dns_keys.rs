//! DKIM key records from DNS: a resolver (hickory) on a small runtime of its own, made at the first look-up, with a timeout per look-up, a cache of answers and absences for their TTL, and a minute's memory of a domain whose look-up timed out.

use crate::clock::{SharedClock, SystemClock};
use crate::dkim::{KeyResolver, LookupError, normal_name};
use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::rr::RData;
use hickory_resolver::{Resolver, TokioResolver};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a key record (or its absence) is kept at most, whatever its TTL.
pub const MAX_CACHE_TTL: Duration = Duration::from_secs(3600);
/// How long an absence is kept when the answer gave no negative TTL.
const NEGATIVE_TTL: u32 = 300;
/// How many names the cache holds at most.
const CACHE_ENTRIES: usize = 1024;
/// How long a timed-out look-up keeps its domain from being asked again: a
/// hanging DNS costs one timeout a minute per signing domain, not one per
/// signature of every mail.
pub const TIMEOUT_MEMORY: Duration = Duration::from_secs(60);
/// The default timeout of one look-up.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

struct Cached {
    answer: Result<Vec<String>, LookupError>,
    until: Instant,
}

/// Key records from DNS servers: the given ones, or the system's
/// (`/etc/resolv.conf`) when none are given. Each look-up is bounded by the
/// timeout; answers and absences (NXDOMAIN, no TXT) are cached for their
/// TTL, at most [`MAX_CACHE_TTL`], for at most 1024 names; timeouts and
/// failures are not cached. [`KeyResolver::txt`] blocks: call it (and so
/// [`verify`]) on a blocking thread, never on an async worker.
pub struct DnsKeys {
    /// The resolver, or why there is none (every look-up fails with it),
    /// made at the first look-up: a daemon whose staff send no signed mail
    /// never reads the DNS configuration or starts the runtime.
    dns: std::sync::OnceLock<Result<Dns, String>>,
    nameservers: Vec<SocketAddr>,
    servers: String,
    timeout: Duration,
    clock: SharedClock,
    cache: parking_lot::Mutex<HashMap<String, Cached>>,
    /// Signing domains whose key look-up timed out, until when they are
    /// not asked again.
    timeouts: parking_lot::Mutex<HashMap<String, Instant>>,
}

/// The resolver and the small runtime of its own that its look-ups run on
/// (taken on drop and shut down without blocking, so dropping is safe
/// anywhere).
struct Dns {
    runtime: Option<tokio::runtime::Runtime>,
    resolver: TokioResolver,
}

impl Dns {
    fn new(nameservers: &[SocketAddr], timeout: Duration) -> Result<Dns, String> {
        let (config, mut opts) = if nameservers.is_empty() {
            hickory_resolver::system_conf::read_system_conf()
                .map_err(|e| format!("reading the system's DNS configuration: {e}"))?
        } else {
            let servers = nameservers
                .iter()
                .map(|addr| {
                    let connection = |mut c: ConnectionConfig| {
                        c.port = addr.port();
                        c
                    };
                    NameServerConfig::new(
                        addr.ip(),
                        true,
                        vec![
                            connection(ConnectionConfig::udp()),
                            connection(ConnectionConfig::tcp()),
                        ],
                    )
                })
                .collect();
            (
                ResolverConfig::from_name_servers(servers),
                ResolverOpts::default(),
            )
        };
        opts.timeout = timeout;
        opts.edns0 = true;
        // DnsKeys' own cache keeps answers (on the clock the daemon is given).
        opts.cache_size = 0;
        opts.use_hosts_file = ResolveHosts::Never;
        opts.ndots = 0;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("starting the DNS look-up runtime: {e}"))?;
        let resolver = {
            let _in = runtime.enter();
            Resolver::builder_with_config(config, TokioRuntimeProvider::default())
                .with_options(opts)
                .build()
                .map_err(|e| format!("building the DNS resolver: {e}"))?
        };
        Ok(Dns {
            runtime: Some(runtime),
            resolver,
        })
    }
}

impl Drop for Dns {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl std::fmt::Debug for DnsKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsKeys")
            .field("servers", &self.servers)
            .field("timeout", &self.timeout)
            .field("broken", &self.dns.get().and_then(|d| d.as_ref().err()))
            .field("cached", &self.cache.lock().len())
            .finish()
    }
}

impl DnsKeys {
    /// Asks `nameservers` (UDP, then TCP for a truncated answer), or the
    /// system's resolvers when the list is empty, waiting at most `timeout`
    /// for each look-up. Never fails: when the system's configuration cannot
    /// be read (or the resolver cannot be built), every look-up fails with
    /// that reason, so every key is "not checked" and says why.
    pub fn new(nameservers: &[SocketAddr], timeout: Duration) -> DnsKeys {
        let servers = if nameservers.is_empty() {
            "the system's resolvers".to_string()
        } else {
            let names: Vec<String> = nameservers.iter().map(|a| a.to_string()).collect();
            names.join(", ")
        };
        DnsKeys {
            dns: std::sync::OnceLock::new(),
            nameservers: nameservers.to_vec(),
            servers,
            timeout,
            clock: Arc::new(SystemClock),
            cache: parking_lot::Mutex::new(HashMap::new()),
            timeouts: parking_lot::Mutex::new(HashMap::new()),
        }
    }

    /// The cache's entries expire on `clock`'s monotonic time (tests move it).
    pub fn with_clock(mut self, clock: SharedClock) -> DnsKeys {
        self.clock = clock;
        self
    }

    /// One look-up, uncached: the answer and how long it may be kept
    /// (`None`: not at all).
    fn query(&self, name: &str) -> (Result<Vec<String>, LookupError>, Option<u32>) {
        let dns = match self
            .dns
            .get_or_init(|| Dns::new(&self.nameservers, self.timeout))
        {
            Ok(dns) => dns,
            Err(why) => return (Err(LookupError::Failed(why.clone())), None),
        };
        let Some(runtime) = dns.runtime.as_ref() else {
            return (Err(LookupError::Failed("resolver stopped".into())), None);
        };
        let fqdn = format!("{name}.");
        let ask = || {
            runtime.block_on(async {
                tokio::time::timeout(self.timeout, dns.resolver.txt_lookup(fqdn.as_str())).await
            })
        };
        // On a thread that drives a runtime already (an async task, a
        // command run from `main`), block_on would panic: ask from a thread
        // of its own.
        let answer = if tokio::runtime::Handle::try_current().is_ok() {
            match std::thread::scope(|s| s.spawn(ask).join()) {
                Ok(a) => a,
                Err(_) => {
                    return (
                        Err(LookupError::Failed("the DNS look-up thread failed".into())),
                        None,
                    );
                }
            }
        } else {
            ask()
        };
        match answer {
            Err(_elapsed) => (Err(LookupError::Timeout), None),
            Ok(Ok(lookup)) => {
                let mut texts = Vec::new();
                let mut ttl = u32::MAX;
                for record in lookup.answers() {
                    if let RData::TXT(txt) = &record.data {
                        let joined: Vec<u8> = txt.txt_data.iter().flatten().copied().collect();
                        texts.push(String::from_utf8_lossy(&joined).into_owned());
                        ttl = ttl.min(record.ttl);
                    }
                }
                if texts.is_empty() {
                    (Err(LookupError::NotFound), Some(NEGATIVE_TTL))
                } else {
                    (Ok(texts), Some(ttl))
                }
            }
            Ok(Err(NetError::Dns(DnsError::NoRecordsFound(none)))) => (
                Err(LookupError::NotFound),
                Some(none.negative_ttl.unwrap_or(NEGATIVE_TTL)),
            ),
            Ok(Err(NetError::Timeout)) => (Err(LookupError::Timeout), None),
            Ok(Err(e)) => (
                Err(LookupError::Failed(format!("asking {}: {e}", self.servers))),
                None,
            ),
        }
    }
}

impl KeyResolver for DnsKeys {
    fn txt(&self, name: &str) -> Result<Vec<String>, LookupError> {
        let name = normal_name(name);
        let now = self.clock.monotonic();
        if let Some(hit) = self.cache.lock().get(&name)
            && hit.until > now
        {
            return hit.answer.clone();
        }
        // The key's domain: `sel._domainkey.vendor.test` -> `vendor.test`.
        let domain = name
            .split_once("._domainkey.")
            .map_or(name.as_str(), |(_, d)| d)
            .to_string();
        if self
            .timeouts
            .lock()
            .get(&domain)
            .is_some_and(|until| *until > now)
        {
            return Err(LookupError::RecentTimeout);
        }
        // The look-up runs without the cache's lock held.
        let (answer, ttl) = self.query(&name);
        if answer == Err(LookupError::Timeout) {
            let mut timeouts = self.timeouts.lock();
            if timeouts.len() >= CACHE_ENTRIES {
                timeouts.retain(|_, until| *until > now);
            }
            if timeouts.len() < CACHE_ENTRIES {
                timeouts.insert(domain, now + TIMEOUT_MEMORY);
            }
        }
        if let Some(ttl) = ttl.filter(|t| *t > 0) {
            let keep = Duration::from_secs(u64::from(ttl)).min(MAX_CACHE_TTL);
            let mut cache = self.cache.lock();
            if cache.len() >= CACHE_ENTRIES {
                cache.retain(|_, c| c.until > now);
            }
            if cache.len() >= CACHE_ENTRIES
                && let Some(oldest) = cache
                    .iter()
                    .min_by_key(|(_, c)| c.until)
                    .map(|(k, _)| k.clone())
            {
                cache.remove(&oldest);
            }
            cache.insert(
                name,
                Cached {
                    answer: answer.clone(),
                    until: now + keep,
                },
            );
        }
        answer
    }
}
