//! Latency histograms and their summary: the bounds every run records with, microseconds
//! from a `Duration`, and the percentiles both reports print.

use std::fmt;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Microsecond resolution, 3 significant digits, up to an hour.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3)
        .unwrap_or_else(|_| unreachable!("constant bounds are valid"))
}

/// Microsecond resolution, 2 significant digits, up to a minute: small enough to keep one
/// per agent per second.
pub fn second_histogram() -> Histogram<u32> {
    Histogram::new_with_bounds(1, 60_000_000, 2)
        .unwrap_or_else(|_| unreachable!("constant bounds are valid"))
}

pub fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
}

impl Percentiles {
    /// From a histogram of microseconds; `None` when nothing was recorded.
    pub fn from_micros(histogram: &Histogram<u64>) -> Option<Self> {
        let ms = |micros: u64| micros as f64 / 1000.0;
        (!histogram.is_empty()).then(|| Self {
            p50: ms(histogram.value_at_quantile(0.50)),
            p90: ms(histogram.value_at_quantile(0.90)),
            p99: ms(histogram.value_at_quantile(0.99)),
            p999: ms(histogram.value_at_quantile(0.999)),
            max: ms(histogram.max()),
            mean: histogram.mean().round() / 1000.0,
        })
    }
}

pub fn write_percentiles(
    f: &mut fmt::Formatter<'_>,
    label: &str,
    percentiles: &Option<Percentiles>,
) -> fmt::Result {
    match percentiles {
        Some(p) => writeln!(
            f,
            "  {label}: p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}",
            p.p50, p.p90, p.p99, p.p999, p.max
        ),
        None => writeln!(f, "  {label}: no answers"),
    }
}
