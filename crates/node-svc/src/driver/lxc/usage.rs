//! Reading a running guest's usage from the host: its init process found in one /proc
//! scan, CPU and memory from its cgroups, traffic from its network namespace, disk from its
//! image or root directory.

use std::path::{Path, PathBuf};

/// Init processes of the running containers under `path`, by container name, from one scan
/// of /proc: the child of each `[lxc monitor] PATH NAME` process.
pub(super) fn running_inits(path: &str) -> std::collections::HashMap<String, u32> {
    let prefix = format!("[lxc monitor] {path} ");
    let own_namespace = std::fs::read_link("/proc/self/ns/pid").ok();
    let mut monitors: std::collections::HashMap<u32, String> = std::collections::HashMap::new();
    let mut parents: Vec<(u32, u32)> = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Default::default();
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) {
            let title = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if let Some(name) = title.trim_end().strip_prefix(&prefix) {
                // Processes inside containers can title themselves like a monitor; only
                // one in the host's own PID namespace is real.
                let ours = std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok() == own_namespace;
                if ours {
                    monitors.insert(pid, name.to_owned());
                }
                continue;
            }
        }
        let ppid = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|stat| {
                let after = &stat[stat.rfind(')')? + 2..];
                after.split_whitespace().nth(1)?.parse::<u32>().ok()
            });
        if let Some(ppid) = ppid {
            parents.push((pid, ppid));
        }
    }
    // A name claimed by more than one monitor or child is left to `lxc-info` to settle.
    let mut found: std::collections::HashMap<String, Option<u32>> =
        std::collections::HashMap::new();
    for (pid, ppid) in parents {
        if let Some(name) = monitors.get(&ppid) {
            found
                .entry(name.clone())
                .and_modify(|p| *p = None)
                .or_insert(Some(pid));
        }
    }
    found
        .into_iter()
        .filter_map(|(name, pid)| pid.map(|p| (name, p)))
        .collect()
}

pub(super) fn read_u64(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path)
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The cgroup directory of `pid` for `controller` (v1) or the unified one (v2).
pub(super) fn cgroup_dir(pid: u32, controller: &str) -> Option<PathBuf> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        if controllers.is_empty() {
            return Some(PathBuf::from(format!("/sys/fs/cgroup{path}")));
        }
        if controllers.split(',').any(|c| c == controller) {
            return Some(PathBuf::from(format!("/sys/fs/cgroup/{controller}{path}")));
        }
    }
    None
}

pub(super) fn cpu_time_ns(pid: u32) -> u64 {
    if let Some(dir) = cgroup_dir(pid, "cpuacct")
        && let Some(ns) = read_u64(&dir.join("cpuacct.usage"))
    {
        return ns;
    }
    cgroup_dir(pid, "cpu")
        .and_then(|dir| std::fs::read_to_string(dir.join("cpu.stat")).ok())
        .and_then(|stat| {
            stat.lines().find_map(|l| {
                l.strip_prefix("usage_usec ")
                    .and_then(|v| v.trim().parse::<u64>().ok())
            })
        })
        .map_or(0, |usec| usec * 1000)
}

pub(super) fn memory(pid: u32) -> (u64, Option<u64>) {
    let Some(dir) = cgroup_dir(pid, "memory") else {
        return (0, None);
    };
    let used = read_u64(&dir.join("memory.usage_in_bytes"))
        .or_else(|| read_u64(&dir.join("memory.current")))
        .unwrap_or(0);
    let limit = read_u64(&dir.join("memory.limit_in_bytes"))
        .or_else(|| read_u64(&dir.join("memory.max")))
        .filter(|l| *l < (1 << 60));
    (used, limit)
}

/// Received and sent bytes of every interface but `lo`, as the container's own network
/// namespace counts them.
pub(super) fn network(pid: u32) -> (u64, u64) {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/dev")) else {
        return (0, 0);
    };
    text.lines()
        .skip(2)
        .filter_map(|line| {
            let (iface, rest) = line.split_once(':')?;
            if iface.trim() == "lo" {
                return None;
            }
            let fields: Vec<u64> = rest
                .split_whitespace()
                .filter_map(|f| f.parse().ok())
                .collect();
            Some((*fields.first()?, *fields.get(8)?))
        })
        .fold((0, 0), |(rx, tx), (r, t)| (rx + r, tx + t))
}

