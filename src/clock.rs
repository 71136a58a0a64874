//! The one place that reads the wall clock; everything else is handed a [`Clock`].

use chrono::{DateTime, Utc};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// A source of the current time. Production uses [`SystemClock`]; tests and
/// `explain --at` use [`FixedClock`].
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> DateTime<Utc>;

    /// A monotonic instant, for measuring how long work took (the processing
    /// budget); never goes back when the wall clock is set.
    fn monotonic(&self) -> Instant {
        Instant::now()
    }
}

/// The real wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that says what it is told; cheap to clone and share between tasks.
/// Its monotonic instant moves with it: [`FixedClock::advance`] moves both.
#[derive(Debug, Clone)]
pub struct FixedClock(Arc<Mutex<DateTime<Utc>>>, Instant, DateTime<Utc>);

impl FixedClock {
    pub fn new(at: DateTime<Utc>) -> Self {
        FixedClock(Arc::new(Mutex::new(at)), Instant::now(), at)
    }

    pub fn set(&self, at: DateTime<Utc>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = at;
    }

    pub fn advance(&self, by: chrono::Duration) {
        let mut t = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *t += by;
    }
}

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn monotonic(&self) -> Instant {
        let moved = (self.now() - self.2).to_std().unwrap_or_default();
        self.1 + moved
    }
}

pub type SharedClock = Arc<dyn Clock>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_clock_moves_only_when_told() {
        let t0 = DateTime::parse_from_rfc3339("2026-03-08T09:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let c = FixedClock::new(t0);
        assert_eq!(c.now(), t0);
        let m0 = c.monotonic();
        assert_eq!(
            c.monotonic(),
            m0,
            "a fixed clock's instant stands still too"
        );
        c.advance(chrono::Duration::minutes(5));
        assert_eq!(c.now(), t0 + chrono::Duration::minutes(5));
        assert_eq!(c.monotonic() - m0, std::time::Duration::from_secs(300));
    }
}
