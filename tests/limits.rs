//! Resource limits (issue 14) on this machine's cgroup v1 controllers, with real
//! jails of the directory backend: memory, processes, CPUs and CPU share enforced;
//! exec'd processes in the jail's cgroup; `cap`, `uncap`, `limits`, `inuse`; the
//! cgroups gone after stop, a failed start and a killed start. Effects are checked
//! from the host (`/sys/fs/cgroup`, `/proc`), not through jailctl's own output.
//! Needs root.
#![cfg(target_os = "linux")]

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::hostile::wait_until;
use common::manager_env::{text, Env, Kind, Setup};

const SETUP: Setup = Setup {
    dir_prefix: "jd-lim-",
    pool_prefix: "jdl",
    archives: &[("base.txz", "-J")],
};

/// The controllers the jails' cgroups are made in on this machine (v1).
const CONTROLLERS: [&str; 5] = ["memory", "pids", "cpu", "cpuacct", "cpuset"];

fn env() -> Env {
    for c in CONTROLLERS {
        assert!(
            PathBuf::from(format!("/sys/fs/cgroup/{c}/cgroup.procs")).exists(),
            "these tests need the cgroup v1 {c} controller mounted at /sys/fs/cgroup/{c}"
        );
    }
    let e = Env::setup(Kind::Dir, &SETUP);
    e.fetch();
    e
}

/// The jail's cgroup in controller `c`.
fn cg(c: &str, uuid: &str) -> PathBuf {
    PathBuf::from(format!("/sys/fs/cgroup/{c}/jailctl/ioc-{uuid}"))
}

fn read(p: PathBuf) -> String {
    std::fs::read_to_string(&p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .trim()
        .to_string()
}

fn no_cgroup_left(uuid: &str) -> bool {
    CONTROLLERS.iter().all(|c| !cg(c, uuid).exists())
}

fn procs(c: &str, uuid: &str) -> Vec<i32> {
    read(cg(c, uuid).join("cgroup.procs"))
        .lines()
        .filter_map(|l| l.parse().ok())
        .collect()
}

/// Host pids whose command line is exactly `argv`.
fn pids_of(argv: &[&str]) -> Vec<i32> {
    let want: Vec<u8> = argv
        .iter()
        .flat_map(|a| [a.as_bytes(), b"\0"].concat())
        .collect();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|d| d.file_name().to_str()?.parse::<i32>().ok())
        .filter(|p| std::fs::read(format!("/proc/{p}/cmdline")).ok().as_deref() == Some(&want[..]))
        .collect()
}

