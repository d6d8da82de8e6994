//! The soak's findings, as markdown: reads what the run left in its directory (see
//! [`super::files`]) and says what was lost, delivered, duplicated and refused, and how the
//! router's memory and the store's files moved.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use serde::Deserialize;

use super::files;
use super::ledger::Ledger;
use super::series::{self, Happening, Life, Sample};
use super::tally::Endings;
use crate::latency::Percentiles;

/// Seconds after a kill whose failed attempts are put down to it; and the second before it,
/// whose requests may still have been in flight.
const KILL_WINDOW_S: usize = 5;

/// The load generator's JSON line, as far as the report reads it.
#[derive(Debug, Deserialize)]
struct Drive {
    rate: f64,
    duration_s: f64,
    connections: usize,
    retries: u32,
    retry_delay_s: f64,
    elapsed_s: f64,
    answer_ms: Option<Percentiles>,
    due: u64,
    attempts: Endings,
    first_attempts: Endings,
    acknowledged_first_try: u64,
    acknowledged_after_retry: u64,
    never_acknowledged: Endings,
    never_sent: u64,
    receipt_events: u64,
    receipt_duplicates: u64,
    unreadable_receipts: u64,
    shapes: Vec<Shape>,
    per_second: Vec<Endings>,
    first_error: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Shape {
    name: String,
    acknowledged: u64,
    events: u64,
}

struct Run {
    drive: Drive,
    ledger: Ledger,
    samples: Vec<Sample>,
    timeline: Vec<Happening>,
    lives: Vec<Life>,
    /// Unix ms of the run's start.
    epoch_ms: i64,
}

/// Whether every owed event has reached the consumer: prints the counts.
pub fn check(dir: &Path) -> anyhow::Result<bool> {
    let ledger = Ledger::load(&dir.join(files::OWED), &dir.join(files::CONSUMER_LOG))?;
    let total = ledger.total();
    println!(
        "owed {} delivered {} missing {} duplicates {}",
        total.owed, total.delivered, total.missing, total.duplicates
    );
    Ok(total.missing == 0)
}

pub fn render(dir: &Path) -> anyhow::Result<String> {
    let run = load(dir)?;
    let mut out = String::new();
    verdict(&run, &mut out);
    webhooks(&run, &mut out);
    restarts(&run, &mut out);
    deliveries(&run, &mut out);
    memory(&run, &mut out);
    store_files(&run, &mut out);
    Ok(out)
}

fn load(dir: &Path) -> anyhow::Result<Run> {
    let path = dir.join(files::DRIVE);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let drive: Drive = serde_json::from_str(text.trim())
        .with_context(|| format!("{} is not the load generator's JSON", path.display()))?;
    let ledger = Ledger::load(&dir.join(files::OWED), &dir.join(files::CONSUMER_LOG))?;
    let samples = series::samples(&dir.join(files::SAMPLES))?;
    let timeline = series::timeline(&dir.join(files::TIMELINE))?;
    let epoch_ms = timeline
        .iter()
        .find(|h| h.what == "run-started")
        .and_then(|h| h.detail.trim().parse().ok())
        .context("the timeline has no run-started line with the start's Unix ms")?;
    let lives = series::lives(&samples, &timeline);
    Ok(Run {
        drive,
        ledger,
        samples,
        timeline,
        lives,
        epoch_ms,
    })
}

fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}

fn mib_bytes(bytes: Option<u64>) -> String {
    bytes.map_or_else(|| "-".into(), |b| format!("{:.1}", b as f64 / 1_048_576.0))
}

fn kills(run: &Run) -> Vec<&Happening> {
    run.timeline
        .iter()
        .filter(|h| h.what == "router-killed")
        .collect()
}

