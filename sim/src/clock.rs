//! Wall-clock time in the units Meta's payloads use.

use std::time::{SystemTime, UNIX_EPOCH};

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
        })
}

/// Unix seconds now, as webhook timestamps carry them.
pub fn now_secs() -> i64 {
    now_ms() / 1000
}
