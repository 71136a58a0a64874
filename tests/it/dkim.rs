//! DKIM key look-ups over real DNS: `dns_keys::DnsKeys` against the harness's DNS server on loopback (the configured address, the cache, the timeout).

use crate::harness::{DnsServer, dkim_sign, test_key_txt};
use std::sync::Arc;
use std::time::Duration;
use ticketd::clock::FixedClock;
use ticketd::dkim::{DkimVerdict, KeyResolver, LookupError, verify};
use ticketd::dns_keys::DnsKeys;

const KEY_NAME: &str = "sel._domainkey.vendor.test";

fn signed_mail() -> Vec<u8> {
    dkim_sign(
        b"From: Ana Staff <ana@vendor.test>\r\nTo: support@example.test\r\n\
          Subject: Re: [#42] pump\r\nMessage-ID: <r1@vendor.test>\r\n\r\n#close\r\nDone.\r\n",
        "vendor.test",
        "sel",
    )
}

fn fixed_clock() -> FixedClock {
    FixedClock::new(chrono::DateTime::from_timestamp(1_772_445_600, 0).expect("an instant"))
}

#[test]
fn dns_keys_verify_a_signed_mail_and_cache_the_key_for_its_ttl() {
    let txt = test_key_txt();
    let dns = DnsServer::start(&[(KEY_NAME, &txt)], 600);
    let clock = fixed_clock();
    let keys =
        DnsKeys::new(&[dns.addr], Duration::from_secs(5)).with_clock(Arc::new(clock.clone()));
    let raw = signed_mail();
    let pass = DkimVerdict::Pass {
        domain: "vendor.test".into(),
        selector: "sel".into(),
    };
    assert_eq!(verify(&raw, "vendor.test", &keys), pass);
    assert_eq!(verify(&raw, "vendor.test", &keys), pass);
    assert_eq!(dns.queries(), 1, "the second verification used the cache");
    clock.advance(chrono::Duration::seconds(601));
    assert_eq!(verify(&raw, "vendor.test", &keys), pass);
    assert_eq!(dns.queries(), 2, "an expired entry is asked again");
}

#[test]
fn dns_keys_cache_an_absent_record_and_verify_fails() {
    let dns = DnsServer::start(&[], 600);
    let keys =
        DnsKeys::new(&[dns.addr], Duration::from_secs(5)).with_clock(Arc::new(fixed_clock()));
    assert_eq!(keys.txt(KEY_NAME), Err(LookupError::NotFound));
    let got = verify(&signed_mail(), "vendor.test", &keys);
    let DkimVerdict::Fail { reason } = got else {
        panic!("{got:?}")
    };
    assert!(reason.contains("no key record"), "{reason}");
    assert_eq!(dns.queries(), 1, "the absence was cached");
}

#[test]
fn a_silent_dns_server_gives_not_checked_within_the_timeout() {
    let dns = DnsServer::silent();
    let timeout = Duration::from_millis(300);
    let keys = DnsKeys::new(&[dns.addr], timeout);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(verify(&signed_mail(), "vendor.test", &keys));
    });
    // The deadline is generous; what it proves is that the look-up ends.
    let got = rx
        .recv_timeout(timeout * 10)
        .expect("verify returned within the deadline");
    let DkimVerdict::NotChecked { reason } = got else {
        panic!("{got:?}")
    };
    assert!(reason.contains("timed out"), "{reason}");
    assert!(dns.queries() >= 1, "the configured server was asked");
}

#[test]
fn issue_20_class_8_a_timeout_keeps_its_domain_from_being_asked_for_a_minute() {
    let dns = DnsServer::silent();
    let clock = fixed_clock();
    let keys =
        DnsKeys::new(&[dns.addr], Duration::from_millis(200)).with_clock(Arc::new(clock.clone()));
    assert_eq!(keys.txt(KEY_NAME), Err(LookupError::Timeout));
    let asked = dns.queries();
    assert!(asked >= 1);
    // Another selector of the same domain, and the same one again: no
    // query leaves, the answer is at once.
    assert_eq!(
        keys.txt("other._domainkey.vendor.test"),
        Err(LookupError::RecentTimeout)
    );
    assert_eq!(keys.txt(KEY_NAME), Err(LookupError::RecentTimeout));
    let got = verify(&signed_mail(), "vendor.test", &keys);
    let DkimVerdict::NotChecked { reason } = got else {
        panic!("{got:?}")
    };
    assert!(reason.contains("not asked again yet"), "{reason}");
    assert_eq!(dns.queries(), asked, "nothing was asked within the minute");
    // Another domain is asked as usual.
    assert_eq!(
        keys.txt("sel._domainkey.other.test"),
        Err(LookupError::Timeout)
    );
    assert!(dns.queries() > asked);
    // A minute on, the domain is asked again.
    let asked = dns.queries();
    clock.advance(chrono::Duration::seconds(61));
    assert_eq!(keys.txt(KEY_NAME), Err(LookupError::Timeout));
    assert!(dns.queries() > asked, "asked again after the minute");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_keys_work_on_a_blocking_thread_of_the_daemons_runtime_and_drop_in_a_task() {
    let txt = test_key_txt();
    let dns = DnsServer::start(&[(KEY_NAME, &txt)], 600);
    let keys = Arc::new(DnsKeys::new(&[dns.addr], Duration::from_secs(5)));
    let on_thread = keys.clone();
    let got =
        tokio::task::spawn_blocking(move || verify(&signed_mail(), "vendor.test", &*on_thread))
            .await
            .expect("the blocking task");
    assert!(matches!(got, DkimVerdict::Pass { .. }), "{got:?}");
    // The last owner is an async task: dropping must not block or panic.
    drop(keys);
    assert_eq!(dns.queries(), 1);
}

#[tokio::test(flavor = "current_thread")]
async fn dns_keys_work_when_called_from_inside_a_runtime() {
    // A command run from `main` (`quarantine release`) reads mail on the
    // runtime's own thread: the look-up must not panic there.
    let txt = test_key_txt();
    let dns = DnsServer::start(&[(KEY_NAME, &txt)], 600);
    let keys = DnsKeys::new(&[dns.addr], Duration::from_secs(5));
    let got = verify(&signed_mail(), "vendor.test", &keys);
    assert!(matches!(got, DkimVerdict::Pass { .. }), "{got:?}");
    assert_eq!(dns.queries(), 1);
}