/// Bytes read and written by the guest's processes on block devices, from its cgroup
/// (`io.stat` on cgroup v2, `blkio` on v1).
pub(super) fn disk_io(pid: u32) -> (u64, u64) {
    if let Some(dir) = cgroup_dir(pid, "io")
        && let Ok(text) = std::fs::read_to_string(dir.join("io.stat"))
    {
        return io_stat(&text);
    }
    cgroup_dir(pid, "blkio")
        .and_then(|dir| std::fs::read_to_string(dir.join("blkio.throttle.io_service_bytes")).ok())
        .map_or((0, 0), |text| blkio(&text))
}

/// `MAJ:MIN rbytes=N wbytes=N rios=N ...` per device.
fn io_stat(text: &str) -> (u64, u64) {
    let mut total = (0u64, 0u64);
    for field in text.split_whitespace() {
        if let Some(v) = field
            .strip_prefix("rbytes=")
            .and_then(|v| v.parse::<u64>().ok())
        {
            total.0 = total.0.saturating_add(v);
        } else if let Some(v) = field
            .strip_prefix("wbytes=")
            .and_then(|v| v.parse::<u64>().ok())
        {
            total.1 = total.1.saturating_add(v);
        }
    }
    total
}

/// `MAJ:MIN Read N` / `MAJ:MIN Write N` lines.
fn blkio(text: &str) -> (u64, u64) {
    let mut total = (0u64, 0u64);
    for line in text.lines() {
        let mut parts = line.split_whitespace();
        let (Some(_), Some(op), Some(v)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let Ok(v) = v.parse::<u64>() else { continue };
        match op {
            "Read" => total.0 = total.0.saturating_add(v),
            "Write" => total.1 = total.1.saturating_add(v),
            _ => {}
        }
    }
    total
}

pub(super) fn uptime_secs(pid: u32) -> u64 {
    let ticks_per_sec = 100.0; // USER_HZ on Linux
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    let Some(after_comm) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
        return 0;
    };
    let start_ticks: f64 = after_comm
        .split_whitespace()
        .nth(19)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    let system_up: f64 = std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|u| u.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0.0);
    (system_up - start_ticks / ticks_per_sec).max(0.0) as u64
}

/// Entries looked at per container at most, so a guest with millions of files cannot tie
/// up the scan; beyond it the figure is a lower bound.
pub(super) const DISK_SCAN_LIMIT: usize = 200_000;

/// A guest's disk use: the blocks its image holds, or the files of its root directory.
pub(super) fn guest_disk_bytes(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt as _;
    match std::fs::metadata(dir.join("rootdev")) {
        Ok(image) => image.blocks() * 512,
        Err(_) => disk_bytes(&dir.join("rootfs")),
    }
}

pub(super) fn disk_bytes(root: &Path) -> u64 {
    let mut total = 0;
    let mut seen = 0usize;
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        if seen >= DISK_SCAN_LIMIT {
            break;
        }
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            seen += 1;
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                stack.push(entry.path());
            } else if meta.is_file() {
                total += meta.len();
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_counters_sum_every_device() {
        let v2 = "8:0 rbytes=1000 wbytes=20 rios=3 wios=1 dbytes=0 dios=0\n253:1 rbytes=5 wbytes=7 rios=1 wios=1\n";
        assert_eq!(io_stat(v2), (1005, 27));
        let v1 = "8:0 Read 4096\n8:0 Write 512\n8:0 Sync 0\nTotal 4608\n";
        assert_eq!(blkio(v1), (4096, 512));
    }

    #[test]
    fn interface_counters_skip_loopback() {
        // Parsing is exercised against this process's own namespace: it must not panic and
        // must ignore `lo`.
        let (rx, tx) = network(std::process::id());
        assert!(rx < u64::MAX && tx < u64::MAX);
    }
}
