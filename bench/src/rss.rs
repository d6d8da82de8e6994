//! Resident memory of a process, read from `/proc/PID/status`, and its CPU time, from
//! `/proc/PID/stat`.

use anyhow::Context;
use serde::Serialize;

#[derive(Debug, PartialEq, Eq, Serialize)]
pub struct Memory {
    pub pid: u32,
    /// Resident set size now, in KiB.
    pub vm_rss_kib: u64,
    /// Peak resident set size over the process's life, in KiB.
    pub vm_hwm_kib: u64,
}

/// Reads VmRSS and VmHWM of `pid`.
pub fn read(pid: u32) -> anyhow::Result<Memory> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse(pid, &status).with_context(|| format!("no VmRSS/VmHWM in {path} (a kernel thread?)"))
}

/// User plus system CPU seconds `pid` has used so far.
pub fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_cpu(&stat).with_context(|| format!("no utime/stime in {path}"))
}

/// Clock ticks per second in `/proc/PID/stat`: USER_HZ, 100 on every Linux architecture.
const TICKS_PER_SECOND: f64 = 100.0;

fn parse_cpu(stat: &str) -> Option<f64> {
    // `pid (comm) state ...`: comm may hold spaces and parentheses, so count from the last
    // `)`. utime and stime are fields 14 and 15 of the line, 12th and 13th after it.
    let fields: Vec<&str> = stat
        .get(stat.rfind(')')? + 1..)?
        .split_whitespace()
        .collect();
    let ticks = |i: usize| fields.get(i)?.parse::<u64>().ok();
    Some((ticks(11)? + ticks(12)?) as f64 / TICKS_PER_SECOND)
}

fn parse(pid: u32, status: &str) -> Option<Memory> {
    // Lines look like `VmRSS:\t   10240 kB`; the kernel's "kB" is KiB.
    let field = |name: &str| {
        status.lines().find_map(|line| {
            let value = line.strip_prefix(name)?.strip_prefix(':')?;
            value.trim().strip_suffix("kB")?.trim().parse().ok()
        })
    };
    Some(Memory {
        pid,
        vm_rss_kib: field("VmRSS")?,
        vm_hwm_kib: field("VmHWM")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rss_and_peak_from_a_status_file() {
        let status =
            "Name:\tswitchboard\nVmPeak:\t  900000 kB\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\n";
        assert_eq!(
            parse(7, status),
            Some(Memory {
                pid: 7,
                vm_rss_kib: 10240,
                vm_hwm_kib: 20480
            })
        );
    }

    #[test]
    fn a_status_without_memory_lines_is_not_a_reading() {
        assert_eq!(parse(2, "Name:\tkthreadd\nState:\tS (sleeping)\n"), None);
    }

    #[test]
    fn reads_cpu_time_after_an_awkward_command_name() {
        let stat = "42 (a) b (c) S 1 42 42 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 3 0 7 0 0";
        assert_eq!(parse_cpu(stat), Some(3.25));
        assert!(cpu_seconds(std::process::id()).is_ok());
    }

    #[test]
    fn reads_this_process() {
        let memory = read(std::process::id()).expect("own status is readable");
        assert!(memory.vm_rss_kib > 0 && memory.vm_hwm_kib >= memory.vm_rss_kib);
    }
}
