//! Resident memory of a process, read from `/proc/PID/status`.

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
    fn reads_this_process() {
        let memory = read(std::process::id()).expect("own status is readable");
        assert!(memory.vm_rss_kib > 0 && memory.vm_hwm_kib >= memory.vm_rss_kib);
    }
}
