//! Sign-in attempts limited per client address: after `max_failures` failed sign-ins within
//! `window`, that address is refused (`429`, with how long to wait) until its oldest
//! failure leaves the window; a good token is not even checked meanwhile, so guessing
//! learns nothing. A successful sign-in clears the address's record.
//!
//! IPv6 clients are counted by their /64, the block one host is usually given. The table
//! is bounded: past [`MAX_ADDRESSES`] addresses, those whose failures have all left the
//! window are forgotten, and while it stays full new addresses are not recorded.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Addresses tracked at once.
pub const MAX_ADDRESSES: usize = 65_536;

/// How many failed sign-ins an address may make, and over how long.
#[derive(Debug, Clone, Copy)]
pub struct ThrottleSettings {
    pub max_failures: usize,
    pub window: Duration,
}

/// Refused without a check: the address failed too often; it may try again after
/// `retry_after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    pub retry_after: Duration,
}

pub struct LoginThrottle {
    settings: ThrottleSettings,
    /// Per address, the times of its recent failures, oldest first.
    failures: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
}

/// What an attempt came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Attempt<T> {
    Accepted(T),
    Refused,
    Throttled(Throttled),
}

impl LoginThrottle {
    pub fn new(settings: ThrottleSettings) -> Self {
        Self {
            settings,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Runs `check` for `client` at `now` unless the address is throttled, and records its
    /// outcome. The check runs under the table's lock, so concurrent guesses from one
    /// address cannot slip past the limit together (it is a few hashes, no IO).
    pub fn attempt<T>(
        &self,
        client: IpAddr,
        now: Instant,
        check: impl FnOnce() -> Option<T>,
    ) -> Attempt<T> {
        let key = key_of(client);
        let window = self.settings.window;
        let mut table = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(times) = table.get_mut(&key) {
            while times
                .front()
                .is_some_and(|t| now.saturating_duration_since(*t) >= window)
            {
                times.pop_front();
            }
            if times.len() >= self.settings.max_failures {
                let oldest = times.front().copied().unwrap_or(now);
                let waited = now.saturating_duration_since(oldest);
                return Attempt::Throttled(Throttled {
                    retry_after: window.saturating_sub(waited),
                });
            }
        }
        match check() {
            Some(value) => {
                table.remove(&key);
                Attempt::Accepted(value)
            }
            None => {
                if !table.contains_key(&key) && table.len() >= MAX_ADDRESSES {
                    table.retain(|_, times| {
                        times
                            .back()
                            .is_some_and(|t| now.saturating_duration_since(*t) < window)
                    });
                }
                if table.contains_key(&key) || table.len() < MAX_ADDRESSES {
                    table.entry(key).or_default().push_back(now);
                } else {
                    tracing::warn!("sign-in throttle full: a failure is not recorded");
                }
                Attempt::Refused
            }
        }
    }
}

/// The address an attempt counts against: IPv4 as it is, IPv6 by its /64.
fn key_of(client: IpAddr) -> IpAddr {
    match client {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((v6.to_bits() & !((1u128 << 64) - 1)).into()),
        },
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle(max_failures: usize, window_secs: u64) -> LoginThrottle {
        LoginThrottle::new(ThrottleSettings {
            max_failures,
            window: Duration::from_secs(window_secs),
        })
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn the_attempt_after_the_last_allowed_failure_is_throttled_until_the_oldest_leaves() {
        let throttle = throttle(3, 60);
        let start = Instant::now();
        let client = ip("192.0.2.1");
        for i in 0..3 {
            let at = start + Duration::from_secs(i);
            assert_eq!(
                throttle.attempt(client, at, || None::<()>),
                Attempt::Refused
            );
        }
        let mut checked = false;
        let later = start + Duration::from_secs(10);
        let attempt = throttle.attempt(client, later, || {
            checked = true;
            Some(())
        });
        assert_eq!(
            attempt,
            Attempt::Throttled(Throttled {
                retry_after: Duration::from_secs(50)
            })
        );
        assert!(!checked, "a throttled attempt is not checked");
        // Another address is not held back; the first one is again once its oldest
        // failure is a window old.
        assert_eq!(
            throttle.attempt(ip("192.0.2.2"), later, || Some(())),
            Attempt::Accepted(())
        );
        let after = start + Duration::from_secs(60);
        assert_eq!(
            throttle.attempt(client, after, || Some(())),
            Attempt::Accepted(())
        );
    }

    #[test]
    fn a_success_clears_the_record_and_ipv6_counts_by_its_64() {
        let throttle = throttle(2, 60);
        let now = Instant::now();
        let host = ip("2001:db8:1:2::10");
        assert_eq!(throttle.attempt(host, now, || None::<()>), Attempt::Refused);
        assert_eq!(
            throttle.attempt(ip("2001:db8:1:2::99"), now, || None::<()>),
            Attempt::Refused
        );
        assert!(matches!(
            throttle.attempt(host, now, || Some(())),
            Attempt::Throttled(_)
        ));
        let other = ip("192.0.2.1");
        assert_eq!(
            throttle.attempt(other, now, || None::<()>),
            Attempt::Refused
        );
        assert_eq!(
            throttle.attempt(other, now, || Some(())),
            Attempt::Accepted(())
        );
        assert_eq!(
            throttle.attempt(other, now, || None::<()>),
            Attempt::Refused
        );
        assert_eq!(
            throttle.attempt(other, now, || None::<()>),
            Attempt::Refused
        );
    }
}