#[test]
fn memory_is_limited_exec_joins_the_cgroup_and_uncap_lifts_it() {
    let e = env();
    let u = e.create(&["tag=lim1", "rlimits=on", "memoryuse=64M:deny"]);
    e.ok(&["start", "lim1"]);
    for c in CONTROLLERS {
        assert!(cg(c, &u).is_dir(), "no {c} cgroup for the jail");
    }
    assert_eq!(
        read(cg("memory", &u).join("memory.limit_in_bytes")),
        "67108864"
    );
    // the jail's init is in it
    let kid_args = ["sleep", "1234"];
    let _companion = e.spawn(&["exec", "lim1", "sleep", "1234"], &[]);
    assert!(wait_until(20, || !pids_of(&kid_args).is_empty()));
    let sleeper = pids_of(&kid_args)[0];
    for c in CONTROLLERS {
        assert!(
            procs(c, &u).contains(&sleeper),
            "an exec'd process is not in the jail's {c} cgroup"
        );
    }

    // `limits` says what was set and what is in force
    let l = e.ok(&["limits", "-H", "lim1"]);
    assert!(
        l.lines().any(|r| r.split('\t').collect::<Vec<_>>()
            == [
                &u,
                "lim1",
                "memoryuse",
                "64M:deny",
                "memory.limit_in_bytes=67108864"
            ]),
        "{l}"
    );

    // `inuse` matches /proc for the jail's processes
    let j: serde_json::Value = serde_json::from_str(&e.ok(&["inuse", "--json", "lim1"])).unwrap();
    let in_cg = procs("memory", &u);
    let page = 4096u64;
    let rss: u64 = in_cg
        .iter()
        .filter_map(|p| std::fs::read_to_string(format!("/proc/{p}/statm")).ok())
        .map(|s| s.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * page)
        .sum();
    let n: i64 = j[0]["maxproc"].as_str().unwrap().parse().unwrap();
    assert!(
        (n - in_cg.len() as i64).abs() <= 1,
        "inuse maxproc {n} vs /proc {}",
        in_cg.len()
    );
    let mem: i64 = j[0]["memoryuse"].as_str().unwrap().parse().unwrap();
    assert!(
        (mem - rss as i64).abs() <= (rss as i64 / 5).max(1 << 20),
        "inuse memoryuse {mem} vs /proc {rss}"
    );

    // 128 MiB touched: the hog is killed, its neighbour and the host are not
    let hog = [
        "exec",
        "lim1",
        "dd",
        "if=/dev/zero",
        "of=/dev/null",
        "bs=128M",
        "count=1",
    ];
    let o = e.run(&hog);
    assert!(
        !o.status.success(),
        "a 128 MiB allocation under a 64 MiB limit succeeded"
    );
    assert!(
        pids_of(&kid_args).contains(&sleeper),
        "the jail's other process died"
    );
    assert!(e.is_up(&u));
    let oom = read(cg("memory", &u).join("memory.oom_control"));
    assert!(
        !oom.contains("oom_kill 0"),
        "no OOM kill counted in the jail's cgroup: {oom}"
    );

    // uncap: the same allocation succeeds; limits shows nothing in force
    e.ok(&["uncap", "lim1"]);
    let o = e.run(&hog);
    assert!(o.status.success(), "after uncap: {}", text(&o.stderr));
    assert_eq!(e.ok(&["limits", "-H", "lim1"]), "");
    // cap again, twice: the same single rule each time
    e.ok(&["cap", "lim1"]);
    e.ok(&["cap", "lim1"]);
    let l = e.ok(&["limits", "-H", "lim1"]);
    assert_eq!(l.lines().count(), 1, "{l}");
    assert_eq!(
        read(cg("memory", &u).join("memory.limit_in_bytes")),
        "67108864"
    );

    e.ok(&["stop", "lim1"]);
    assert!(
        no_cgroup_left(&u),
        "a cgroup of the jail is left after stop"
    );
}

#[test]
fn processes_cpus_and_cpu_share_are_limited() {
    let e = env();
    let u = e.create(&["tag=lim2", "rlimits=on", "maxproc=5:deny", "cpuset=0"]);
    e.ok(&["start", "lim2"]);
    assert_eq!(read(cg("pids", &u).join("pids.max")), "5");
    let status = e.ok(&["exec", "lim2", "cat", "/proc/self/status"]);
    let cpus = status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .unwrap()
        .trim();
    assert_eq!(cpus, "0", "{status}");

    // 15 background processes: the fork that would make a sixth process in the
    // jail fails (its init, its service, the exec'd shell and what attached it count)
    let fifteen =
        "for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15; do sleep 3017 >/dev/null 2>&1 & done";
    let o = e.run(&["exec", "lim2", "sh", "-c", fifteen]);
    let err = text(&o.stderr);
    assert!(err.contains("can't fork"), "no refused fork: {err}");
    let ours = |argv: &[&str]| -> Vec<i32> {
        let inside = procs("pids", &u);
        pids_of(argv)
            .into_iter()
            .filter(|p| inside.contains(p))
            .collect()
    };
    let sleeping = ours(&["sleep", "3017"]);
    assert!(
        sleeping.len() <= 3,
        "{} of 15 started under maxproc=5",
        sleeping.len()
    );
    assert!(procs("pids", &u).len() <= 5);
    let events = read(cg("pids", &u).join("pids.events"));
    assert!(!events.contains("max 0"), "{events}");
    // lifted: all 15 start
    e.ok(&["uncap", "lim2"]);
    e.ok(&["exec", "lim2", "sh", "-c", fifteen]);
    assert_eq!(ours(&["sleep", "3017"]).len(), sleeping.len() + 15);
    e.ok(&["exec", "lim2", "pkill", "-f", "sleep 3017"]);
    assert!(wait_until(10, || ours(&["sleep", "3017"]).is_empty()));

    // pcpu=50: a busy loop gets about half a CPU (on any CPU)
    let note = text(&e.run(&["set", "pcpu=50:deny", "cpuset=off", "lim2"]).stderr);
    assert!(note.contains("jailctl cap lim2"), "{note}");
    e.ok(&["cap", "lim2"]);
    assert_eq!(read(cg("cpu", &u).join("cpu.cfs_quota_us")), "50000");
    let busy = e.spawn(&["exec", "lim2", "sh", "-c", "while :; do :; done"], &[]);
    std::thread::sleep(Duration::from_millis(500));
    let usage = || {
        read(cg("cpuacct", &u).join("cpuacct.usage"))
            .parse::<u64>()
            .unwrap()
    };
    let (t0, u0) = (Instant::now(), usage());
    std::thread::sleep(Duration::from_secs(3));
    let share = (usage() - u0) as f64 / t0.elapsed().as_nanos() as f64;
    drop(busy);
    assert!(
        (0.25..=0.7).contains(&share),
        "pcpu=50 gave {:.0} %",
        share * 100.0
    );

    e.ok(&["stop", "lim2"]);
    assert!(no_cgroup_left(&u));
    assert!(pids_of(&["sleep", "3017"]).is_empty());
}

