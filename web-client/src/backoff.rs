//! When to try the WebSocket again after it drops: quickly at first, then less often,
//! never more than every 15 s, with jitter so a restarted server is not met by every
//! agent's page in the same millisecond.

/// The delays after consecutive failures.
#[derive(Debug, Clone, PartialEq)]
pub struct Backoff {
    failures: u32,
}

const FIRST_MS: f64 = 500.0;
const MAX_MS: f64 = 15_000.0;

impl Backoff {
    pub fn new() -> Self {
        Self { failures: 0 }
    }

    /// The connection is up: the next drop starts from the shortest delay again.
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// How many attempts in a row have failed.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// The delay before the next attempt. `jitter` is a random number in `[0, 1)`; the
    /// delay is spread over 75–100 % of the nominal one.
    pub fn next_delay_ms(&mut self, jitter: f64) -> f64 {
        let nominal = (FIRST_MS * 2f64.powi(self.failures.min(16) as i32)).min(MAX_MS);
        self.failures = self.failures.saturating_add(1);
        nominal * (0.75 + 0.25 * jitter.clamp(0.0, 1.0))
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_a_ceiling_and_reset_after_success() {
        let mut backoff = Backoff::new();
        let delays: Vec<f64> = (0..7).map(|_| backoff.next_delay_ms(1.0)).collect();
        assert_eq!(
            delays,
            [500.0, 1000.0, 2000.0, 4000.0, 8000.0, 15_000.0, 15_000.0]
        );
        assert_eq!(backoff.failures(), 7);
        backoff.reset();
        assert_eq!(backoff.next_delay_ms(1.0), 500.0);
    }

    #[test]
    fn jitter_shortens_a_delay_by_at_most_a_quarter() {
        let mut backoff = Backoff::new();
        assert_eq!(backoff.next_delay_ms(0.0), 375.0);
        assert_eq!(
            backoff.next_delay_ms(7.0),
            1000.0,
            "out-of-range jitter is clamped"
        );
    }
}
