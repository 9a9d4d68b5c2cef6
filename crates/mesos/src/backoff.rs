//! Capped exponential backoff with jitter, deterministic for a given seed.
//!
//! Sans-IO: it hands out durations and never sleeps or reads the clock. The
//! jitter comes from a small seeded generator so that a test (or a simulation)
//! replays the same delays; drivers seed it from the process id and time.

use std::time::Duration;

/// Backoff tunables.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BackoffConfig {
    /// First delay. Half a second: long enough not to hammer a master that is
    /// restarting, short enough that a lost leader is found again quickly.
    pub initial: Duration,
    /// Ceiling. Thirty seconds keeps a framework that lost every master
    /// responsive once one comes back, while costing almost nothing.
    pub max: Duration,
    /// Growth per failed attempt.
    pub factor: f64,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        BackoffConfig { initial: Duration::from_millis(500), max: Duration::from_secs(30), factor: 2.0 }
    }
}

/// Failed-attempt counter that yields the next delay.
#[derive(Debug, Clone)]
pub struct Backoff {
    config: BackoffConfig,
    attempt: u32,
    rng: SplitMix64,
}

impl Backoff {
    pub fn new(config: BackoffConfig, seed: u64) -> Self {
        Backoff { config, attempt: 0, rng: SplitMix64(seed) }
    }

    /// The delay before the next attempt: `initial * factor^n`, capped, then
    /// "equal jitter" (uniform in [d/2, d]) so that many frameworks that lost the
    /// same master do not come back in lockstep, while the delay never drops
    /// below half its nominal value.
    pub fn next_delay(&mut self) -> Duration {
        let nominal = self.config.initial.as_secs_f64() * self.config.factor.powi(self.attempt as i32);
        let capped = nominal.min(self.config.max.as_secs_f64());
        self.attempt = self.attempt.saturating_add(1);
        let unit = (self.rng.next() >> 11) as f64 / (1u64 << 53) as f64;
        Duration::from_secs_f64(capped * (0.5 + 0.5 * unit))
    }

    /// Failed attempts since the last reset.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// Called after a success: the next failure starts from `initial` again.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// SplitMix64: tiny, good enough for jitter, and reproducible.
#[derive(Debug, Clone)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_to_the_cap_and_resets() {
        let mut b = Backoff::new(BackoffConfig::default(), 7);
        let delays: Vec<Duration> = (0..12).map(|_| b.next_delay()).collect();
        assert!(delays[0] >= Duration::from_millis(250) && delays[0] <= Duration::from_millis(500));
        assert!(delays[3] >= Duration::from_secs(2) && delays[3] <= Duration::from_secs(4));
        for d in &delays[7..] {
            assert!(*d >= Duration::from_secs(15) && *d <= Duration::from_secs(30), "{d:?}");
        }
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(500));
    }

    #[test]
    fn same_seed_same_delays() {
        let mut a = Backoff::new(BackoffConfig::default(), 42);
        let mut b = Backoff::new(BackoffConfig::default(), 42);
        for _ in 0..10 {
            assert_eq!(a.next_delay(), b.next_delay());
        }
    }
}
