//! The clock: wall time as the store and the state machines count it.

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

pub fn now_millis() -> Millis {
    let now = time::OffsetDateTime::now_utc();
    i64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// Seconds since the Unix epoch, as call and permission state counts time.
pub fn now_secs() -> i64 {
    now_millis() / 1000
}