/// Failed attempts sent in the seconds after each kill, and the rest.
fn failures_by_kill(run: &Run) -> (Vec<Endings>, Endings) {
    let mut near: Vec<Endings> = Vec::new();
    let mut claimed = vec![false; run.drive.per_second.len()];
    for kill in kills(run) {
        let from = usize::try_from(kill.t_ms.max(0) / 1000)
            .unwrap_or(0)
            .saturating_sub(1);
        let mut sum = Endings::default();
        let seconds = run.drive.per_second.iter().zip(claimed.iter_mut());
        for (endings, claimed) in seconds.skip(from).take(KILL_WINDOW_S + 1) {
            add(&mut sum, endings);
            *claimed = true;
        }
        near.push(sum);
    }
    let mut elsewhere = Endings::default();
    for (second, endings) in run.drive.per_second.iter().enumerate() {
        if !claimed[second] {
            add(&mut elsewhere, endings);
        }
    }
    (near, elsewhere)
}

fn add(sum: &mut Endings, more: &Endings) {
    sum.acknowledged += more.acknowledged;
    sum.refused += more.refused;
    sum.dropped += more.dropped;
    sum.timed_out += more.timed_out;
    for (code, count) in &more.status {
        *sum.status.entry(*code).or_default() += count;
    }
}

fn failed_text(e: &Endings) -> String {
    let other: u64 = e.status.values().sum();
    format!(
        "{} refused, {} dropped, {} timed out, {} non-200",
        e.refused, e.dropped, e.timed_out, other
    )
}

fn verdict(run: &Run, out: &mut String) {
    let total = run.ledger.total();
    let (_, lost_webhooks) = run.ledger.missing(0);
    let counts = run.ledger.delivery_counts();
    let twice_or_more: u64 = counts.range(2..).map(|(_, n)| n).sum();
    let most = counts.keys().max().copied().unwrap_or(0);
    let (near, elsewhere) = failures_by_kill(run);
    let mut near_sum = Endings::default();
    near.iter().for_each(|e| add(&mut near_sum, e));
    let acked = run.drive.acknowledged_first_try + run.drive.acknowledged_after_retry;
    let memory = match series::memory_growth(&run.lives) {
        Some((early, late, flat)) => format!(
            "{}: highest VmHWM of the first third of the router's lives {} MiB, of the last third {} MiB",
            if flat { "**flat**" } else { "**not flat**" },
            mib(early),
            mib(late)
        ),
        None => "too few router lives to tell".into(),
    };
    let wal_max = run.samples.iter().filter_map(|s| s.wal).max();
    let db_last = run.samples.iter().rev().find_map(|s| s.db);
    let _ = write!(
        out,
        "### Verdict\n\n| | result |\n|---|---|\n\
| **acknowledged webhooks lost** (a 200, and an event of its receipt never delivered) | **{lost_webhooks}** ({} events) |\n\
| events owed (listed in a 200's receipt) / delivered to the consumer | {} / {} |\n\
| events delivered though no 200 listed them (stored, answer lost in a kill) | {} |\n\
| duplicate deliveries (at-least-once) | {} ({twice_or_more} events delivered more than once, at most {most} times) |\n\
| webhooks acknowledged / due | {acked} / {} ({} of them only after a retry) |\n\
| webhook attempts failed from 1 s before to {KILL_WINDOW_S} s after a router kill ({} kills) | {} |\n\
| webhook attempts failed at other times | {} |\n\
| webhooks never acknowledged (after {} retries) / never sent | {} / {} |\n\
| router memory | {memory} |\n\
| store files | WAL at most {} MiB; database {} MiB at the end |\n\n",
        total.missing,
        total.owed,
        total.delivered,
        total.unacknowledged,
        total.duplicates,
        run.drive.due,
        run.drive.acknowledged_after_retry,
        near.len(),
        failed_text(&near_sum),
        failed_text(&elsewhere),
        run.drive.retries,
        run.drive.never_acknowledged.total(),
        run.drive.never_sent,
        mib_bytes(wal_max),
        mib_bytes(db_last),
    );
}

