//! The result of an ingest run, as text for people and as one JSON line for scripts.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Instant;

use serde::Serialize;

use super::options::{IngestOptions, Load};
use super::tally::{Observed, Tally};
use crate::bodies::Mix;
use crate::latency::{write_percentiles, Percentiles};

#[derive(Debug, Serialize)]
pub struct Report {
    pub bench: &'static str,
    /// `rate` (open loop) or `saturate` (closed loop).
    pub mode: &'static str,
    pub url: String,
    pub target_rate: Option<f64>,
    pub connections: usize,
    pub duration_s: f64,
    pub warmup_s: f64,
    pub run_id: String,
    /// Counts below cover the measured window only; warm-up is in `warmup`.
    pub sent: u64,
    pub ok: u64,
    pub non_ok: u64,
    pub errors: u64,
    pub timeouts: u64,
    /// Fixed rate only: requests due in the window that never got a free connection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub missed: Option<u64>,
    /// From the start of the window to the last answer (at least the duration).
    pub elapsed_s: f64,
    /// Answers (any status) per second.
    pub rps: f64,
    /// 200 answers per second.
    pub ok_rps: f64,
    /// Fixed rate: from the due time; saturation: from the send time.
    pub latency_ms: Option<Percentiles>,
    /// Fixed rate only: from the moment the request actually left.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_ms: Option<Percentiles>,
    pub statuses: BTreeMap<u16, u64>,
    pub ok_by_template: BTreeMap<&'static str, u64>,
    pub first_error: Option<String>,
    pub warmup: PhaseSummary,
}

#[derive(Debug, Serialize)]
pub struct PhaseSummary {
    pub sent: u64,
    pub ok: u64,
    pub errors: u64,
    pub ok_by_template: BTreeMap<&'static str, u64>,
}

impl PhaseSummary {
    fn new(tally: &Tally, mix: Mix) -> Self {
        Self {
            sent: tally.sent,
            ok: tally.ok(),
            errors: tally.errors,
            ok_by_template: by_template(tally, mix),
        }
    }
}

fn by_template(tally: &Tally, mix: Mix) -> BTreeMap<&'static str, u64> {
    mix.template_names().zip(tally.ok_by_template).collect()
}

impl Report {
    pub fn new(
        options: &IngestOptions,
        observed: Observed,
        measure_from: Instant,
        due_in_window: Option<u64>,
    ) -> Self {
        let measured = &observed.measured;
        let elapsed = measured
            .last_answer
            .map_or(options.duration, |last| last - measure_from)
            .max(options.duration)
            .as_secs_f64();
        let (mode, target_rate) = match options.load {
            Load::Rate(rate) => ("rate", Some(rate)),
            Load::Saturate => ("saturate", None),
        };
        Self {
            bench: "ingest",
            mode,
            url: options.url.clone(),
            target_rate,
            connections: options.connections,
            duration_s: options.duration.as_secs_f64(),
            warmup_s: options.warmup.as_secs_f64(),
            run_id: format!("{:08X}", options.run_id),
            sent: measured.sent,
            ok: measured.ok(),
            non_ok: measured.answered() - measured.ok(),
            errors: measured.errors,
            timeouts: measured.timeouts,
            missed: due_in_window.map(|due| due.saturating_sub(measured.sent)),
            elapsed_s: elapsed,
            rps: measured.answered() as f64 / elapsed,
            ok_rps: measured.ok() as f64 / elapsed,
            latency_ms: Percentiles::from_micros(&observed.latency),
            service_ms: target_rate.and_then(|_| Percentiles::from_micros(&observed.service)),
            statuses: measured.statuses.clone(),
            ok_by_template: by_template(measured, options.mix),
            first_error: measured
                .first_error
                .clone()
                .or_else(|| observed.warmup.first_error.clone()),
            warmup: PhaseSummary::new(&observed.warmup, options.mix),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| unreachable!("a report always serialises"))
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.target_rate {
            Some(rate) => write!(f, "ingest: fixed rate {rate}/s (open loop)")?,
            None => write!(f, "ingest: saturation (closed loop)")?,
        }
        writeln!(
            f,
            ", {} connections, {} s measured after {} s warm-up, {}",
            self.connections, self.duration_s, self.warmup_s, self.url
        )?;
        write!(f, "  sent       {:>10}", self.sent)?;
        match self.missed {
            Some(missed) => writeln!(f, "   (due but never sent: {missed})")?,
            None => writeln!(f)?,
        }
        writeln!(f, "  200        {:>10}", self.ok)?;
        write!(f, "  non-200    {:>10}", self.non_ok)?;
        let others: Vec<String> = self
            .statuses
            .iter()
            .filter(|(status, _)| **status != 200)
            .map(|(status, count)| format!("{status}: {count}"))
            .collect();
        if others.is_empty() {
            writeln!(f)?;
        } else {
            writeln!(f, "   ({})", others.join(", "))?;
        }
        writeln!(
            f,
            "  errors     {:>10}   ({} timeouts)",
            self.errors, self.timeouts
        )?;
        writeln!(
            f,
            "  achieved   {:>10.1} req/s   ({:.1} 200s/s over {:.2} s)",
            self.rps, self.ok_rps, self.elapsed_s
        )?;
        let origin = if self.target_rate.is_some() {
            "from due time"
        } else {
            "from send"
        };
        write_percentiles(f, &format!("latency ms ({origin})"), &self.latency_ms)?;
        if self.target_rate.is_some() {
            write_percentiles(f, "service ms (from send)", &self.service_ms)?;
        }
        write!(
            f,
            "  warm-up    {:>10} sent, {} 200s, {} errors",
            self.warmup.sent, self.warmup.ok, self.warmup.errors
        )?;
        if let Some(error) = &self.first_error {
            write!(f, "\n  first error: {error}")?;
        }
        Ok(())
    }
}
