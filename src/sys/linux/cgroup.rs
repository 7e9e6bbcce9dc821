//! Cgroups of jails with resource limits: where the controllers are (v1 hierarchies
//! or the unified v2 hierarchy, either or a mix), the directory of a jail's cgroup in
//! each (`MOUNT/jailctl/ioc-UUID`), and which control file each rctl(8) resource maps
//! to. Pure logic, unit-tested; [`super::cgroup_fs`] makes the directories and writes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::sys::limits::{Action, LimitError, Rule};

/// The folder of the jails' cgroups under each hierarchy's root.
pub const PARENT: &str = "jailctl";

/// The controllers a jail's cgroup is made in (those the host has): the limited ones
/// and `cpuacct` for the CPU time `inuse` reports.
pub const WANTED: [&str; 5] = ["memory", "pids", "cpu", "cpuacct", "cpuset"];

/// A cgroup hierarchy version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ver {
    V1,
    V2,
}

/// Where the host's controllers are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Layout {
    /// v1: controller → mount point of its hierarchy.
    pub v1: BTreeMap<String, PathBuf>,
    /// v2: the unified hierarchy's mount point and the controllers it offers.
    pub v2: Option<(PathBuf, Vec<String>)>,
}

impl Layout {
    /// From `/proc/self/mountinfo`; `v2_controllers` reads a v2 mount's
    /// `cgroup.controllers`.
    pub fn parse(mountinfo: &str, v2_controllers: impl Fn(&Path) -> Vec<String>) -> Layout {
        let mut l = Layout::default();
        for line in mountinfo.lines() {
            let Some((left, right)) = line.split_once(" - ") else {
                continue;
            };
            let Some(mnt) = left.split_whitespace().nth(4) else {
                continue;
            };
            let mut r = right.split_whitespace();
            let (Some(fstype), _, Some(opts)) = (r.next(), r.next(), r.next()) else {
                continue;
            };
            let mnt = PathBuf::from(mnt);
            match fstype {
                "cgroup" => {
                    for o in opts.split(',') {
                        if WANTED.contains(&o) || o == "blkio" {
                            l.v1.entry(o.to_string()).or_insert_with(|| mnt.clone());
                        }
                    }
                }
                "cgroup2" if l.v2.is_none() => {
                    let c = v2_controllers(&mnt);
                    l.v2 = Some((mnt, c));
                }
                _ => {}
            }
        }
        l
    }

    /// The hierarchy that has `controller`: v1 first (a controller bound to a v1
    /// hierarchy is absent from v2), then v2.
    pub fn find(&self, controller: &str) -> Option<(Ver, &Path)> {
        if let Some(m) = self.v1.get(controller) {
            return Some((Ver::V1, m));
        }
        match &self.v2 {
            Some((m, cs)) if cs.iter().any(|c| c == controller) => Some((Ver::V2, m)),
            // v2 accounts CPU time in the cpu controller (cpu.stat)
            Some((m, cs)) if controller == "cpuacct" && cs.iter().any(|c| c == "cpu") => {
                Some((Ver::V2, m))
            }
            _ => None,
        }
    }

    /// The v2 controllers a jail's cgroup uses (enabled in `cgroup.subtree_control`
    /// of the root and of [`PARENT`]).
    pub fn v2_wanted(&self) -> Vec<&'static str> {
        WANTED
            .iter()
            .copied()
            .filter(|c| *c != "cpuacct" && matches!(self.find(c), Some((Ver::V2, _))))
            .collect()
    }

    /// The directories of jail `name`'s cgroup, one per hierarchy (v1 hierarchies that
    /// bind several controllers appear once).
    pub fn jail_dirs(&self, name: &str) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = Vec::new();
        for c in WANTED {
            if let Some((_, m)) = self.find(c) {
                let d = m.join(PARENT).join(name);
                if !out.contains(&d) {
                    out.push(d);
                }
            }
        }
        out
    }

    /// The directory of `name`'s cgroup in `controller`'s hierarchy.
    pub fn dir(&self, controller: &str, name: &str) -> Option<(Ver, PathBuf)> {
        self.find(controller)
            .map(|(v, m)| (v, m.join(PARENT).join(name)))
    }
}

/// One thing to do for a limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    /// Write `value` to `file` in the jail's cgroup of `controller`.
    File {
        controller: &'static str,
        file: &'static str,
        value: String,
    },
    /// Set a resource limit (soft and hard, never raised) of the jail's processes.
    Rlimit {
        name: &'static str,
        resource: u32,
        value: u64,
    },
    /// Recorded and reported by `limits`/`inuse`, not enforced (`log` where Linux
    /// has no soft limit).
    Report,
}

impl Control {
    /// As `limits` shows it.
    pub fn describe(&self) -> String {
        match self {
            Control::File { file, value, .. } => format!("{file}={value}"),
            Control::Rlimit { name, value, .. } => format!("{name}={value}"),
            Control::Report => "reported only".into(),
        }
    }
}

