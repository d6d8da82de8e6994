//! When a failed forward is tried again.

use std::time::{Duration, SystemTime};

use rand::Rng;
use reqwest::header::{HeaderMap, RETRY_AFTER};

use crate::domain::clock::Millis;

/// The longest a consumer's `Retry-After` may push an attempt back.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// The delay before the attempt after `attempt` (1-based), or `None` when the schedule is
/// spent and the job has failed for good.
pub fn next_delay(schedule: &[Duration], attempt: u32) -> Option<Duration> {
    let index = usize::try_from(attempt).ok()?.checked_sub(1)?;
    let base = *schedule.get(index)?;
    Some(jittered(base))
}

/// ±10 % so many jobs failed together do not all come back in the same instant.
fn jittered(base: Duration) -> Duration {
    if base.is_zero() {
        return base;
    }
    let factor = rand::rng().random_range(0.9..=1.1);
    base.mul_f64(factor)
}

/// A consumer's `Retry-After`, in seconds or as an HTTP date, capped at a day.
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let delay = match value.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => httpdate::parse_http_date(value)
            .ok()?
            .duration_since(now)
            .unwrap_or_default(),
    };
    Some(delay.min(MAX_RETRY_AFTER))
}

/// The time of the next attempt: the schedule's delay, or later if the consumer asked.
pub fn next_attempt_at(now: Millis, delay: Duration, asked: Option<Duration>) -> Millis {
    let wait = asked.map_or(delay, |asked| asked.max(delay));
    now.saturating_add(i64::try_from(wait.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn the_schedule_is_followed_with_jitter_and_then_ends() {
        let schedule = [Duration::from_secs(5), Duration::from_secs(300)];
        for _ in 0..100 {
            let first = next_delay(&schedule, 1).unwrap();
            assert!(first >= Duration::from_millis(4500) && first <= Duration::from_millis(5500));
            let second = next_delay(&schedule, 2).unwrap();
            assert!(second >= Duration::from_secs(270) && second <= Duration::from_secs(330));
        }
        assert_eq!(next_delay(&schedule, 3), None);
        assert_eq!(next_delay(&schedule, 0), None);
    }

    #[test]
    fn retry_after_is_read_in_seconds_or_as_a_date_and_capped() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("120"));
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(120)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(60));
        headers.insert(RETRY_AFTER, HeaderValue::from_str(&later).unwrap());
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(60)));
        headers.insert(RETRY_AFTER, HeaderValue::from_static("99999999"));
        assert_eq!(retry_after(&headers, now), Some(MAX_RETRY_AFTER));
        headers.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&headers, now), None);
    }

    #[test]
    fn a_longer_retry_after_wins_over_the_schedule() {
        let delay = Duration::from_secs(5);
        assert_eq!(next_attempt_at(0, delay, None), 5_000);
        assert_eq!(
            next_attempt_at(0, delay, Some(Duration::from_secs(60))),
            60_000
        );
        assert_eq!(
            next_attempt_at(0, delay, Some(Duration::from_secs(1))),
            5_000
        );
    }
}
