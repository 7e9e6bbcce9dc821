//! Resource limits on Linux, for real: the jail's cgroup `jailctl/NAME` in every
//! hierarchy that has a wanted controller ([`super::cgroup`] says where and what to
//! write), resource limits (`prlimit`) of its processes, and joining the jail's
//! cgroups when a process attaches. This is `sys::os::limits` on Linux; FreeBSD's is
//! `sys/freebsd/rctl.rs`, with the same functions.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::cgroup::{controls, cpuset_controls, jail_line, reset_controls, Control, Layout, Ver};
use super::cgroup::{PARENT, WANTED};
use crate::sys::limits::{linux_enforces, Applied, LimitError, Plan};

impl Layout {
    /// The host's layout, from `/proc/self/mountinfo`.
    pub fn detect() -> Layout {
        let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        Layout::parse(&info, |m| {
            fs::read_to_string(m.join("cgroup.controllers"))
                .map(|s| s.split_whitespace().map(String::from).collect())
                .unwrap_or_default()
        })
    }
}

fn write(p: &Path, v: &str) -> Result<(), LimitError> {
    fs::write(p, v).map_err(|e| LimitError::os(format!("write {v} to {}", p.display()), e))
}

fn read(p: &Path) -> String {
    fs::read_to_string(p)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// What [`apply`] will make for jail `name`: recorded in the run state before it does.
pub fn record(name: &str, _plan: &Plan) -> Applied {
    Applied {
        cgroups: Layout::detect().jail_dirs(name),
        ..Default::default()
    }
}

/// Make the jail's cgroups (again: `cap` reuses them), write `plan`'s limits, and
/// move `pids` into them; their resource limits are lowered to the plan's.
pub fn apply(name: &str, _jid: i32, pids: &[i32], plan: &Plan) -> Result<Applied, LimitError> {
    apply_in(&Layout::detect(), name, pids, plan)
}

/// [`apply`] on `layout` (a fake tree in unit tests).
pub fn apply_in(
    layout: &Layout,
    name: &str,
    pids: &[i32],
    plan: &Plan,
) -> Result<Applied, LimitError> {
    let mut out = Applied {
        cgroups: layout.jail_dirs(name),
        ..Default::default()
    };
    make_dirs(layout, name)?;
    let mut todo: Vec<(String, String, Control)> = Vec::new();
    for r in &plan.rules {
        if !linux_enforces(&r.resource) {
            tracing::warn!(resource = %r.resource, "not enforced on Linux (no equivalent)");
            out.controls.push((
                r.resource.clone(),
                r.value(),
                "not enforced on Linux".into(),
            ));
            continue;
        }
        for c in controls(layout, r)? {
            todo.push((r.resource.clone(), r.value(), c));
        }
    }
    if let Some(cpus) = &plan.cpuset {
        if layout.find("cpuset").is_none() {
            return Err(LimitError::Unsupported {
                resource: "cpuset".into(),
                why: "no cpuset cgroup controller on this host".into(),
            });
        }
        for c in cpuset_controls(Some(cpus), "") {
            todo.push(("cpuset".into(), cpus.clone(), c));
        }
    }
    for (res, rule, c) in todo {
        do_control(layout, name, pids, &c)?;
        out.controls.push((res, rule, c.describe()));
    }
    for d in &out.cgroups {
        for pid in pids {
            match fs::write(d.join("cgroup.procs"), pid.to_string()) {
                Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {}
                r => {
                    r.map_err(|e| LimitError::os(format!("move {pid} into {}", d.display()), e))?
                }
            }
        }
    }
    Ok(out)
}

/// The jails' folder and the jail's cgroup in each hierarchy; v1 cpuset cgroups get
/// their parent's CPUs and memory nodes (they start empty), v2 folders the wanted
/// controllers in `cgroup.subtree_control`.
fn make_dirs(layout: &Layout, name: &str) -> Result<(), LimitError> {
    let mut done: Vec<PathBuf> = Vec::new();
    for c in WANTED {
        let Some((ver, mount)) = layout.find(c) else {
            continue;
        };
        let parent = mount.join(PARENT);
        let dir = parent.join(name);
        if done.contains(&dir) {
            continue;
        }
        done.push(dir.clone());
        if ver == Ver::V2 {
            for ctl in layout.v2_wanted() {
                write(&mount.join("cgroup.subtree_control"), &format!("+{ctl}"))?;
            }
        }
        mkdir(&parent)?;
        if ver == Ver::V2 {
            for ctl in layout.v2_wanted() {
                write(&parent.join("cgroup.subtree_control"), &format!("+{ctl}"))?;
            }
        }
        if ver == Ver::V1 && c == "cpuset" {
            for f in ["cpuset.cpus", "cpuset.mems"] {
                if read(&parent.join(f)).is_empty() {
                    write(&parent.join(f), &read(&mount.join(f)))?;
                }
            }
        }
        mkdir(&dir)?;
        if ver == Ver::V1 && c == "cpuset" {
            for f in ["cpuset.mems", "cpuset.cpus"] {
                if read(&dir.join(f)).is_empty() {
                    write(&dir.join(f), &read(&parent.join(f)))?;
                }
            }
        }
    }
    Ok(())
}

fn mkdir(d: &Path) -> Result<(), LimitError> {
    match fs::create_dir(d) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => {
            Err(LimitError::os(format!("make cgroup {}", d.display()), e))
        }
        _ => Ok(()),
    }
}

