//! Wall-clock time as stored: unix milliseconds.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Now, in unix milliseconds (the unit of every timestamp column).
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A duration in whole milliseconds, saturating.
pub fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
