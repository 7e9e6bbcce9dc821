//! The probe spawner (Linux): the single process the daemon forks probes' helpers
//! from. What it holds, that a jail cannot reach it, and what happens when it dies:
//! it is started again, and a registration it dropped fails at once with an error.
//! Needs root.
#![cfg(target_os = "linux")]

mod common;

use common::Daemon;
use std::process::Command;
use std::time::{Duration, Instant};

use jaildaemon::probe::SPAWNER_NAME;

fn setup() -> Daemon {
    let d = Daemon::start();
    d.sb.create("www", &[]);
    d
}

fn ppid(pid: i32) -> Option<i32> {
    common::stat_fields(pid).and_then(|f| f.get(1).and_then(|p| p.parse().ok()))
}

fn alive(pid: i32) -> bool {
    common::stat_fields(pid).is_some_and(|f| f[0] != "Z")
}

/// Live children of `parent` whose argv[0] is the spawner's name.
fn spawners_of(parent: i32) -> Vec<i32> {
    let mut v = vec![];
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(b) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let argv0 = b.split(|&c| c == 0).next().unwrap_or_default();
        if argv0 == SPAWNER_NAME.as_bytes() && ppid(pid) == Some(parent) && alive(pid) {
            v.push(pid);
        }
    }
    v
}

fn the_spawner(d: &Daemon) -> i32 {
    let mut found = vec![];
    assert!(
        d.sb.wait_for(5, || {
            found = spawners_of(d.pid());
            found.len() == 1
        }),
        "expected one spawner child of the daemon, found {found:?}"
    );
    found[0]
}

fn probe_pid(d: &Daemon, title: &str) -> i32 {
    let ps = d.probes();
    let p = ps
        .iter()
        .find(|p| p["title"] == title)
        .unwrap_or_else(|| panic!("no probe {title} in {ps:?}"));
    p["pid"].as_i64().expect("armed probe has a pid") as i32
}

fn fds(pid: i32) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .map(|e| {
            let target = std::fs::read_link(e.path())
                .map(|t| t.display().to_string())
                .unwrap_or_default();
            (e.file_name().to_string_lossy().into_owned(), target)
        })
        .collect();
    v.sort();
    v
}

fn signal(pid: i32, sig: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig).unwrap();
}

#[test]
fn spawner_is_a_host_process_that_holds_nothing_and_no_jail_sees() {
    common::require_root();
    let mut d = setup();
    let sp = the_spawner(&d);
    let marker = "SPAWNER_SECRET_COMMAND_7f3a";
    d.register(&[
        "-c",
        &format!("echo {marker} > /dev/null"),
        "-j",
        "www",
        "-t",
        "SP_HOLDS",
    ]);
    // Only its request socket and /dev/null.
    let f = fds(sp);
    assert_eq!(
        f.iter().map(|x| x.0.as_str()).collect::<Vec<_>>(),
        ["0", "1", "2", "3"],
        "{f:?}"
    );
    assert!(f[..3].iter().all(|x| x.1 == "/dev/null"), "{f:?}");
    assert!(f[3].1.starts_with("socket:["), "{f:?}");
    // An environment of its own, not the daemon's.
    let env = String::from_utf8(std::fs::read(format!("/proc/{sp}/environ")).unwrap()).unwrap();
    let vars: Vec<&str> = env
        .split('\0')
        .filter(|v| !v.is_empty())
        .map(|v| v.split('=').next().unwrap())
        .collect();
    assert!(
        vars.iter()
            .all(|v| *v == "JAILDAEMON_PROBE_HELPER" || *v == "JAILDAEMON_REGISTRY"),
        "{vars:?}"
    );
    assert!(!env.contains("RUST_LOG"));
    // It never saw the command.
    let maps = std::fs::read_to_string(format!("/proc/{sp}/maps")).unwrap();
    let mem = std::fs::File::open(format!("/proc/{sp}/mem")).unwrap();
    for l in maps.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        if !f[1].starts_with('r') {
            continue;
        }
        let (a, b) = f[0].split_once('-').unwrap();
        let (a, b) = (
            u64::from_str_radix(a, 16).unwrap(),
            u64::from_str_radix(b, 16).unwrap(),
        );
        let mut buf = vec![0u8; (b - a) as usize];
        use std::os::unix::fs::FileExt;
        if mem.read_exact_at(&mut buf, a).is_ok() {
            assert!(
                !buf.windows(marker.len()).any(|w| w == marker.as_bytes()),
                "the spawner's memory holds the command ({l})"
            );
        }
    }
    // In the host's pid namespace, invisible in the jail.
    assert_eq!(
        std::fs::read_link(format!("/proc/{sp}/ns/pid")).unwrap(),
        std::fs::read_link(format!("/proc/{}/ns/pid", d.pid())).unwrap()
    );
    let ps = d.sb.ok(&["jail", "exec", "www", "ps", "-o", "args"]);
    assert!(!ps.contains("spawner"), "the jail sees the spawner:\n{ps}");
    assert!(ps.contains("SP_HOLDS"), "{ps}");
    // The probe it set up holds /dev/null only, shows its title only.
    let probe = probe_pid(&d, "SP_HOLDS");
    let f = fds(probe);
    assert_eq!(f.len(), 3, "{f:?}");
    assert!(f.iter().all(|x| x.1 == "/dev/null"), "{f:?}");
    let cmdline = std::fs::read(format!("/proc/{probe}/cmdline")).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&cmdline).trim_end_matches('\0'),
        "SP_HOLDS"
    );
    // The daemon's SIGTERM ends it.
    assert!(d.stop().success());
    assert!(
        d.sb.wait_for(5, || !alive(sp)),
        "the spawner outlived the daemon"
    );
}