fn webhooks(run: &Run, out: &mut String) {
    let d = &run.drive;
    let _ = writeln!(
        out,
        "### Webhooks\n\n{} webhooks/s for {} s (open loop, {} connections); a webhook not answered \
200 is sent again, the same bytes, {} s later, up to {} times. Load ended {:.1} s after the start.\n",
        d.rate, d.duration_s, d.connections, d.retry_delay_s, d.retries, d.elapsed_s
    );
    let _ = writeln!(
        out,
        "- every attempt ({}): {}",
        d.attempts.total(),
        d.attempts
    );
    let _ = writeln!(
        out,
        "- first attempts ({}): {}",
        d.first_attempts.total(),
        d.first_attempts
    );
    let _ = writeln!(
        out,
        "- never acknowledged, by their last attempt: {}",
        d.never_acknowledged
    );
    let _ = writeln!(
        out,
        "- receipts listed {} events, {} of them marked duplicate (stored by an earlier attempt); \
{} 200s without a readable receipt",
        d.receipt_events, d.receipt_duplicates, d.unreadable_receipts
    );
    if let Some(p) = &d.answer_ms {
        let _ = writeln!(
            out,
            "- answer time of the 200s, from send: p50 {:.2} / p90 {:.2} / p99 {:.2} / p99.9 {:.2} / max {:.2} ms",
            p.p50, p.p90, p.p99, p.p999, p.max
        );
    }
    if let Some(error) = &d.first_error {
        let _ = writeln!(out, "- first failure seen: `{}`", error.replace('`', "'"));
    }
    let _ = writeln!(
        out,
        "\n| shape | acknowledged | events in receipts |\n|---|---|---|"
    );
    for shape in &d.shapes {
        let _ = writeln!(
            out,
            "| {} | {} | {} |",
            shape.name, shape.acknowledged, shape.events
        );
    }
    out.push('\n');
}

fn restarts(run: &Run, out: &mut String) {
    let (near, _) = failures_by_kill(run);
    let _ = writeln!(
        out,
        "### Router kills\n\nEach kill is SIGKILL, then the same command at once on the same data \
directory. Failed attempts are those sent from the second before the kill to {KILL_WINDOW_S} s \
after it.\n\n\
| kill | at s | killed pid | new pid ready after ms | attempts failed | acknowledged in those seconds |\n|---|---|---|---|---|---|"
    );
    for (n, (kill, failed)) in kills(run).iter().zip(&near).enumerate() {
        let killed = kill.detail.split_whitespace().next().unwrap_or("?");
        let next = run
            .lives
            .iter()
            .find(|l| l.started_ms.is_some_and(|s| s >= kill.t_ms));
        let ready = next
            .and_then(|l| l.ready_after_ms)
            .map_or_else(|| "-".into(), |ms| ms.to_string());
        let _ = writeln!(
            out,
            "| {} | {:.1} | {killed} | {ready} | {} | {} |",
            n + 1,
            kill.t_ms as f64 / 1000.0,
            failed_text(failed),
            failed.acknowledged
        );
    }
    let failing: Vec<String> = run
        .drive
        .per_second
        .iter()
        .enumerate()
        .filter(|(_, e)| e.failed() > 0)
        .map(|(second, e)| {
            let other: u64 = e.status.values().sum();
            format!(
                "{second}: {}/{}/{}/{other}",
                e.refused, e.dropped, e.timed_out
            )
        })
        .collect();
    let _ =
        writeln!(
        out,
        "\nEvery second (from the start) in which attempts failed, as second: refused / dropped / \
timed out / non-200: {}.\n",
        if failing.is_empty() { "none".to_owned() } else { failing.join(", ") }
    );
}

