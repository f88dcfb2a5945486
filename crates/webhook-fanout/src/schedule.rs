//! The retry schedule, as data.
//!
//! `delays[i]` is the wait before attempt `i + 1`: the default `0s,5s,5m,30m,2h,5h,10h,14h,20h,24h`
//! makes ten attempts over about three days. Operators (and tests) replace it with
//! `PAYFAC_WEBHOOK_RETRY_SCHEDULE`, e.g. `1s,2s,4s`.
//!
//! Rules on top of the table, applied in this order by [`RetrySchedule::next_retry`]:
//! 1. the scheduled delay gets ±20 % jitter, so endpoints that failed together do not retry together;
//! 2. a throttling answer (429/502/503/504) or a timeout backs off at least [`RetrySchedule::throttle_floor`]:
//!    60 s for the default schedule, scaled by `total(schedule) / total(default)` for other schedules, so a
//!    compressed test schedule keeps its proportions instead of jumping to a minute;
//! 3. a `Retry-After` is honoured but kept within 1×–2× the delay from steps 1–2, so a receiver can
//!    slow us down a little but can neither make us hammer it nor park a delivery for days.

use crate::WebhookError;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// The default schedule, in seconds.
const DEFAULT_SECS: [u64; 10] = [
    0, 5, 300, 1_800, 7_200, 18_000, 36_000, 50_400, 72_000, 86_400,
];
/// Minimum back-off after throttling or a timeout, for the default schedule.
const THROTTLE_FLOOR_DEFAULT: Duration = Duration::from_secs(60);
/// A schedule longer than this is almost certainly a typo.
const MAX_ENTRIES: usize = 100;
/// Jitter bound, in permille of the scheduled delay.
pub const MAX_JITTER_PERMILLE: i32 = 200;

/// Random spread applied to one delay, in permille (−200 ..= 200 → ±20 %).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Jitter(i32);

impl Jitter {
    /// No spread (tests, and the scheduled value itself).
    pub const NONE: Jitter = Jitter(0);

    /// A spread of `permille`, clamped to ±20 %.
    pub fn new(permille: i32) -> Self {
        Jitter(permille.clamp(-MAX_JITTER_PERMILLE, MAX_JITTER_PERMILLE))
    }

    /// A uniformly random spread within ±20 %.
    pub fn random() -> Self {
        use rand::Rng;
        Jitter(rand::rng().random_range(-MAX_JITTER_PERMILLE..=MAX_JITTER_PERMILLE))
    }

    /// The spread in permille.
    pub fn permille(self) -> i32 {
        self.0
    }

    fn apply(self, d: Duration) -> Duration {
        let ms = d.as_millis();
        let factor = (1000 + self.0) as u128; // 800..=1200, never negative
        duration_from_millis(ms * factor / 1000)
    }
}

/// What the last failed attempt tells the schedule.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RetrySignal {
    /// The receiver was throttling or overloaded (429/502/503/504) or timed out.
    pub throttled: bool,
    /// The receiver's `Retry-After`, already turned into a delay from now.
    pub retry_after: Option<Duration>,
}

/// Ordered delays before each attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetrySchedule {
    delays: Vec<Duration>,
}

impl Default for RetrySchedule {
    fn default() -> Self {
        Self {
            delays: DEFAULT_SECS
                .iter()
                .map(|s| Duration::from_secs(*s))
                .collect(),
        }
    }
}

impl RetrySchedule {
    /// A schedule from explicit delays; at least one entry, at most 100.
    pub fn new(delays: Vec<Duration>) -> Result<Self, WebhookError> {
        let err = |reason| WebhookError::InvalidSchedule {
            input: format!("{delays:?}"),
            reason,
        };
        if delays.is_empty() {
            return Err(err("empty"));
        }
        if delays.len() > MAX_ENTRIES {
            return Err(err("more than 100 entries"));
        }
        Ok(Self { delays })
    }

    /// The delays, first attempt first.
    pub fn delays(&self) -> &[Duration] {
        &self.delays
    }

    /// How many attempts a delivery gets in all.
    pub fn max_attempts(&self) -> u32 {
        self.delays.len() as u32
    }

    /// Sum of all delays: roughly how long a delivery keeps being retried.
    pub fn total(&self) -> Duration {
        self.delays.iter().sum()
    }

    /// The wait before attempt `attempt` (1-based), without jitter; `None` past the last one.
    pub fn scheduled_delay(&self, attempt: u32) -> Option<Duration> {
        let index = usize::try_from(attempt.checked_sub(1)?).ok()?;
        self.delays.get(index).copied()
    }

