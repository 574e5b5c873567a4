//! Flood control: three token buckets per client. Plain logic, no I/O, no locks;
//! time is passed in, so the tests need no clock.
//!
//! Each reader thread owns one [`FloodGuard`] for its client and asks it
//! about every line before doing anything with the line. Limiting in the
//! reader, before the manager, means a flooding client costs the server one
//! short `! slow down` reply per line instead of a fan-out to a whole room.

use std::fmt;
use std::time::{Duration, Instant};

/// `--rate-limit N/SECS`: at most `lines` lines per `per`, with bursts of up
/// to `lines` at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    pub lines: u32,
    pub per: Duration,
}

impl RateLimit {
    /// Parses `N/SECS` (`20/10`).
    pub(crate) fn parse(text: &str) -> Result<RateLimit, String> {
        let parsed = text.split_once('/').and_then(|(lines, secs)| {
            Some((lines.parse::<u32>().ok()?, secs.parse::<u64>().ok()?))
        });
        match parsed {
            Some((lines @ 1..=1_000_000, secs @ 1..=86_400)) => Ok(RateLimit {
                lines,
                per: Duration::from_secs(secs),
            }),
            _ => Err(format!(
                "expected N/SECS such as 20/10 (N from 1 to 1000000, SECS from 1 to 86400), or off; got {text:?}"
            )),
        }
    }
}

impl RateLimit {
    /// The limit on lists, which each client has beside this one.
    pub(crate) fn queries(self) -> QueryLimit {
        QueryLimit(self)
    }
}

/// `100 lists per 10 s`, as clients are told.
pub(crate) struct QueryLimit(RateLimit);

impl fmt::Display for QueryLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let RateLimit { lines, per } = self.0;
        let lists = lines.saturating_mul(QUERIES_PER_LINE);
        write!(f, "{lists} lists per {} s", per.as_secs())
    }
}

impl fmt::Display for RateLimit {
    /// `20 lines per 10 s`, as clients are told.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} lines per {} s", self.lines, self.per.as_secs())
    }
}

/// Refused lines a client may send, as a multiple of the limit, before it is
/// disconnected: with `20/10`, a burst of 100 lines over the limit, or a
/// steady stream of six times the limit.
pub(crate) const FLOOD_TOLERANCE: u32 = 5;

/// The classic token bucket: holds up to `capacity` tokens, gains them back
/// at a steady rate, and each line (or connection) takes one.
#[derive(Clone, Debug)]
pub(crate) struct TokenBucket {
    capacity: f64,
    tokens: f64,
    per_second: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket of `capacity`, refilled at `capacity` per `per`.
    pub(crate) fn full(capacity: u32, per: Duration, now: Instant) -> Self {
        TokenBucket {
            capacity: f64::from(capacity),
            tokens: f64::from(capacity),
            per_second: f64::from(capacity) / per.as_secs_f64(),
            last: now,
        }
    }

    pub(crate) fn try_take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.capacity);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

impl TokenBucket {
    /// Whether the bucket would be full at `now`: its owner has been quiet
    /// long enough to be forgotten.
    pub(crate) fn is_full(&self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens + elapsed * self.per_second >= self.capacity
    }
}

/// What to do with one line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Within the limit: handle it.
    Allow,
    /// Over the limit: drop it and tell the sender to slow down.
    SlowDown,
    /// Over the limit, and far past the tolerance: disconnect.
    Disconnect,
}

/// One client's flood control: a bucket for its lines, a second one for the
/// lists it asks for (`/users`, `/rooms`, `/who`: a browser's page asks for
/// them whenever someone comes or goes, so they must not use up what its
/// person may say), and a third for the lines refused by those, which is
/// what tells a fast typist (a few refusals) from a flood (refusals by the
/// hundred).
#[derive(Clone, Debug)]
pub(crate) struct FloodGuard {
    limit: RateLimit,
    lines: TokenBucket,
    queries: TokenBucket,
    refusals: TokenBucket,
}

/// Lists a client may ask for, as a multiple of the chat limit.
pub(crate) const QUERIES_PER_LINE: u32 = 5;

impl FloodGuard {
    pub(crate) fn new(limit: RateLimit, now: Instant) -> Self {
        FloodGuard {
            limit,
            lines: TokenBucket::full(limit.lines, limit.per, now),
            queries: TokenBucket::full(
                limit.lines.saturating_mul(QUERIES_PER_LINE),
                limit.per,
                now,
            ),
            refusals: TokenBucket::full(
                limit.lines.saturating_mul(FLOOD_TOLERANCE),
                limit.per,
                now,
            ),
        }
    }

    pub(crate) fn limit(&self) -> RateLimit {
        self.limit
    }