#[test]
fn a_killed_spawner_is_started_again_and_probes_keep_working() {
    common::require_root();
    let d = setup();
    let first = the_spawner(&d);
    let cmd = |n: &str| format!("echo {n} >> {}", d.file("fired").display());
    d.register(&["-c", &cmd("a"), "-j", "www", "-t", "SP_A"]);
    signal(first, nix::sys::signal::SIGKILL);
    assert!(d.sb.wait_for(5, || !alive(first)));
    // The next registration finds it gone, starts another and goes through.
    d.register(&["-c", &cmd("b"), "-j", "www", "-t", "SP_B"]);
    let second = the_spawner(&d);
    assert_ne!(first, second);
    assert!(d.log_text().contains("the probe spawner is gone"));
    // The probe armed before and the one armed after both fire.
    assert!(d.trigger("www", "SP_A").status.success());
    assert!(d.trigger("www", "SP_B").status.success());
    assert!(d.sb.wait_for(5, || {
        let s = d.read("fired");
        s.contains('a') && s.contains('b')
    }));
}

#[test]
fn a_registration_the_dying_spawner_dropped_fails_at_once_and_leaves_nothing() {
    common::require_root();
    let d = setup();
    let sp = the_spawner(&d);
    // Held stopped, the spawner leaves the request in its socket; killed, it drops it.
    signal(sp, nix::sys::signal::SIGSTOP);
    let mut c = Command::new(common::JAILDAEMON);
    c.args(["-c", "true", "-j", "www", "-t", "SP_DROPPED", "-f"])
        .arg(&d.socket);
    let reg = std::thread::spawn(move || {
        let t = Instant::now();
        (c.output().unwrap(), t)
    });
    std::thread::sleep(Duration::from_millis(500));
    let killed = Instant::now();
    signal(sp, nix::sys::signal::SIGKILL);
    let (o, _) = reg.join().unwrap();
    assert!(!o.status.success(), "registered without a spawner");
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("ended without reporting"), "{e}");
    assert!(
        killed.elapsed() < Duration::from_secs(2),
        "the dropped registration took {:?} to fail",
        killed.elapsed()
    );
    assert!(d.probes().iter().all(|p| p["title"] != "SP_DROPPED"));
    // The next one goes through a new spawner.
    d.register(&["-c", "true", "-j", "www", "-t", "SP_AFTER"]);
    assert_ne!(the_spawner(&d), sp);
    assert_eq!(d.pgrep("www", "SP_AFTER").len(), 1);
    assert!(d.pgrep("www", "SP_DROPPED").is_empty());
}

