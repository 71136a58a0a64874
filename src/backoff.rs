//! Capped exponential backoff with jitter, shared by the mailbox watchers and the outbox.

use std::time::Duration;

/// Delay before attempt `attempt + 1` (0-based count of failures so far):
/// `base * 2^attempt`, capped at `cap`, with up to 25% random jitter subtracted
/// so that many clients do not retry in step.
pub fn delay(attempt: u32, base: Duration, cap: Duration) -> Duration {
    let exp = base.saturating_mul(1u32 << attempt.min(20));
    let capped = exp.min(cap);
    let jitter = capped.mul_f64(fastrand::f64() * 0.25);
    capped.saturating_sub(jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_then_caps_and_never_exceeds_cap() {
        let base = Duration::from_millis(100);
        let cap = Duration::from_secs(60);
        let d0 = delay(0, base, cap);
        assert!(d0 <= base && d0 >= base.mul_f64(0.75));
        let d5 = delay(5, base, cap);
        assert!(d5 >= Duration::from_millis(2400) && d5 <= Duration::from_millis(3200));
        for a in [10, 20, 31, 400] {
            let d = delay(a, base, cap);
            assert!(d <= cap && d >= cap.mul_f64(0.75), "{a}: {d:?}");
        }
    }
}