fn deliveries(run: &Run, out: &mut String) {
    let _ = writeln!(
        out,
        "### Deliveries to the consumer, per kind\n\n\
| kind | owed | delivered | missing | delivered without a 200 | duplicate deliveries | answered 503 |\n|---|---|---|---|---|---|---|"
    );
    let by_kind = run.ledger.by_kind();
    for (kind, c) in by_kind
        .iter()
        .chain([(&"**all**".to_owned(), &run.ledger.total())])
    {
        let _ = writeln!(
            out,
            "| {kind} | {} | {} | {} | {} | {} | {} |",
            c.owed, c.delivered, c.missing, c.unacknowledged, c.duplicates, c.unavailable
        );
    }
    let counts: Vec<String> = run
        .ledger
        .delivery_counts()
        .iter()
        .map(|(times, events)| format!("{times}x: {events}"))
        .collect();
    let _ = writeln!(
        out,
        "\nEvents by how many times the consumer answered 200 for them: {}.",
        counts.join(", ")
    );
    if let Some(last) = run.ledger.last_delivery_ms {
        let _ = writeln!(
            out,
            "The last delivery arrived {:.1} s after the start.",
            (i64::try_from(last).unwrap_or(i64::MAX) - run.epoch_ms) as f64 / 1000.0
        );
    }
    for h in run.timeline.iter().filter(|h| h.what.starts_with("drain")) {
        let _ = writeln!(
            out,
            "Drain: {} at {:.1} s ({}).",
            h.what,
            h.t_ms as f64 / 1000.0,
            h.detail
        );
    }
    let (missing, webhooks) = run.ledger.missing(20);
    if !missing.is_empty() {
        let _ = writeln!(
            out,
            "\nMissing events ({webhooks} webhooks), the first {}:\n",
            missing.len()
        );
        for m in missing {
            let _ = writeln!(out, "- `{}` {} (webhook {})", m.id, m.kind, m.webhook);
        }
    }
    if run.ledger.bad_lines > 0 {
        let _ = writeln!(
            out,
            "\nUnreadable lines in the owed file or the consumer log: {}.",
            run.ledger.bad_lines
        );
    }
    out.push('\n');
}

fn memory(run: &Run, out: &mut String) {
    let _ = writeln!(
        out,
        "### Router memory, per process life\n\nVmRSS sampled from /proc/PID/status; VmHWM is the \
life's peak. Flat means the highest VmHWM of the last third of the lives is at most 20 % \
(or 5 MiB) above that of the first third.\n\n\
| pid | sampled from–to s | ready after ms | samples | VmRSS first / last / max MiB | VmHWM MiB | killed at s |\n|---|---|---|---|---|---|---|"
    );
    for life in &run.lives {
        let _ = writeln!(
            out,
            "| {} | {:.0}–{:.0} | {} | {} | {} / {} / {} | {} | {} |",
            life.pid,
            life.first_t_ms as f64 / 1000.0,
            life.last_t_ms as f64 / 1000.0,
            life.ready_after_ms
                .map_or_else(|| "-".into(), |ms| ms.to_string()),
            life.samples,
            mib(life.first_rss_kib),
            mib(life.last_rss_kib),
            mib(life.max_rss_kib),
            mib(life.hwm_kib),
            life.killed_ms
                .map_or_else(|| "-".into(), |ms| format!("{:.1}", ms as f64 / 1000.0)),
        );
    }
    out.push('\n');
}

