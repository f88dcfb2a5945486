//! The gateway's clock: a wall clock that tests can jump, and a scheduling clock they can compress.
//!
//! Two readings are kept apart on purpose. [`SimClock::now_ms`] is the gateway's wall clock
//! (epoch ms): it stamps `trans_end_time` and anchors the ±15 min timestamp window, so it only
//! moves by explicit jumps (`advance_seconds`); if it ran `time_scale` times faster, every real
//! client's timestamps would fall out of the window within seconds. [`SimClock::virtual_ms`] drives
//! every delay the gateway owns (QR expiry, PIN entry, refund settlement, notification retries): it
//! runs `time_scale` times faster than real time and jumps with the wall clock.

use parking_lot::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Largest accepted time scale: beyond it, delays round to nothing anyway.
pub const MAX_TIME_SCALE: u32 = 100_000;

#[derive(Debug, Clone, Copy)]
struct ClockState {
    scale: u32,
    offset_ms: i64,
    anchor_real: Instant,
    anchor_virtual_ms: i64,
}

/// The simulator's clock; see the module docs for its two readings.
#[derive(Debug)]
pub struct SimClock {
    state: Mutex<ClockState>,
}

fn system_now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl SimClock {
    /// A clock on real time, with delays compressed `scale` times.
    pub fn new(scale: u32) -> Self {
        Self {
            state: Mutex::new(ClockState {
                scale: scale.clamp(1, MAX_TIME_SCALE),
                offset_ms: 0,
                anchor_real: Instant::now(),
                // Anchored on the epoch so that deadlines persisted in a state file keep their
                // meaning across restarts (at scale 1).
                anchor_virtual_ms: system_now_ms(),
            }),
        }
    }

    /// The gateway's wall clock, epoch milliseconds.
    pub fn now_ms(&self) -> i64 {
        system_now_ms().saturating_add(self.state.lock().offset_ms)
    }

    /// The scheduling clock, milliseconds; deadlines of gateway-side delays are in this unit.
    pub fn virtual_ms(&self) -> i64 {
        let s = *self.state.lock();
        Self::virtual_at(&s, Instant::now())
    }

    fn virtual_at(s: &ClockState, at: Instant) -> i64 {
        let real = i64::try_from(at.saturating_duration_since(s.anchor_real).as_millis())
            .unwrap_or(i64::MAX);
        s.anchor_virtual_ms
            .saturating_add(real.saturating_mul(i64::from(s.scale)))
    }

    /// Current compression factor.
    pub fn scale(&self) -> u32 {
        self.state.lock().scale
    }

    /// Offset of the wall clock from real time, ms.
    pub fn offset_ms(&self) -> i64 {
        self.state.lock().offset_ms
    }

    /// Changes the compression factor from now on (clamped to 1..=[`MAX_TIME_SCALE`]).
    pub fn set_scale(&self, scale: u32) {
        let mut s = self.state.lock();
        let now = Instant::now();
        s.anchor_virtual_ms = Self::virtual_at(&s, now);
        s.anchor_real = now;
        s.scale = scale.clamp(1, MAX_TIME_SCALE);
    }

    /// Jumps both readings forward (or back, for a negative value) by `seconds`.
    pub fn advance(&self, seconds: i64) {
        let mut s = self.state.lock();
        let ms = seconds.saturating_mul(1000);
        s.offset_ms = s.offset_ms.saturating_add(ms);
        s.anchor_virtual_ms = s.anchor_virtual_ms.saturating_add(ms);
    }

    /// Real time left until the scheduling clock reaches `deadline_virtual_ms` at the current scale.
    pub fn real_until(&self, deadline_virtual_ms: i64) -> Duration {
        let s = *self.state.lock();
        let left = deadline_virtual_ms.saturating_sub(Self::virtual_at(&s, Instant::now()));
        if left <= 0 {
            return Duration::ZERO;
        }
        let real_ms =
            left.div_euclid(i64::from(s.scale)) + i64::from(left % i64::from(s.scale) != 0);
        Duration::from_millis(u64::try_from(real_ms).unwrap_or(u64::MAX))
    }
}

/// `YYYY-MM-DD HH:mm:ss` in UTC, CodePay's date-time format.
pub fn format_utc(epoch_ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(epoch_ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_compresses_delays_but_not_the_wall_clock() {
        let clock = SimClock::new(1);
        let wall = clock.now_ms();
        let deadline = clock.virtual_ms() + 10_000;
        assert!(clock.real_until(deadline) > Duration::from_millis(9_000));
        clock.set_scale(100);
        let left = clock.real_until(deadline);
        assert!(left <= Duration::from_millis(100), "{left:?}");
        assert!((clock.now_ms() - wall).abs() < 1_000);
    }

    #[test]
    fn advance_moves_both_readings() {
        let clock = SimClock::new(1);
        let wall = clock.now_ms();
        let deadline = clock.virtual_ms() + 60_000;
        clock.advance(61);
        assert_eq!(clock.real_until(deadline), Duration::ZERO);
        assert!(clock.now_ms() - wall >= 61_000);
        assert_eq!(clock.offset_ms(), 61_000);
    }

    #[test]
    fn utc_format_matches_codepay() {
        assert_eq!(format_utc(0), "1970-01-01 00:00:00");
        assert_eq!(format_utc(1_700_000_000_123), "2023-11-14 22:13:20");
    }
}