    /// Asks about one line arriving at `now`; `query` if it only asks for
    /// a list.
    pub(crate) fn check(&mut self, now: Instant, query: bool) -> Verdict {
        let bucket = if query {
            &mut self.queries
        } else {
            &mut self.lines
        };
        if bucket.try_take(now) {
            Verdict::Allow
        } else if self.refusals.try_take(now) {
            Verdict::SlowDown
        } else {
            Verdict::Disconnect
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(lines: u32, secs: u64) -> RateLimit {
        RateLimit {
            lines,
            per: Duration::from_secs(secs),
        }
    }

    #[test]
    fn parses_n_per_secs() {
        assert_eq!(RateLimit::parse("20/10"), Ok(limit(20, 10)));
        assert!(RateLimit::parse("20").is_err());
        assert!(RateLimit::parse("0/10").is_err());
        assert!(RateLimit::parse("5/0").is_err());
        assert!(RateLimit::parse("a/b").is_err());
        assert_eq!(limit(20, 10).to_string(), "20 lines per 10 s");
    }

    #[test]
    fn a_burst_up_to_the_limit_passes_then_the_next_line_is_refused() {
        let start = Instant::now();
        let mut guard = FloodGuard::new(limit(3, 10), start);
        for _ in 0..3 {
            assert_eq!(guard.check(start, false), Verdict::Allow);
        }
        assert_eq!(guard.check(start, false), Verdict::SlowDown);
    }

    #[test]
    fn tokens_come_back_at_the_steady_rate() {
        let start = Instant::now();
        let mut guard = FloodGuard::new(limit(2, 10), start);
        guard.check(start, false);
        guard.check(start, false);
        assert_eq!(guard.check(start, false), Verdict::SlowDown);
        // One line per 5 s comes back.
        assert_eq!(
            guard.check(start + Duration::from_secs(5), false),
            Verdict::Allow
        );
        assert_eq!(
            guard.check(start + Duration::from_secs(5), false),
            Verdict::SlowDown
        );
        // Never more than the burst, however long the pause.
        let later = start + Duration::from_secs(3600);
        assert_eq!(guard.check(later, false), Verdict::Allow);
        assert_eq!(guard.check(later, false), Verdict::Allow);
        assert_eq!(guard.check(later, false), Verdict::SlowDown);
    }

    #[test]
    fn lists_have_a_bucket_of_their_own() {
        let start = Instant::now();
        let mut guard = FloodGuard::new(limit(2, 10), start);
        // A page asking for lists whenever someone comes or goes...
        for n in 0..2 * QUERIES_PER_LINE {
            assert_eq!(guard.check(start, true), Verdict::Allow, "list {n}");
        }
        assert_eq!(guard.check(start, true), Verdict::SlowDown);
        // ...has not used up what its person may say.
        assert_eq!(guard.check(start, false), Verdict::Allow);
        assert_eq!(guard.check(start, false), Verdict::Allow);
        assert_eq!(guard.check(start, false), Verdict::SlowDown);
    }

    #[test]
    fn a_flood_past_the_tolerance_is_disconnected() {
        let start = Instant::now();
        let mut guard = FloodGuard::new(limit(2, 10), start);
        let verdicts: Vec<Verdict> = (0..2 + 10 + 1).map(|_| guard.check(start, false)).collect();
        assert_eq!(&verdicts[..2], &[Verdict::Allow; 2]);
        assert_eq!(&verdicts[2..12], &[Verdict::SlowDown; 10]);
        assert_eq!(verdicts[12], Verdict::Disconnect);
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Over any span of time, a client gets at most a full burst plus
        /// what the steady rate gives back; and no sequence of arrivals
        /// makes the guard panic.
        #[test]
        fn never_more_lines_than_the_burst_plus_the_rate(
            lines in 1u32..50,
            per in 1u64..30,
            gaps_ms in proptest::collection::vec(0u64..2_000, 1..300),
        ) {
            let limit = RateLimit { lines, per: Duration::from_secs(per) };
            let start = Instant::now();
            let mut guard = FloodGuard::new(limit, start);
            let mut now = start;
            let mut allowed = 0u64;
            for gap in gaps_ms {
                now += Duration::from_millis(gap);
                if guard.check(now, false) == Verdict::Allow {
                    allowed += 1;
                }
            }
            let elapsed = now.duration_since(start).as_secs_f64();
            let bound = f64::from(lines) + f64::from(lines) * elapsed / per as f64;
            prop_assert!(allowed as f64 <= bound + 1e-6, "{allowed} allowed, bound {bound}");
        }

        #[test]
        fn parsing_any_text_never_panics(text in ".{0,40}") {
            if let Ok(limit) = RateLimit::parse(&text) {
                prop_assert!(limit.lines >= 1 && limit.per >= Duration::from_secs(1));
            }
        }
    }
}