fn store_files(run: &Run, out: &mut String) {
    let _ = writeln!(
        out,
        "### Store files and memory over time\n\n\
| t s | router pid | VmRSS MiB | switchboard.db MiB | -wal MiB | -shm MiB | load (1 min) |\n|---|---|---|---|---|---|---|"
    );
    // About 30 rows, each the first sample at or after its mark.
    let last = run.samples.last().map_or(0, |s| s.t_ms);
    let step = (last / 30).max(5000);
    let mut marks: BTreeMap<i64, &Sample> = BTreeMap::new();
    for sample in &run.samples {
        marks.entry(sample.t_ms / step).or_insert(sample);
    }
    if let Some(last) = run.samples.last() {
        marks.insert(i64::MAX, last);
    }
    for sample in marks.values() {
        let _ = writeln!(
            out,
            "| {:.0} | {} | {} | {} | {} | {} | {} |",
            sample.t_ms as f64 / 1000.0,
            sample.pid.map_or_else(|| "-".into(), |p| p.to_string()),
            sample.rss_kib.map_or_else(|| "-".into(), mib),
            mib_bytes(sample.db),
            mib_bytes(sample.wal),
            mib_bytes(sample.shm),
            sample
                .load1
                .map_or_else(|| "-".into(), |l| format!("{l:.2}")),
        );
    }
    let max = |f: fn(&Sample) -> Option<u64>| run.samples.iter().filter_map(f).max();
    let _ = writeln!(
        out,
        "\nLargest of {} samples: VmRSS {} MiB, switchboard.db {} MiB, -wal {} MiB, -shm {} MiB.",
        run.samples.len(),
        max(|s| s.rss_kib).map_or_else(|| "-".into(), mib),
        mib_bytes(max(|s| s.db)),
        mib_bytes(max(|s| s.wal)),
        mib_bytes(max(|s| s.shm)),
    );
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn id(n: u8) -> String {
        format!("evt_{}", format!("{n:02x}").repeat(16))
    }

    /// A run of three seconds: one kill at 1.2 s, three webhooks of one event each, the
    /// second refused once and acknowledged on its retry, one event delivered twice and
    /// one never.
    fn write_run(dir: &Path) {
        let endings = |ok: u64, refused: u64| serde_json::json!({"acknowledged": ok, "refused": refused, "dropped": 0, "timed_out": 0, "status": {}});
        let drive = serde_json::json!({
            "rate": 1.0, "duration_s": 3.0, "connections": 1, "retries": 9, "retry_delay_s": 2.0,
            "elapsed_s": 3.1, "answer_ms": null, "due": 3,
            "attempts": endings(3, 1), "first_attempts": endings(2, 1),
            "acknowledged_first_try": 2, "acknowledged_after_retry": 1,
            "never_acknowledged": endings(0, 0), "never_sent": 0,
            "receipt_events": 3, "receipt_duplicates": 0, "unreadable_receipts": 0,
            "shapes": [{"name": "text-message", "acknowledged": 3, "events": 3}],
            "per_second": [endings(1, 0), endings(0, 1), endings(2, 0)],
            "first_error": "connecting: refused",
        });
        std::fs::write(dir.join(files::DRIVE), drive.to_string()).unwrap();
        let owed: String = (1..=3)
            .map(|n| format!("{}\tmessage:text\t{n}\t0\n", id(n)))
            .collect();
        std::fs::write(dir.join(files::OWED), owed).unwrap();
        let log = format!(
            "1000\t200\t{}\tmessage:text\n1500\t503\t{}\tmessage:text\n2000\t200\t{}\tmessage:text\n2100\t200\t{}\tmessage:text\n",
            id(1),
            id(2),
            id(2),
            id(2)
        );
        std::fs::write(dir.join(files::CONSUMER_LOG), log).unwrap();
        let samples = "0\t10\t1024\t1024\t4096\t8192\t32768\t0.5\n\
                       1000\t10\t2048\t2048\t4096\t8192\t32768\t0.5\n\
                       1300\t11\t1024\t1024\t4096\t8192\t32768\t0.6\n\
                       2500\t11\t3072\t3072\t8192\t8192\t32768\t0.7\n";
        std::fs::write(dir.join(files::SAMPLES), samples).unwrap();
        let timeline = "0\trun-started\t0\n-10\trouter-started\t10\n\
                        -5\trouter-ready\t10\n1200\trouter-killed\t10\n\
                        1200\trouter-started\t11\n1450\trouter-ready\t11\n";
        std::fs::write(dir.join(files::TIMELINE), timeline).unwrap();
    }

    #[test]
    fn a_run_directory_renders_into_its_findings() {
        let dir = std::env::temp_dir().join(format!("soak-report-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        write_run(&dir);
        let report = render(&dir).unwrap();
        assert!(check(&dir).is_ok_and(|complete| !complete));
        std::fs::remove_dir_all(&dir).unwrap();
        for expected in [
            "| **acknowledged webhooks lost** (a 200, and an event of its receipt never delivered) | **1** (1 events) |",
            "| events owed (listed in a 200's receipt) / delivered to the consumer | 3 / 2 |",
            "| duplicate deliveries (at-least-once) | 1 (1 events delivered more than once, at most 2 times) |",
            "| 1 | 1.2 | 10 | 250 | 1 refused, 0 dropped, 0 timed out, 0 non-200 | 3 |",
            "1: 1/0/0/0.",
            &format!("- `{}` message:text (webhook 3)", id(3)),
            "| 11 | 1–2 | 250 | 2 | 1.0 / 3.0 / 3.0 | 3.0 | - |",
        ] {
            assert!(report.contains(expected), "{expected}\nnot in:\n{report}");
        }
    }
}