#[test]
fn failed_and_killed_starts_leave_no_cgroup_and_stop_removes_only_ours() {
    let e = env();
    // a failing exec_start: everything undone
    let u = e.create(&[
        "tag=lim3",
        "rlimits=on",
        "maxproc=50:deny",
        "exec_start=false",
    ]);
    e.fails(&["start", "lim3"]);
    assert!(!e.is_up(&u));
    assert!(no_cgroup_left(&u));
    // a limit the host cannot meet: the start fails at that step, undone
    e.ok(&["set", "exec_start=true", "cpuset=63", "lim3"]);
    let err = e.fails(&["start", "lim3"]);
    assert!(
        err.contains("resource limits") && err.contains("cpuset"),
        "{err}"
    );
    assert!(!e.is_up(&u));
    assert!(no_cgroup_left(&u));

    // kill -9 inside exec_start (limits applied): the next command removes them
    e.ok(&["set", "cpuset=0", "exec_start=sleep 5", "lim3"]);
    let mut s = e.spawn(&["start", "lim3"], &[]);
    assert!(wait_until(30, || cg("pids", &u).is_dir() && e.is_up(&u)));
    std::thread::sleep(Duration::from_millis(500));
    s.kill9();
    assert!(cg("pids", &u).is_dir());
    e.ok(&["stop", "lim3"]);
    assert!(no_cgroup_left(&u), "a killed start left a cgroup");

    // stop removes only the jail's own cgroup
    e.ok(&["set", "exec_start=true", "lim3"]);
    e.ok(&["start", "lim3"]);
    let other = PathBuf::from(format!(
        "/sys/fs/cgroup/pids/jailctl/not-ours-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&other).unwrap();
    e.ok(&["stop", "lim3"]);
    let kept = other.is_dir();
    let _ = std::fs::remove_dir(&other);
    let _ = std::fs::remove_dir("/sys/fs/cgroup/pids/jailctl");
    assert!(kept, "stop removed a cgroup that was not the jail's");
    assert!(no_cgroup_left(&u));

    // a resource Linux cannot enforce is accepted with a warning
    let note = text(&e.run(&["set", "wallclock=60:deny", "lim3"]).stderr);
    assert!(note.contains("no effect on Linux"), "{note}");
}

/// Host pids whose command line contains `word`.
fn pids_with(word: &str) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|d| d.file_name().to_str()?.parse::<i32>().ok())
        .filter(|p| {
            std::fs::read(format!("/proc/{p}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(word))
        })
        .collect()
}

#[test]
fn a_jaildaemon_probe_joins_the_jail_cgroup() {
    let e = env();
    let u = e.create(&["tag=lim4", "rlimits=on", "maxproc=50:deny"]);
    e.ok(&["start", "lim4"]);
    let socket = e.dir.path().join("jd.sock");
    let registry = e.dir.path().join("registry");
    let mut daemon = std::process::Command::new(common::JAILDAEMON)
        .args(["-D", "-F", "-p"])
        .arg(e.dir.path().join("jd.pid"))
        .arg("-f")
        .arg(&socket)
        .env("JAILDAEMON_REGISTRY", &registry)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let up = wait_until(10, || socket.exists());
    let title = format!("LIMPROBE{}", std::process::id());
    let o = std::process::Command::new(common::JAILDAEMON)
        .args(["-c", "true", "-j", &format!("ioc-{u}"), "-t", &title, "-f"])
        .arg(&socket)
        .output()
        .unwrap();
    let found = wait_until(10, || !pids_with(&title).is_empty());
    let probe = pids_with(&title);
    let members: Vec<Vec<i32>> = CONTROLLERS.iter().map(|c| procs(c, &u)).collect();
    let _ = daemon.kill();
    let _ = daemon.wait();
    assert!(up, "the daemon did not come up");
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(found, "no probe process {title}");
    for (c, m) in CONTROLLERS.iter().zip(&members) {
        assert!(
            probe.iter().all(|p| m.contains(p)),
            "the probe {probe:?} is not in the jail's {c} cgroup {m:?}"
        );
    }
    e.ok(&["stop", "lim4"]);
    assert!(no_cgroup_left(&u));
}

/// The pids cgroup of live host process `pid`, as the host sees it (none once it
/// has exited: an exiting process is shown in the root cgroup).
fn pids_cgroup_of(pid: i32) -> Option<String> {
    let live = || {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| Some(s[s.rfind(')')? + 2..].chars().next()?))
            .is_some_and(|c| !matches!(c, 'Z' | 'X' | 'x'))
    };
    if !live() {
        return None;
    }
    let g = std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .ok()?
        .lines()
        .find_map(|l| l.split_once(":pids:").map(|(_, p)| p.to_string()))?;
    live().then_some(g)
}

/// Review finding 1 and 4: a chain of processes that fork and exit, started while the
/// jail has no limits, is limited by a later `cap`: every jail process is in the
/// jail's cgroups from the start (its init joined them before making its
/// namespaces), so `cap` only writes limits. Inside, the jail's cgroup namespace is
/// rooted at its limit cgroup.
#[test]
fn a_fork_exit_chain_started_before_cap_is_limited_after_it() {
    let e = env();
    let u = e.create(&["tag=lim4"]);
    e.ok(&["start", "lim4"]);
    // made at every start, without limits
    for c in CONTROLLERS {
        assert!(
            cg(c, &u).is_dir(),
            "no {c} cgroup for a jail without limits"
        );
    }
    assert_eq!(read(cg("pids", &u).join("pids.max")), "max");
    // the jail sees its own cgroup as the root of its cgroup namespace
    let inside = e.ok(&["exec", "lim4", "cat", "/proc/self/cgroup"]);
    assert!(
        inside.lines().any(|l| l.ends_with(":pids:/")),
        "the jail's cgroup namespace is not rooted at its cgroup: {inside}"
    );
    std::fs::write(
        e.root(&u).join("tmp/hop.sh"),
        "cat /proc/self/cgroup >/tmp/hop.cg\nsh /tmp/hop.sh </dev/null >/dev/null 2>&1 &\n",
    )
    .unwrap();
    e.ok(&[
        "exec",
        "lim4",
        "sh",
        "-c",
        "sh /tmp/hop.sh </dev/null >/dev/null 2>&1 &",
    ]);
    let hop = ["sh", "/tmp/hop.sh"];
    assert!(wait_until(20, || !pids_of(&hop).is_empty()), "no chain");

    e.ok(&["set", "rlimits=on", "maxproc=20:deny", "lim4"]);
    e.ok(&["cap", "lim4"]);
    assert_eq!(read(cg("pids", &u).join("pids.max")), "20");
    let want = format!("/jailctl/ioc-{u}");
    let mut seen = 0;
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(3) {
        for p in pids_of(&hop) {
            match pids_cgroup_of(p) {
                Some(g) if g == want => seen += 1,
                Some(g) => {
                    // an exiting process is shown in the root cgroup: it must be gone
                    std::thread::sleep(Duration::from_millis(200));
                    assert!(
                        !pids_of(&hop).contains(&p),
                        "a process of the chain ({p}) escaped the limits: in {g}"
                    );
                }
                None => {}
            }
        }
    }
    assert!(seen > 0, "the chain was never seen after cap");
    let hop_file = e.root(&u).join("tmp/hop.cg");
    let mut hop_cg = String::new();
    assert!(wait_until(10, || {
        hop_cg = std::fs::read_to_string(&hop_file).unwrap_or_default();
        hop_cg.contains(":pids:")
    }));
    assert!(hop_cg.lines().any(|l| l.ends_with(":pids:/")), "{hop_cg}");

    e.ok(&["stop", "lim4"]);
    assert!(pids_of(&hop).is_empty(), "the chain survived stop");
    assert!(no_cgroup_left(&u));
}

/// Review findings 2 and 3: a `cap` that fails leaves the limits in force as they
/// were (the reviewer's case: maxproc=8 in force, memoryuse=100K:deny cannot be
/// written while the jail uses more), exits non-zero naming what failed; `cap` of a
/// stopped jail fails and makes nothing.
#[test]
fn a_failed_cap_keeps_the_limits_in_force() {
    let e = env();
    let u = e.create(&["tag=lim5", "rlimits=on", "maxproc=8:deny"]);
    e.ok(&["start", "lim5"]);
    assert_eq!(read(cg("pids", &u).join("pids.max")), "8");
    let mem_before = read(cg("memory", &u).join("memory.limit_in_bytes"));
    // a process that holds 4 MB of its own memory in the jail
    let _hog = e.spawn(
        &[
            "exec",
            "lim5",
            "sh",
            "-c",
            "x=$(head -c 4000000 /dev/zero | tr '\\0' a); sleep 3019",
        ],
        &[],
    );
    assert!(wait_until(20, || !pids_of(&["sleep", "3019"]).is_empty()));
    e.ok(&["set", "memoryuse=100K:deny", "maxproc=6:deny", "lim5"]);
    let err = e.fails(&["cap", "lim5"]);
    assert!(err.contains("memory.limit_in_bytes"), "{err}");
    assert_eq!(
        read(cg("pids", &u).join("pids.max")),
        "8",
        "a failed cap lifted or changed the limit in force"
    );
    assert_eq!(
        read(cg("memory", &u).join("memory.limit_in_bytes")),
        mem_before
    );
    let l = e.ok(&["limits", "-H", "lim5"]);
    assert!(l.contains("pids.max=8"), "{l}");
    assert!(!l.contains("100K"), "{l}");

    e.ok(&["stop", "lim5"]);
    assert!(no_cgroup_left(&u));
    let err = e.fails(&["cap", "lim5"]);
    assert!(err.contains("not running"), "{err}");
    assert!(no_cgroup_left(&u), "cap of a stopped jail made its cgroups");
}

/// Review findings 6 and 8: values that could never work as written are refused at
/// `set`, naming the accepted forms.
#[test]
fn malformed_amounts_and_unusable_actions_are_refused_at_set() {
    let e = env();
    e.create(&["tag=lim6"]);
    for bad in ["1.5:deny", "5KB:deny", "64M:throttle"] {
        let err = e.fails(&["set", &format!("memoryuse={bad}"), "lim6"]);
        assert!(err.contains("AMOUNT"), "{bad}: {err}");
        assert!(err.contains("K, M, G, T or P"), "{bad}: {err}");
    }
    e.ok(&["set", "memoryuse=64M:deny", "lim6"]);
}