fn file(controller: &'static str, file: &'static str, value: impl ToString) -> Control {
    Control::File {
        controller,
        file,
        value: value.to_string(),
    }
}

/// The controls of one rule on `layout`; a resource Linux has no control for is
/// [`LimitError::Unsupported`], as is a controller the host lacks.
pub fn controls(layout: &Layout, r: &Rule) -> Result<Vec<Control>, LimitError> {
    let unsupported = |why: &str| LimitError::Unsupported {
        resource: r.resource.clone(),
        why: why.to_string(),
    };
    let ver = |c: &str| {
        layout
            .find(c)
            .map(|(v, _)| v)
            .ok_or_else(|| unsupported(&format!("no {c} cgroup controller on this host")))
    };
    if let Action::Signal(sig) = &r.action {
        return Err(unsupported(&format!(
            "sig{sig}: Linux cgroups cannot send a signal at a limit: use deny or log"
        )));
    }
    let hard = r.action.enforcing();
    let rlimit = |name: &'static str, resource: u32| {
        Ok(vec![if hard {
            Control::Rlimit {
                name,
                resource,
                value: r.amount,
            }
        } else {
            Control::Report
        }])
    };
    let n = r.amount;
    match r.resource.as_str() {
        "memoryuse" => Ok(match (ver("memory")?, hard) {
            (Ver::V1, true) => vec![file("memory", "memory.limit_in_bytes", n)],
            // log: monitored only (inuse shows the cgroup's usage and events)
            (_, false) => vec![Control::Report],
            (Ver::V2, true) => vec![file("memory", "memory.max", n)],
        }),
        "maxproc" | "nthr" => Ok(if hard {
            ver("pids")?;
            vec![file("pids", "pids.max", n)]
        } else {
            vec![Control::Report]
        }),
        "pcpu" => Ok(match (ver("cpu")?, hard || r.action == Action::Throttle) {
            (_, false) => vec![Control::Report],
            (Ver::V1, true) => vec![
                file("cpu", "cpu.cfs_period_us", 100_000),
                file("cpu", "cpu.cfs_quota_us", n.max(1) * 1000),
            ],
            (Ver::V2, true) => vec![file(
                "cpu",
                "cpu.max",
                format!("{} 100000", n.max(1) * 1000),
            )],
        }),
        "vmemoryuse" => rlimit("RLIMIT_AS", libc::RLIMIT_AS),
        "memorylocked" => rlimit("RLIMIT_MEMLOCK", libc::RLIMIT_MEMLOCK),
        "datasize" => rlimit("RLIMIT_DATA", libc::RLIMIT_DATA),
        "stacksize" => rlimit("RLIMIT_STACK", libc::RLIMIT_STACK),
        "coredumpsize" => rlimit("RLIMIT_CORE", libc::RLIMIT_CORE),
        "openfiles" => rlimit("RLIMIT_NOFILE", libc::RLIMIT_NOFILE),
        _ => Err(unsupported("Linux has no equivalent")),
    }
}

/// The controls that pin the jail to CPU list `cpus` (`None`: every CPU its parent
/// has, `parent_cpus`).
pub fn cpuset_controls(cpus: Option<&str>, parent_cpus: &str) -> Vec<Control> {
    vec![file("cpuset", "cpuset.cpus", cpus.unwrap_or(parent_cpus))]
}

/// The controls that lift every limit (`uncap`), for the controllers the host has.
pub fn reset_controls(layout: &Layout, parent_cpus: &str) -> Vec<Control> {
    let mut out = Vec::new();
    match layout.find("memory").map(|x| x.0) {
        Some(Ver::V1) => {
            out.push(file("memory", "memory.soft_limit_in_bytes", -1));
            out.push(file("memory", "memory.limit_in_bytes", -1));
        }
        Some(Ver::V2) => {
            out.push(file("memory", "memory.high", "max"));
            out.push(file("memory", "memory.max", "max"));
        }
        None => {}
    }
    if layout.find("pids").is_some() {
        out.push(file("pids", "pids.max", "max"));
    }
    match layout.find("cpu").map(|x| x.0) {
        Some(Ver::V1) => out.push(file("cpu", "cpu.cfs_quota_us", -1)),
        Some(Ver::V2) => out.push(file("cpu", "cpu.max", "max 100000")),
        None => {}
    }
    if layout.find("cpuset").is_some() {
        out.extend(cpuset_controls(None, parent_cpus));
    }
    out
}