/// Host processes whose command line starts with `prefix`: workers (they show their
/// probe's title from reading the parameters on) and probes.
fn titled(prefix: &str) -> Vec<i32> {
    let mut v = vec![];
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if std::fs::read(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|b| b.starts_with(prefix.as_bytes()))
            && alive(pid)
        {
            v.push(pid);
        }
    }
    v
}

fn register_in_background(
    d: &Daemon,
    title: &str,
) -> std::thread::JoinHandle<std::process::Output> {
    let mut c = Command::new(common::JAILDAEMON);
    c.args(["-c", "true", "-j", "www", "-t", title, "-f"])
        .arg(&d.socket);
    std::thread::spawn(move || c.output().unwrap())
}

/// The review's scenario: requests wait in the spawner's queue (a stopped spawner
/// stands for one busy at its cap) until the daemon gives up on them. When the
/// spawner gets to them, nothing is set up: no worker shows their title, no probe
/// enters the jail, even for a moment; and the error says what happened.
#[test]
fn registrations_that_timed_out_in_the_spawners_queue_leave_no_probe() {
    common::require_root();
    let d = setup();
    let sp = the_spawner(&d);
    signal(sp, nix::sys::signal::SIGSTOP);
    let regs: Vec<_> = (0..8)
        .map(|i| register_in_background(&d, &format!("SP_STALE_{i}")))
        .collect();
    for r in regs {
        let o = r.join().unwrap();
        assert!(!o.status.success(), "registered through a stopped spawner");
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(
            e.contains("the registration timed out and no probe was left"),
            "{e}"
        );
    }
    signal(sp, nix::sys::signal::SIGCONT);
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(2) {
        let seen = titled("SP_STALE_");
        assert!(seen.is_empty(), "a stale request was set up: {seen:?}");
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(d.pgrep("www", "SP_STALE_").is_empty());
    assert!(d.probes().is_empty(), "{:?}", d.probes());
    // The same spawner served (and dropped) them and takes the next one.
    d.register(&["-c", "true", "-j", "www", "-t", "SP_FRESH"]);
    assert_eq!(the_spawner(&d), sp);
    assert_eq!(d.pgrep("www", "SP_FRESH").len(), 1);
}

/// A worker does not outlive its spawner: here one waits in attach for the jail
/// registry's lock (held by the test) when the spawner is killed.
#[test]
fn a_worker_dies_with_its_spawner() {
    use nix::fcntl::{Flock, FlockArg};
    common::require_root();
    let d = setup();
    let sp = the_spawner(&d);
    // Queue the request first: the daemon has looked the jail up by then.
    signal(sp, nix::sys::signal::SIGSTOP);
    let reg = register_in_background(&d, "SP_ORPHAN");
    std::thread::sleep(Duration::from_millis(300));
    let f = std::fs::File::open(d.sb.registry.join(".lock")).unwrap();
    let lock = Flock::lock(f, FlockArg::LockExclusive).unwrap();
    signal(sp, nix::sys::signal::SIGCONT);
    let mut worker = vec![];
    assert!(
        d.sb.wait_for(3, || {
            worker = titled("SP_ORPHAN");
            worker.len() == 1
        }),
        "no worker waiting in attach: {worker:?}"
    );
    let worker = worker[0];
    assert_eq!(ppid(worker), Some(sp));
    signal(sp, nix::sys::signal::SIGKILL);
    assert!(
        d.sb.wait_for(2, || !alive(worker)),
        "the worker outlived its spawner"
    );
    drop(lock);
    let o = reg.join().unwrap();
    assert!(!o.status.success(), "registered through a killed spawner");
    assert!(d.pgrep("www", "SP_ORPHAN").is_empty());
    assert!(d.probes().is_empty(), "{:?}", d.probes());
}