    /// Least back-off after throttling or a timeout: 60 s scaled by this schedule's total over the
    /// default's total.
    pub fn throttle_floor(&self) -> Duration {
        let default_total: u128 = DEFAULT_SECS.iter().map(|s| u128::from(*s) * 1000).sum();
        let floor_ms =
            THROTTLE_FLOOR_DEFAULT.as_millis() * self.total().as_millis() / default_total;
        duration_from_millis(floor_ms)
    }

    /// The wait before the next attempt after `attempts_made` failed ones, or `None` when the
    /// schedule is exhausted and the delivery has failed for good.
    pub fn next_retry(
        &self,
        attempts_made: u32,
        signal: RetrySignal,
        jitter: Jitter,
    ) -> Option<Duration> {
        let base = self.scheduled_delay(attempts_made.checked_add(1)?)?;
        let mut delay = jitter.apply(base);
        if signal.throttled {
            delay = delay.max(self.throttle_floor());
        }
        if let Some(asked) = signal.retry_after {
            delay = asked.clamp(delay, delay.saturating_mul(2));
        }
        Some(delay)
    }
}

impl FromStr for RetrySchedule {
    type Err = WebhookError;

    /// Parses `1s,2s,4s`: comma-separated integers with a unit `ms`, `s`, `m`, `h` or `d`
    /// (a bare `0` is allowed).
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = |reason| WebhookError::InvalidSchedule {
            input: input.to_owned(),
            reason,
        };
        let delays = input
            .split(',')
            .map(|entry| parse_duration(entry.trim()).map_err(err))
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(delays).map_err(|e| match e {
            WebhookError::InvalidSchedule { reason, .. } => err(reason),
            other => other,
        })
    }
}

impl fmt::Display for RetrySchedule {
    /// The schedule in the syntax [`FromStr`] reads, with the largest exact unit per entry.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.delays.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(&format_duration(*d))?;
        }
        Ok(())
    }
}

const UNITS_MS: [(&str, u128); 5] = [
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

fn parse_duration(entry: &str) -> Result<Duration, &'static str> {
    if entry.is_empty() {
        return Err("empty entry");
    }
    if entry == "0" {
        return Ok(Duration::ZERO);
    }
    let digits_end = entry
        .find(|c: char| !c.is_ascii_digit())
        .ok_or("missing unit (ms, s, m, h or d)")?;
    let (number, unit) = entry.split_at(digits_end);
    if number.is_empty() {
        return Err("missing number");
    }
    let n: u128 = number.parse().map_err(|_| "number too large")?;
    let per = UNITS_MS
        .iter()
        .find(|(u, _)| *u == unit)
        .map(|(_, ms)| *ms)
        .ok_or("unknown unit (use ms, s, m, h or d)")?;
    let ms = n.checked_mul(per).ok_or("delay too large")?;
    u64::try_from(ms)
        .map(Duration::from_millis)
        .map_err(|_| "delay too large")
}

fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".to_owned();
    }
    UNITS_MS
        .iter()
        .find(|(_, per)| ms.is_multiple_of(*per))
        .map(|(u, per)| format!("{}{u}", ms / per))
        .unwrap_or_else(|| format!("{ms}ms"))
}