/// A line of `/proc/PID/cgroup` that names a jail's cgroup of ours: the hierarchy
/// (`v1` controllers, empty for v2) and the jail's name. Anything else (another
/// cgroup, a path with more components, `..`) is `None`: an attaching process joins
/// only `/jailctl/NAME`.
pub fn jail_line(line: &str) -> Option<(Vec<&str>, &str)> {
    let mut f = line.splitn(3, ':');
    let (_id, ctrls, path) = (f.next()?, f.next()?, f.next()?);
    let name = path
        .strip_prefix('/')?
        .strip_prefix(PARENT)?
        .strip_prefix('/')?;
    let ok = !name.is_empty()
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    ok.then(|| (ctrls.split(',').filter(|c| !c.is_empty()).collect(), name))
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1_INFO: &str = "\
30 25 0:26 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
33 30 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
34 30 0:30 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
35 30 0:31 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids
36 30 0:32 / /sys/fs/cgroup/cpuset rw - cgroup cgroup rw,cpuset
37 30 0:33 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd
";

    #[test]
    fn v1_hierarchies_win_over_an_empty_unified_one() {
        let l = Layout::parse(V1_INFO, |_| vec![]);
        assert_eq!(
            l.find("memory"),
            Some((Ver::V1, Path::new("/sys/fs/cgroup/memory")))
        );
        assert_eq!(
            l.jail_dirs("ioc-x"),
            [
                "/sys/fs/cgroup/memory/jailctl/ioc-x",
                "/sys/fs/cgroup/pids/jailctl/ioc-x",
                "/sys/fs/cgroup/cpu,cpuacct/jailctl/ioc-x",
                "/sys/fs/cgroup/cpuset/jailctl/ioc-x",
            ]
            .map(PathBuf::from)
        );
        assert!(l.v2_wanted().is_empty());
    }

    #[test]
    fn unified_only() {
        let info = "31 25 0:27 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        let l = Layout::parse(info, |_| {
            vec!["cpu".into(), "memory".into(), "pids".into(), "io".into()]
        });
        assert_eq!(
            l.jail_dirs("ioc-x"),
            [PathBuf::from("/sys/fs/cgroup/jailctl/ioc-x")]
        );
        assert_eq!(l.v2_wanted(), ["memory", "pids", "cpu"]);
        let r = Rule::parse("memoryuse", "64M:deny").unwrap().unwrap();
        assert_eq!(
            controls(&l, &r).unwrap()[0].describe(),
            "memory.max=67108864"
        );
        let r = Rule::parse("memoryuse", "64M:log").unwrap().unwrap();
        assert_eq!(controls(&l, &r).unwrap()[0].describe(), "reported only");
        let r = Rule::parse("pcpu", "50:deny").unwrap().unwrap();
        assert_eq!(
            controls(&l, &r).unwrap()[0].describe(),
            "cpu.max=50000 100000"
        );
        // no cpuset controller offered: a cpuset rule cannot be met
        assert!(l.find("cpuset").is_none());
    }

    #[test]
    fn rules_map_to_v1_controls() {
        let l = Layout::parse(V1_INFO, |_| vec![]);
        let d = |res: &str, v: &str| -> Vec<String> {
            controls(&l, &Rule::parse(res, v).unwrap().unwrap())
                .unwrap()
                .iter()
                .map(Control::describe)
                .collect()
        };
        assert_eq!(d("maxproc", "5:deny"), ["pids.max=5"]);
        // review: no silent stand-in for a signal
        let e = controls(&l, &Rule::parse("nthr", "9:sigkill").unwrap().unwrap());
        assert!(e.unwrap_err().to_string().contains("sigkill"));
        assert_eq!(d("maxproc", "5:log"), ["reported only"]);
        assert_eq!(d("memoryuse", "1K:deny"), ["memory.limit_in_bytes=1024"]);
        // log is monitoring only: no soft limit that reclaims or throttles
        assert_eq!(d("memoryuse", "8G:log"), ["reported only"]);
        assert_eq!(
            d("pcpu", "50:deny"),
            ["cpu.cfs_period_us=100000", "cpu.cfs_quota_us=50000"]
        );
        assert_eq!(d("openfiles", "64:deny"), ["RLIMIT_NOFILE=64"]);
        let e = controls(&l, &Rule::parse("wallclock", "60:deny").unwrap().unwrap());
        assert!(e.unwrap_err().to_string().contains("wallclock"));
        let resets: Vec<String> = reset_controls(&l, "0-1")
            .iter()
            .map(Control::describe)
            .collect();
        assert_eq!(
            resets,
            [
                "memory.soft_limit_in_bytes=-1",
                "memory.limit_in_bytes=-1",
                "pids.max=max",
                "cpu.cfs_quota_us=-1",
                "cpuset.cpus=0-1"
            ]
        );
    }

    #[test]
    fn only_our_cgroups_are_joined() {
        assert_eq!(
            jail_line("4:memory:/jailctl/ioc-ab12"),
            Some((vec!["memory"], "ioc-ab12"))
        );
        assert_eq!(
            jail_line("3:cpu,cpuacct:/jailctl/ioc-a"),
            Some((vec!["cpu", "cpuacct"], "ioc-a"))
        );
        assert_eq!(jail_line("0::/jailctl/ioc-a"), Some((vec![], "ioc-a")));
        assert_eq!(jail_line("4:memory:/"), None);
        assert_eq!(jail_line("4:memory:/jailctl/../x"), None);
        assert_eq!(jail_line("4:memory:/jailctl/.."), None);
        assert_eq!(jail_line("4:memory:/other/ioc-a"), None);
        assert_eq!(jail_line("5:devices:/jaildaemon/3-1-2"), None);
    }
}
