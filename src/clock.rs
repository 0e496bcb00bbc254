//! The time the portal works with. Rules that depend on time (session timeouts, lockouts,
//! link expiry) read it from here so tests can move it forward instead of sleeping.

use std::sync::{Arc, Mutex};

use time::{Duration, OffsetDateTime};

#[derive(Clone, Default)]
pub struct Clock {
    /// `None`: the system clock. `Some`: a clock that tests set and advance.
    manual: Option<Arc<Mutex<OffsetDateTime>>>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self { manual: None }
    }

    /// A clock that stands still at `start` until advanced.
    pub fn manual(start: OffsetDateTime) -> Self {
        Self {
            manual: Some(Arc::new(Mutex::new(start))),
        }
    }

    pub fn now(&self) -> OffsetDateTime {
        match &self.manual {
            None => OffsetDateTime::now_utc(),
            Some(time) => *time.lock().expect("clock lock"),
        }
    }

    /// Moves a manual clock forward. The system clock cannot be moved.
    pub fn advance(&self, by: Duration) {
        let time = self
            .manual
            .as_ref()
            .expect("only a manual clock can be advanced");
        *time.lock().expect("clock lock") += by;
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Clock({})",
            if self.manual.is_some() {
                "manual"
            } else {
                "system"
            }
        )
    }
}