fn duration_from_millis(ms: u128) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    #[test]
    fn the_default_is_the_documented_ten_attempts() {
        let d = RetrySchedule::default();
        assert_eq!(d.to_string(), "0s,5s,5m,30m,2h,5h,10h,14h,20h,1d");
        assert_eq!(d.max_attempts(), 10);
        assert_eq!(d.throttle_floor(), s(60));
        assert_eq!(d, "0s,5s,5m,30m,2h,5h,10h,14h,20h,24h".parse().unwrap());
    }

    #[test]
    fn retries_follow_the_table_then_stop() {
        let d = RetrySchedule::default();
        let plain = RetrySignal::default();
        assert_eq!(d.next_retry(1, plain, Jitter::NONE), Some(s(5)));
        assert_eq!(d.next_retry(2, plain, Jitter::NONE), Some(s(300)));
        assert_eq!(d.next_retry(9, plain, Jitter::NONE), Some(s(86_400)));
        assert_eq!(d.next_retry(10, plain, Jitter::NONE), None);
        assert_eq!(d.next_retry(u32::MAX, plain, Jitter::NONE), None);
    }

    #[test]
    fn throttling_backs_off_at_least_a_minute_on_the_default_schedule() {
        let d = RetrySchedule::default();
        let throttled = RetrySignal {
            throttled: true,
            retry_after: None,
        };
        assert_eq!(d.next_retry(1, throttled, Jitter::NONE), Some(s(60)));
        // Later steps are already longer than the floor.
        assert_eq!(d.next_retry(2, throttled, Jitter::NONE), Some(s(300)));
    }

    #[test]
    fn the_throttle_floor_scales_with_a_compressed_schedule() {
        let fast: RetrySchedule = "1s,2s,4s".parse().unwrap();
        // 60 s × 7 s / 272 105 s ≈ 1.5 ms: a compressed schedule stays compressed.
        assert_eq!(fast.throttle_floor(), Duration::from_millis(1));
        let slow: RetrySchedule = "0s,5s,5m,30m,2h,5h,10h,14h,20h,24h,24h,24h,24h"
            .parse()
            .unwrap();
        assert!(slow.throttle_floor() > s(60));
    }

    #[test]
    fn retry_after_is_kept_within_one_to_two_times_the_schedule() {
        let d = RetrySchedule::default();
        let asked = |secs| RetrySignal {
            throttled: false,
            retry_after: Some(s(secs)),
        };
        assert_eq!(d.next_retry(2, asked(1), Jitter::NONE), Some(s(300)));
        assert_eq!(d.next_retry(2, asked(450), Jitter::NONE), Some(s(450)));
        assert_eq!(d.next_retry(2, asked(100_000), Jitter::NONE), Some(s(600)));
    }

    #[test]
    fn schedule_strings_accept_every_unit_and_refuse_junk() {
        let p: RetrySchedule = " 250ms, 1s ,2m,3h,1d,0".parse().unwrap();
        assert_eq!(
            p.delays(),
            &[
                Duration::from_millis(250),
                s(1),
                s(120),
                s(10_800),
                s(86_400),
                s(0)
            ]
        );
        for bad in [
            "",
            ",",
            "1s,",
            "5",
            "s",
            "1x",
            "-1s",
            "1.5s",
            "1 s",
            "99999999999999999999999d",
        ] {
            assert!(
                bad.parse::<RetrySchedule>().is_err(),
                "{bad:?} should be refused"
            );
        }
        let too_many = vec!["1s"; 101].join(",");
        assert!(too_many.parse::<RetrySchedule>().is_err());
    }

    fn schedule() -> impl Strategy<Value = RetrySchedule> {
        prop::collection::vec(0u64..10_000_000_000, 1..20).prop_map(|ms| {
            RetrySchedule::new(ms.into_iter().map(Duration::from_millis).collect()).unwrap()
        })
    }

    proptest! {
        #[test]
        fn display_parses_back_to_the_same_schedule(sched in schedule()) {
            prop_assert_eq!(sched.to_string().parse::<RetrySchedule>().unwrap(), sched);
        }

        #[test]
        fn parsing_never_panics(input in ".{0,64}") {
            let _ = input.parse::<RetrySchedule>();
        }

        #[test]
        fn jitter_stays_within_twenty_percent(sched in schedule(), n in 1u32..20, j in -1000i32..1000) {
            let plain = RetrySignal::default();
            if let Some(base) = sched.scheduled_delay(n + 1) {
                let got = sched.next_retry(n, plain, Jitter::new(j)).unwrap();
                // Delays are whole milliseconds: allow one for rounding.
                prop_assert!((got.as_millis() + 1) * 10 >= base.as_millis() * 8);
                prop_assert!(got.as_millis() * 10 <= base.as_millis() * 12 + 10);
            } else {
                prop_assert_eq!(sched.next_retry(n, plain, Jitter::new(j)), None);
            }
        }

        #[test]
        fn throttled_retries_never_come_before_the_floor(sched in schedule(), n in 1u32..20, j in -200i32..=200) {
            let sig = RetrySignal { throttled: true, retry_after: None };
            if let Some(got) = sched.next_retry(n, sig, Jitter::new(j)) {
                prop_assert!(got >= sched.throttle_floor());
            }
        }

        #[test]
        fn retry_after_lands_between_one_and_two_times_the_scheduled_delay(
            sched in schedule(), n in 1u32..20, j in -200i32..=200, throttled: bool,
            asked_ms in 0u64..20_000_000_000,
        ) {
            let without = RetrySignal { throttled, retry_after: None };
            let with = RetrySignal { throttled, retry_after: Some(Duration::from_millis(asked_ms)) };
            if let Some(sched_delay) = sched.next_retry(n, without, Jitter::new(j)) {
                let got = sched.next_retry(n, with, Jitter::new(j)).unwrap();
                prop_assert!(got >= sched_delay && got <= sched_delay * 2);
            }
        }

        #[test]
        fn random_jitter_is_always_within_bounds(_x in 0u8..50) {
            let j = Jitter::random().permille();
            prop_assert!((-MAX_JITTER_PERMILLE..=MAX_JITTER_PERMILLE).contains(&j));
        }
    }
}
