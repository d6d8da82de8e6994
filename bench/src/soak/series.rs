//! What the soak script recorded over time: samples of the router's memory and the store's
//! files, and the timeline of what it did (kills, restarts, the consumer stopped and
//! started). Times are ms from the run's start.
//!
//! Samples: `t_ms <TAB> router pid <TAB> VmRSS KiB <TAB> VmHWM KiB <TAB> db bytes <TAB> WAL
//! bytes <TAB> shm bytes <TAB> 1-minute load average`, `-` for what could not be read.
//! Timeline: `t_ms <TAB> what <TAB> detail`.

use std::path::Path;

use anyhow::Context;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sample {
    pub t_ms: i64,
    pub pid: Option<u32>,
    pub rss_kib: Option<u64>,
    pub hwm_kib: Option<u64>,
    pub db: Option<u64>,
    pub wal: Option<u64>,
    pub shm: Option<u64>,
    pub load1: Option<f64>,
}

impl Sample {
    fn parse(line: &str) -> Option<Self> {
        let fields: Vec<&str> = line.split('\t').collect();
        let [t, pid, rss, hwm, db, wal, shm, load] = fields[..] else {
            return None;
        };
        fn opt<T: std::str::FromStr>(text: &str) -> Option<T> {
            text.parse().ok()
        }
        Some(Self {
            t_ms: t.parse().ok()?,
            pid: opt(pid),
            rss_kib: opt(rss),
            hwm_kib: opt(hwm),
            db: opt(db),
            wal: opt(wal),
            shm: opt(shm),
            load1: opt(load),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Happening {
    pub t_ms: i64,
    pub what: String,
    pub detail: String,
}

pub fn samples(path: &Path) -> anyhow::Result<Vec<Sample>> {
    Ok(lines(path)?
        .iter()
        .filter_map(|l| Sample::parse(l))
        .collect())
}

pub fn timeline(path: &Path) -> anyhow::Result<Vec<Happening>> {
    Ok(lines(path)?
        .iter()
        .filter_map(|line| {
            let mut fields = line.splitn(3, '\t');
            Some(Happening {
                t_ms: fields.next()?.parse().ok()?,
                what: fields.next()?.to_owned(),
                detail: fields.next().unwrap_or("").to_owned(),
            })
        })
        .collect())
}

fn lines(path: &Path) -> anyhow::Result<Vec<String>> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(text.lines().map(str::to_owned).collect())
}

/// One router process's life, as its samples saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct Life {
    pub pid: u32,
    pub started_ms: Option<i64>,
    /// From its start to its `/readyz` answering.
    pub ready_after_ms: Option<i64>,
    pub killed_ms: Option<i64>,
    pub samples: usize,
    pub first_rss_kib: u64,
    pub last_rss_kib: u64,
    pub max_rss_kib: u64,
    /// Its VmHWM at the last sample: the peak of its whole life so far.
    pub hwm_kib: u64,
    pub first_t_ms: i64,
    pub last_t_ms: i64,
}

/// The router's lives in order, from the samples and the timeline.
pub fn lives(samples: &[Sample], timeline: &[Happening]) -> Vec<Life> {
    let mut lives: Vec<Life> = Vec::new();
    for sample in samples {
        let (Some(pid), Some(rss)) = (sample.pid, sample.rss_kib) else {
            continue;
        };
        let hwm = sample.hwm_kib.unwrap_or(rss);
        match lives.last_mut() {
            Some(life) if life.pid == pid => {
                life.samples += 1;
                life.last_rss_kib = rss;
                life.max_rss_kib = life.max_rss_kib.max(rss);
                life.hwm_kib = life.hwm_kib.max(hwm);
                life.last_t_ms = sample.t_ms;
            }
            _ => lives.push(Life {
                pid,
                started_ms: None,
                ready_after_ms: None,
                killed_ms: None,
                samples: 1,
                first_rss_kib: rss,
                last_rss_kib: rss,
                max_rss_kib: rss,
                hwm_kib: hwm,
                first_t_ms: sample.t_ms,
                last_t_ms: sample.t_ms,
            }),
        }
    }
    for life in &mut lives {
        let about = |what: &str| {
            timeline
                .iter()
                .find(|h| h.what == what && first_word(&h.detail) == Some(life.pid))
        };
        life.started_ms = about("router-started").map(|h| h.t_ms);
        life.killed_ms = about("router-killed").map(|h| h.t_ms);
        life.ready_after_ms = about("router-ready")
            .zip(life.started_ms)
            .map(|(ready, started)| ready.t_ms - started);
    }
    lives
}

fn first_word(detail: &str) -> Option<u32> {
    detail.split_whitespace().next()?.parse().ok()
}

/// Whether the router's memory stayed flat across its lives: the highest peak (VmHWM) of
/// the last third of its lives against that of the first third. Flat when it grew by at
/// most 20 % or 5 MiB, whichever is more. `None` with fewer than three lives.
pub fn memory_growth(lives: &[Life]) -> Option<(u64, u64, bool)> {
    if lives.len() < 3 {
        return None;
    }
    let third = lives.len() / 3;
    let peak = |lives: &[Life]| lives.iter().map(|l| l.hwm_kib).max().unwrap_or(0);
    let early = peak(&lives[..third]);
    let late = peak(&lives[lives.len() - third..]);
    let allowed = (early / 5).max(5 * 1024);
    Some((early, late, late <= early + allowed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(t_ms: i64, pid: u32, rss: u64) -> Sample {
        Sample {
            t_ms,
            pid: Some(pid),
            rss_kib: Some(rss),
            hwm_kib: Some(rss),
            ..Sample::default()
        }
    }

    #[test]
    fn sample_lines_parse_with_gaps() {
        let line = "5000\t42\t1024\t2048\t4096\t0\t32768\t1.5";
        let s = Sample::parse(line).unwrap_or_default();
        assert_eq!(
            (s.pid, s.rss_kib, s.wal, s.load1),
            (Some(42), Some(1024), Some(0), Some(1.5))
        );
        let gap = Sample::parse("6000\t-\t-\t-\t4096\t-\t-\t-").unwrap_or_default();
        assert_eq!((gap.t_ms, gap.pid, gap.db), (6000, None, Some(4096)));
        assert_eq!(Sample::parse("1\t2"), None);
    }

    #[test]
    fn samples_group_into_lives_with_their_timeline() {
        let samples = [
            sample(1000, 7, 100),
            sample(2000, 7, 120),
            Sample::default(),
            sample(3000, 8, 90),
        ];
        let at = |t_ms, what: &str, detail: &str| Happening {
            t_ms,
            what: what.into(),
            detail: detail.into(),
        };
        let timeline = [
            at(0, "router-started", "7"),
            at(300, "router-ready", "7"),
            at(2500, "router-killed", "7"),
            at(2500, "router-started", "8"),
        ];
        let lives = lives(&samples, &timeline);
        assert_eq!(lives.len(), 2);
        assert_eq!(
            (
                lives[0].first_rss_kib,
                lives[0].last_rss_kib,
                lives[0].max_rss_kib
            ),
            (100, 120, 120)
        );
        assert_eq!(lives[0].ready_after_ms, Some(300));
        assert_eq!(lives[0].killed_ms, Some(2500));
        assert_eq!(
            (lives[1].started_ms, lives[1].killed_ms),
            (Some(2500), None)
        );
    }

    #[test]
    fn memory_is_flat_unless_late_lives_peak_well_above_early_ones() {
        let life = |hwm_kib| Life {
            pid: 1,
            started_ms: None,
            ready_after_ms: None,
            killed_ms: None,
            samples: 1,
            first_rss_kib: hwm_kib,
            last_rss_kib: hwm_kib,
            max_rss_kib: hwm_kib,
            hwm_kib,
            first_t_ms: 0,
            last_t_ms: 0,
        };
        let flat: Vec<_> = [30_000, 31_000, 32_000].into_iter().map(life).collect();
        assert_eq!(memory_growth(&flat), Some((30_000, 32_000, true)));
        let growing: Vec<_> = [30_000, 60_000, 90_000].into_iter().map(life).collect();
        assert_eq!(memory_growth(&growing), Some((30_000, 90_000, false)));
        assert_eq!(memory_growth(&flat[..2]), None);
    }
}
