//! Reading a jail's limits and consumption back (`limits`, `inuse`) on Linux: the
//! cgroups' files and /proc. Part of `sys::os::limits` ([`super::cgroup_fs`]).

use std::fs;

use super::cgroup::Layout;
use super::cgroup_fs::read;
use crate::sys::limits::Applied;

/// The limits in force, read back from the cgroups: `(resource, rule, control)`.
pub fn current(rec: &Applied) -> Vec<(String, String, String)> {
    let layout = Layout::detect();
    rec.controls
        .iter()
        .map(|(res, rule, ctl)| {
            let now = ctl
                .split_once('=')
                .and_then(|(f, _)| {
                    let ctrl = f.split('.').next()?;
                    let name = rec.cgroups.first()?.file_name()?.to_str()?;
                    let (_, dir) = layout.dir(ctrl, name)?;
                    let v = read(&dir.join(f));
                    (!v.is_empty()).then(|| format!("{f}={v}"))
                })
                .unwrap_or_else(|| ctl.clone());
            (res.clone(), rule.clone(), now)
        })
        .collect()
}

/// Consumption of the jail whose processes are `pids`: summed from /proc (resident
/// memory, processes, CPU time, open files) and, with limits applied, the cgroup's
/// own counters.
pub fn usage(_name: &str, rec: Option<&Applied>, pids: &[i32]) -> Vec<(String, String)> {
    // SAFETY: sysconf with constant arguments.
    let (page, tick) = unsafe {
        (
            libc::sysconf(libc::_SC_PAGESIZE).max(1) as u64,
            libc::sysconf(libc::_SC_CLK_TCK).max(1) as u64,
        )
    };
    let (mut rss, mut ticks, mut files, mut n) = (0u64, 0u64, 0u64, 0u64);
    for pid in pids {
        let Ok(statm) = fs::read_to_string(format!("/proc/{pid}/statm")) else {
            continue;
        };
        n += 1;
        rss += statm
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0)
            * page;
        if let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) {
            if let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) {
                let f: Vec<&str> = rest.split_whitespace().collect();
                // utime and stime: fields 14 and 15 (indexes 11 and 12 after comm)
                for i in [11, 12] {
                    ticks += f.get(i).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
                }
            }
        }
        files += fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|d| d.count() as u64)
            .unwrap_or(0);
    }
    let mut out = vec![
        ("memoryuse".to_string(), rss.to_string()),
        ("maxproc".into(), n.to_string()),
        ("cputime".into(), (ticks / tick).to_string()),
        ("openfiles".into(), files.to_string()),
    ];
    if let Some(name) = rec.and_then(|r| r.cgroups.first()?.file_name()?.to_str()) {
        let layout = Layout::detect();
        let mut get = |ctrl: &str, files: &[&str], key: &str| {
            if let Some((_, dir)) = layout.dir(ctrl, name) {
                if let Some(v) = files
                    .iter()
                    .map(|f| read(&dir.join(f)))
                    .find(|v| !v.is_empty())
                {
                    out.push((key.to_string(), v.replace('\n', ",")));
                }
            }
        };
        get(
            "memory",
            &["memory.usage_in_bytes", "memory.current"],
            "cgroup.memory",
        );
        get(
            "memory",
            &["memory.failcnt", "memory.events"],
            "cgroup.memory.events",
        );
        get("pids", &["pids.current"], "cgroup.pids");
        get("cpuacct", &["cpuacct.usage"], "cgroup.cpu_ns");
    }
    out
}
