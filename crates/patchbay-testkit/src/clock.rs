//! A clock tests move: real time plus an offset that only grows, so expiry, refresh margins,
//! leases and schedules are reached by [`TestClock::advance`] instead of sleeping or editing
//! timestamps in the database.

use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use patchbay_engine::Clock;

#[derive(Debug, Default)]
pub struct TestClock {
    offset: Mutex<chrono::Duration>,
}

impl TestClock {
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves every later reading `by` forward.
    pub fn advance(&self, by: Duration) {
        let by = chrono::Duration::from_std(by).expect("a test's span fits");
        let mut offset = self.offset.lock().unwrap_or_else(|e| e.into_inner());
        *offset += by;
    }

    /// How far the clock has been moved.
    pub fn offset(&self) -> chrono::Duration {
        *self.offset.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Clock for TestClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.offset()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advancing_moves_now_forward_and_only_forward() {
        let c = TestClock::new();
        let before = c.now();
        c.advance(Duration::from_secs(3600));
        let after = c.now();
        assert!(after - before >= chrono::Duration::seconds(3600));
        assert!(after - before < chrono::Duration::seconds(3660));
        assert_eq!(c.offset(), chrono::Duration::seconds(3600));
    }
}
