//! The time every rule that depends on time reads: billing periods, grace
//! periods, the once-a-day retry of a declined top-up, the month a cap
//! counts. The server reads the system's clock; tests move a clock of their
//! own through a simulated year.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

/// The system's clock, or one set by hand.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    set: Option<Arc<Mutex<DateTime<Utc>>>>,
}

impl Clock {
    /// The system's clock.
    pub fn system() -> Clock {
        Clock::default()
    }

    /// A clock that stands at `at` until moved; its copies move with it.
    pub fn at(at: DateTime<Utc>) -> Clock {
        Clock {
            set: Some(Arc::new(Mutex::new(at))),
        }
    }

    /// The time now.
    pub fn now(&self) -> DateTime<Utc> {
        match &self.set {
            None => Utc::now(),
            Some(set) => *set.lock().unwrap_or_else(|p| p.into_inner()),
        }
    }

    /// Moves a set clock to `at`; the system's clock cannot be moved.
    pub fn set(&self, at: DateTime<Utc>) {
        if let Some(set) = &self.set {
            *set.lock().unwrap_or_else(|p| p.into_inner()) = at;
        }
    }

    /// Moves a set clock on by `by`.
    pub fn advance(&self, by: chrono::Duration) {
        let now = self.now();
        self.set(now + by);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_clock_moves_only_when_told_and_its_copies_move_with_it() {
        let start = DateTime::parse_from_rfc3339("2001-01-31T10:00:00Z")
            .expect("time")
            .with_timezone(&Utc);
        let clock = Clock::at(start);
        let copy = clock.clone();
        assert_eq!(clock.now(), start);
        copy.advance(chrono::Duration::days(1));
        assert_eq!(clock.now(), start + chrono::Duration::days(1));
        let system = Clock::system();
        system.set(start);
        assert!(system.now() > start);
    }
}
