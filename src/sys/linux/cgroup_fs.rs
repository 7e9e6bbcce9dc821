//! Resource limits on Linux, for real: the jail's cgroup `jailctl/NAME` in every
//! hierarchy that has a wanted controller ([`super::cgroup`] says where and what to
//! write), resource limits (`prlimit`) of its processes, and joining the jail's
//! cgroups when a process attaches. This is `sys::os::limits` on Linux; FreeBSD's is
//! `sys/freebsd/rctl.rs`, with the same functions.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::cgroup::{controls, cpuset_controls, reset_controls, Control, Layout, Ver};
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

pub(super) fn read(p: &Path) -> String {
    fs::read_to_string(p)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// What [`prepare`] will make for jail `name`: recorded in the run state before it does.
pub fn record(name: &str, _plan: &Plan) -> Applied {
    Applied {
        cgroups: Layout::detect().jail_dirs(name),
        ..Default::default()
    }
}

/// Before the jail is made: its cgroups, at their defaults (no limit), for its init
/// to join before it makes its namespaces. A cgroup of that name that is already
/// there is not ours: refused, and dropped from `rec` so that the undo leaves it.
pub fn prepare(name: &str, rec: &mut Applied) -> Result<(), LimitError> {
    make_dirs(&Layout::detect(), name, rec)
}

/// Write `plan`'s limits over those in force in the jail's cgroups (checked first,
/// restored if a write fails; controls the plan no longer has are lifted), and lower
/// the resource limits of `pids` to the plan's. An empty plan lifts every limit.
pub fn apply(
    name: &str,
    _jid: i32,
    pids: &[i32],
    plan: &Plan,
    _prev: Option<&Applied>,
) -> Result<Applied, LimitError> {
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
    for d in &out.cgroups {
        if !d.is_dir() {
            return Err(LimitError::Unsupported {
                resource: "limits".into(),
                why: format!(
                    "the jail's cgroup {} is missing (started before limits existed?): restart the jail",
                    d.display()
                ),
            });
        }
    }
    // the whole plan first: every control must exist before anything is written
    let mut todo: Vec<(String, String, Control)> = Vec::new();
    for r in &plan.rules {
        if !linux_enforces(&r.resource) {
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
    let parent_cpus = layout
        .find("cpuset")
        .map(|(_, m)| {
            let p = m.join(PARENT);
            let e = read(&p.join("cpuset.cpus.effective"));
            if e.is_empty() {
                read(&p.join("cpuset.cpus"))
            } else {
                e
            }
        })
        .unwrap_or_default();
    if let Some(cpus) = &plan.cpuset {
        if layout.find("cpuset").is_none() {
            return Err(LimitError::Unsupported {
                resource: "cpuset".into(),
                why: "no cpuset cgroup controller on this host".into(),
            });
        }
        let (want, have) = (cpu_set(cpus), cpu_set(&parent_cpus));
        if want.is_empty() || !want.iter().all(|c| have.contains(c)) {
            return Err(LimitError::Unsupported {
                resource: "cpuset".into(),
                why: format!("CPUs {cpus} are not among the host's ({parent_cpus})"),
            });
        }
        for c in cpuset_controls(Some(cpus), "") {
            todo.push(("cpuset".into(), cpus.clone(), c));
        }
    }
    let mut writes: Vec<(PathBuf, String)> = Vec::new();
    let mut rlimits = Vec::new();
    for (res, rule, c) in &todo {
        match c {
            Control::File {
                controller,
                file,
                value,
            } => {
                if let Some((_, dir)) = layout.dir(controller, name) {
                    writes.push((dir.join(file), value.clone()));
                }
            }
            Control::Rlimit {
                resource, value, ..
            } => rlimits.push((*resource, *value)),
            Control::Report => {}
        }
        out.controls.push((res.clone(), rule.clone(), c.describe()));
    }
    // then what the plan no longer has is lifted
    for c in reset_controls(layout, &parent_cpus) {
        if let Control::File {
            controller,
            file,
            value,
        } = c
        {
            if let Some((_, dir)) = layout.dir(controller, name) {
                let p = dir.join(file);
                if !writes.iter().any(|(q, _)| *q == p) {
                    writes.push((p, value));
                }
            }
        }
    }
    let mut done: Vec<(PathBuf, String)> = Vec::new();
    for (p, v) in &writes {
        if let Err(e) = write_ordered(p, v, &mut done) {
            for (p, old) in done.iter().rev() {
                if let Err(e) = fs::write(p, old) {
                    tracing::warn!(file = %p.display(), error = %e, "restoring a limit failed");
                }
            }
            return Err(e);
        }
    }
    for (r, v) in rlimits {
        for &pid in pids {
            lower_rlimit(pid, r, v, v)
                .map_err(|e| LimitError::os(format!("prlimit of {pid}"), e))?;
        }
    }
    Ok(out)
}

/// Write `v` to `p`, its old value pushed to `done`; a v1 memory limit moves with its
/// memory+swap limit, which must stay at least as high (raised first, lowered after).
fn write_ordered(p: &Path, v: &str, done: &mut Vec<(PathBuf, String)>) -> Result<(), LimitError> {
    let mut one = |p: &Path, v: &str| -> Result<(), LimitError> {
        let old = read(p);
        write(p, v)?;
        done.push((p.to_path_buf(), old));
        Ok(())
    };
    let memsw = p.with_file_name("memory.memsw.limit_in_bytes");
    if !p.ends_with("memory.limit_in_bytes") || !memsw.exists() {
        return one(p, v);
    }
    let num = |s: &str| {
        s.parse::<i64>()
            .map(|n| if n < 0 { i64::MAX } else { n })
            .unwrap_or(i64::MAX)
    };
    if num(v) > num(&read(p)) {
        one(&memsw, v)?;
        one(p, v)
    } else {
        one(p, v)?;
        one(&memsw, v)
    }
}

/// The CPUs of a list such as `0,2-3`.
fn cpu_set(list: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for part in list.trim().split(',').filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        if let (Ok(a), Ok(b)) = (a.trim().parse::<u32>(), b.trim().parse::<u32>()) {
            out.extend(a..=b.min(a.saturating_add(4096)));
        }
    }
    out
}

/// The jails' folder and the jail's cgroup in each hierarchy; v1 cpuset cgroups get
/// their parent's CPUs and memory nodes (they start empty), v2 folders the wanted
/// controllers in `cgroup.subtree_control`. What is changed is added to `rec`.
fn make_dirs(layout: &Layout, name: &str, rec: &mut Applied) -> Result<(), LimitError> {
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
            enable_v2(layout, mount, rec)?;
        }
        if mkdir(&parent)? {
            mark_ours(&parent);
            rec.made_parents.push(parent.clone());
        }
        if ver == Ver::V2 {
            enable_v2(layout, &parent, rec)?;
        }
        if ver == Ver::V1 && c == "cpuset" {
            for f in ["cpuset.cpus", "cpuset.mems"] {
                let have = read(&mount.join(f));
                if read(&parent.join(f)) != have {
                    write(&parent.join(f), &have)?;
                }
            }
        }
        if !mkdir(&dir)? {
            rec.cgroups.retain(|d| *d != dir);
            return Err(LimitError::Unsupported {
                resource: "limits".into(),
                why: format!("cgroup {} is there already and is not this start's: remove it (rmdir) if no jail uses it", dir.display()),
            });
        }
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

/// Enable the wanted v2 controllers in `dir`'s `cgroup.subtree_control`, recording
/// each one this enabled.
fn enable_v2(layout: &Layout, dir: &Path, rec: &mut Applied) -> Result<(), LimitError> {
    let f = dir.join("cgroup.subtree_control");
    let on = read(&f);
    for ctl in layout.v2_wanted() {
        if on.split_whitespace().any(|c| c == ctl) {
            continue;
        }
        write(&f, &format!("+{ctl}"))?;
        rec.subtree.push((f.clone(), ctl.to_string()));
    }
    Ok(())
}

/// The extended attribute that marks a jails' folder (`jailctl`) as made by us: any
/// start may remove it once it is empty; one without it (an administrator's) stays.
const MARK: &std::ffi::CStr = c"trusted.jailctl.made";

fn mark_ours(d: &Path) {
    let Ok(p) = std::ffi::CString::new(d.as_os_str().as_encoded_bytes()) else {
        return;
    };
    // SAFETY: setxattr with valid NUL-terminated strings and a 1-byte value.
    if unsafe { libc::setxattr(p.as_ptr(), MARK.as_ptr(), b"1".as_ptr().cast(), 1, 0) } != 0 {
        let e = io::Error::last_os_error();
        tracing::info!(folder = %d.display(), error = %e, "cannot mark the jails' cgroup folder: it will stay");
    }
}

fn is_ours(d: &Path) -> bool {
    let Ok(p) = std::ffi::CString::new(d.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    let mut v = [0u8; 4];
    // SAFETY: getxattr into a local buffer of the length given.
    let n = unsafe { libc::getxattr(p.as_ptr(), MARK.as_ptr(), v.as_mut_ptr().cast(), v.len()) };
    n == 1 && v[0] == b'1'
}

/// Make cgroup `d`: `false` when it was there already.
fn mkdir(d: &Path) -> Result<bool, LimitError> {
    match fs::create_dir(d) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(LimitError::os(format!("make cgroup {}", d.display()), e)),
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
    }
    // the jails' folders this start made, once no other jail uses them, and then
    // the controllers it enabled for them
    let mut gone = Vec::new();
    let mut parents: Vec<PathBuf> = rec.made_parents.clone();
    for d in &rec.cgroups {
        if let Some(p) = d
            .parent()
            .filter(|p| is_ours(p) && !parents.iter().any(|q| q == p))
        {
            parents.push(p.to_path_buf());
        }
    }
    for p in &parents {
        if (is_ours(p) && fs::remove_dir(p).is_ok()) || !p.exists() {
            gone.push(p.clone());
        }
    }
    for (f, ctl) in rec.subtree.iter().rev() {
        let below = f.parent().map(|d| d.join(PARENT));
        let folder_gone = gone
            .iter()
            .any(|g| Some(g) == below.as_ref() || f.starts_with(g));
        if folder_gone && f.exists() {
            if let Err(e) = fs::write(f, format!("-{ctl}")) {
                tracing::info!(file = %f.display(), error = %e, "controller left enabled (in use)");
            }
        }
    }
    Ok(())
}

pub use super::cgroup_read::{current, usage};

/// The resource limits of process `pid` that jails' limits set (soft, hard).
pub fn rlimits_of(pid: i32) -> Vec<(u32, u64, u64)> {
    let mut out = Vec::new();
    for r in RLIMITS {
        let mut lim = libc::rlimit64 {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: prlimit64 reading a process's limit into a local struct.
        if unsafe { libc::prlimit64(pid, r, std::ptr::null(), &mut lim) } == 0 {
            out.push((r as u32, lim.rlim_cur, lim.rlim_max));
        }
    }
    out
}

/// Lower our own resource limits to `lims` (from [`rlimits_of`]).
pub fn lower_rlimits(lims: &[(u32, u64, u64)]) -> io::Result<()> {
    for &(r, soft, hard) in lims {
        lower_rlimit(0, r, soft, hard)?;
    }
    Ok(())
}

const RLIMITS: [libc::__rlimit_resource_t; 6] = [
    libc::RLIMIT_NOFILE,
    libc::RLIMIT_MEMLOCK,
    libc::RLIMIT_STACK,
    libc::RLIMIT_CORE,
    libc::RLIMIT_AS,
    libc::RLIMIT_DATA,
];

/// The jail `name`'s resource-limit cgroups that exist (made by `jailctl` before
/// the jail): the jail layer records them at creation, its init joins them before
/// it makes its namespaces, and every process attaching later joins them too.
pub fn existing_dirs(name: &str) -> Vec<PathBuf> {
    if name.is_empty() || name.contains('/') || name.starts_with('.') {
        return Vec::new();
    }
    Layout::detect()
        .jail_dirs(name)
        .into_iter()
        .filter(|d| d.is_dir())
        .collect()
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
        let mut rec = Applied::default();
        make_dirs(&layout, "ioc-x", &mut rec).unwrap();
        assert_eq!(rec.made_parents, [m.join("jailctl")]);
        assert!(rec
            .subtree
            .contains(&(m.join("cgroup.subtree_control"), "pids".to_string())));
        // a cgroup of that name already there is not adopted
        assert!(make_dirs(&layout, "ioc-x", &mut Applied::default()).is_err());
        fs::write(m.join("jailctl/cpuset.cpus.effective"), "0-1").unwrap();
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