fn do_control(layout: &Layout, name: &str, pids: &[i32], c: &Control) -> Result<(), LimitError> {
    match c {
        Control::File {
            controller,
            file,
            value,
        } => {
            let Some((_, dir)) = layout.dir(controller, name) else {
                return Ok(());
            };
            let value = if *file == "cpuset.cpus" && value.is_empty() {
                read(&dir.parent().unwrap_or(&dir).join("cpuset.cpus"))
            } else {
                value.clone()
            };
            let memsw = dir.join("memory.memsw.limit_in_bytes");
            // swap counts too: the limit is of memory, not of memory in RAM
            let raise_swap_first = *file == "memory.limit_in_bytes" && memsw.exists();
            if raise_swap_first && value == "-1" {
                write(&memsw, "-1")?;
            }
            write(&dir.join(file), &value)?;
            if raise_swap_first && value != "-1" {
                write(&memsw, &value)?;
            }
            Ok(())
        }
        Control::Rlimit {
            resource, value, ..
        } => {
            for &pid in pids {
                lower_rlimit(pid, *resource, *value, *value)
                    .map_err(|e| LimitError::os(format!("prlimit of {pid}"), e))?;
            }
            Ok(())
        }
        Control::Report => Ok(()),
    }
}

/// Lower a process's resource limit to at most `soft`/`hard` (never raised).
fn lower_rlimit(pid: i32, resource: u32, soft: u64, hard: u64) -> io::Result<()> {
    let mut old = libc::rlimit64 {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: prlimit64 reading into a local struct.
    if unsafe { libc::prlimit64(pid, resource as _, std::ptr::null(), &mut old) } != 0 {
        let e = io::Error::last_os_error();
        return if e.raw_os_error() == Some(libc::ESRCH) {
            Ok(())
        } else {
            Err(e)
        };
    }
    let new = libc::rlimit64 {
        rlim_cur: old.rlim_cur.min(soft).min(hard),
        rlim_max: old.rlim_max.min(hard),
    };
    if new.rlim_cur == old.rlim_cur && new.rlim_max == old.rlim_max {
        return Ok(());
    }
    // SAFETY: prlimit64 with a local struct; lowering needs no privilege.
    if unsafe { libc::prlimit64(pid, resource as _, &new, std::ptr::null_mut()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `uncap`: lift every cgroup limit (the cgroups stay, so that processes attached
/// later still join them). Lowered resource limits stay until a restart (raising a
/// hard limit needs CAP_SYS_RESOURCE).
pub fn reset(name: &str, _jid: i32, _rec: &Applied) -> Result<(), LimitError> {
    let layout = Layout::detect();
    let parent_cpus = layout
        .find("cpuset")
        .map(|(_, m)| read(&m.join(PARENT).join("cpuset.cpus")))
        .unwrap_or_default();
    for c in reset_controls(&layout, &parent_cpus) {
        do_control(&layout, name, &[], &c)?;
    }
    Ok(())
}

/// Remove the cgroups recorded (emptied by the jail's removal; a zombie may keep one
/// busy for a moment), and the jails' folder when no other jail uses it.
pub fn release(rec: &Applied) -> Result<(), LimitError> {
    for d in &rec.cgroups {
        let mut last = None;
        for _ in 0..400 {
            match fs::remove_dir(d) {
                Ok(()) => {
                    last = None;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    last = None;
                    break;
                }
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                    last = Some(e);
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => {
                    last = Some(e);
                    break;
                }
            }
        }
        if let Some(e) = last {
            return Err(LimitError::os(format!("remove cgroup {}", d.display()), e));
        }
        if let Some(p) = d.parent().filter(|p| p.ends_with(PARENT)) {
            let _ = fs::remove_dir(p);
        }
    }
    Ok(())
}

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

/// Called by an attaching process before it enters the jail whose init is `init`:
/// join each cgroup of ours (`jailctl/NAME`) the init is in, and take on the init's
/// resource limits where they are lower. The init's cgroups are those the host
/// moved it into; a path outside `jailctl/` is never joined.
pub fn join_jail_cgroups(init: i32) -> io::Result<()> {
    let Ok(text) = fs::read_to_string(format!("/proc/{init}/cgroup")) else {
        return Ok(());
    };
    let layout = Layout::detect();
    let mut joined = false;
    for line in text.lines() {
        let Some((ctrls, name)) = jail_line(line) else {
            continue;
        };
        let mount = if ctrls.is_empty() {
            layout.v2.as_ref().map(|(m, _)| m.as_path())
        } else {
            ctrls
                .iter()
                .find_map(|c| layout.v1.get(*c))
                .map(|m| m.as_path())
        };
        let Some(mount) = mount else { continue };
        let procs = mount.join(PARENT).join(name).join("cgroup.procs");
        fs::write(&procs, b"0").map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("joining the jail's cgroup {}: {e}", procs.display()),
            )
        })?;
        joined = true;
    }
    if joined {
        for r in [
            libc::RLIMIT_NOFILE,
            libc::RLIMIT_MEMLOCK,
            libc::RLIMIT_STACK,
            libc::RLIMIT_CORE,
            libc::RLIMIT_AS,
            libc::RLIMIT_DATA,
        ] {
            let mut lim = libc::rlimit64 {
                rlim_cur: 0,
                rlim_max: 0,
            };
            // SAFETY: prlimit64 reading the init's limit into a local struct.
            if unsafe { libc::prlimit64(init, r, std::ptr::null(), &mut lim) } == 0 {
                lower_rlimit(0, r as _, lim.rlim_cur, lim.rlim_max)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::limits::Rule;

    /// The cgroup v2 path against a fake unified tree.
    #[test]
    fn v2_limits_in_a_fake_tree() {
        let t = tempfile::tempdir().unwrap();
        let m = t.path().to_path_buf();
        let layout = Layout {
            v1: Default::default(),
            v2: Some((
                m.clone(),
                ["cpuset", "cpu", "io", "memory", "pids"]
                    .map(String::from)
                    .to_vec(),
            )),
        };
        let plan = Plan {
            rules: vec![
                Rule::parse("memoryuse", "64M:deny").unwrap().unwrap(),
                Rule::parse("maxproc", "5:deny").unwrap().unwrap(),
                Rule::parse("pcpu", "50:deny").unwrap().unwrap(),
                Rule::parse("wallclock", "60:deny").unwrap().unwrap(),
            ],
            cpuset: Some("0".into()),
        };
        let a = apply_in(&layout, "ioc-x", &[], &plan).unwrap();
        let d = m.join("jailctl/ioc-x");
        assert_eq!(a.cgroups.as_slice(), std::slice::from_ref(&d));
        let r = |p: &Path| fs::read_to_string(p).unwrap();
        assert_eq!(r(&d.join("memory.max")), "67108864");
        assert_eq!(r(&d.join("pids.max")), "5");
        assert_eq!(r(&d.join("cpu.max")), "50000 100000");
        assert_eq!(r(&d.join("cpuset.cpus")), "0");
        // the last controller written; each was enabled in the root and the folder
        assert_eq!(r(&m.join("cgroup.subtree_control")), "+cpuset");
        assert_eq!(r(&m.join("jailctl/cgroup.subtree_control")), "+cpuset");
        assert!(a
            .controls
            .iter()
            .any(|(res, _, c)| res == "wallclock" && c == "not enforced on Linux"));
        assert!(a
            .controls
            .contains(&("maxproc".into(), "5:deny".into(), "pids.max=5".into())));
        // applied again (cap): the same directory, the same values
        let b = apply_in(&layout, "ioc-x", &[], &plan).unwrap();
        assert_eq!(a, b);
    }
}
