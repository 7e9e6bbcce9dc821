//! Linux jail containment (issue #7): a root inside a jail cannot touch the host.
//!
//! Every test runs real jails on busybox roots, as a hostile root inside would: through
//! `jailctl jail exec` (busybox applets) and `hostile`, a small static C program
//! (tests/helpers/hostile.c) compiled here and copied into the jail's /bin, that makes
//! the system calls busybox cannot and reports each attempt as `DENIED <what> <ERRNO>`
//! or `ALLOWED <what>`. The helper is harmless to this machine even when a defence is
//! missing: it never writes a byte through a descriptor it should not have (only
//! zero-byte writes), and calls every privileged system call with arguments that fail
//! right after the permission check (see the comment at the top of hostile.c).
//!
//! Checked: the capability sets of every process in the jail (init, `jail exec`,
//! jaildaemon probes) and what each `allow.*` adds; that no host binary, library or
//! descriptor is reachable through /proc of our processes, even by a process that holds
//! what it could open until the daemon and every jailctl have exited (checksums of the
//! host's binaries and C library before and after); the seccomp filter (EPERM, not a
//! kill); /proc and /dev; device nodes; mounting; and what jail root can still do (chown,
//! chmod, setuid programs, reserved ports, killing its processes). Needs root.
//! Linux only: FreeBSD jails are the kernel's.
#![cfg(target_os = "linux")]

mod common;

use common::hostile::{
    allowed_lines, assert_denied, assert_denied_with, attempts, cap, cap_list, caps_of, errno_of,
    hostile_bin, install_hostile, mask, status_field, wait_until, Attempt, BASE,
};
use common::{Daemon, Sandbox, JAILCTL, JAILDAEMON};
use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

// ---------------------------------------------------------------------------------
// Serialisation: the checksum test needs a moment when no jailctl of this test binary
// runs; every other test holds the lock shared.

static SERIAL: RwLock<()> = RwLock::new(());

fn shared() -> RwLockReadGuard<'static, ()> {
    SERIAL.read().unwrap_or_else(|e| e.into_inner())
}

fn exclusive() -> RwLockWriteGuard<'static, ()> {
    SERIAL.write().unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------------------------
// Capabilities (names, BASE and the status parsing: tests/common/hostile.rs)

/// What issue #7 requires to be dropped from a default jail, bounding set included.
const MUST_DROP: &[&str] = &[
    "CAP_SYS_ADMIN",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_PTRACE",
    "CAP_SYS_BOOT",
    "CAP_SYS_TIME",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYSLOG",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_AUDIT_CONTROL",
    "CAP_BPF",
    "CAP_PERFMON",
    "CAP_CHECKPOINT_RESTORE",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_MKNOD",
    "CAP_LINUX_IMMUTABLE",
    "CAP_IPC_LOCK",
    "CAP_DAC_READ_SEARCH",
];

fn base() -> u64 {
    mask(BASE)
}

/// Assert the named Cap* sets of a status text equal `want`, naming the difference.
fn assert_caps(status: &str, sets: &[&str], want: u64, who: &str) {
    let caps = caps_of(status);
    for set in sets {
        let got = *caps
            .get(*set)
            .unwrap_or_else(|| panic!("{who}: no {set} line in\n{status}"));
        assert!(
            got == want,
            "{who}: {set} is {got:016x}, want {want:016x}\n  extra:   {}\n  missing: {}",
            cap_list(got & !want),
            cap_list(want & !got)
        );
    }
}

// ---------------------------------------------------------------------------------
// Jails

/// A jail of a sandbox, removed when dropped (also when the test fails). Owns copies of
/// the registry and root paths, so it does not borrow the sandbox or the daemon.
struct Jail {
    name: String,
    registry: PathBuf,
    root: PathBuf,
}

impl Jail {
    fn create(sb: &Sandbox, name: &str, extra: &[&str]) -> Jail {
        Jail::create_in(sb, name, &sb.root, extra)
    }

    fn create_in(sb: &Sandbox, name: &str, root: &Path, extra: &[&str]) -> Jail {
        install_hostile(root);
        let j = Jail {
            name: name.to_string(),
            registry: sb.registry.clone(),
            root: root.to_path_buf(),
        };
        sb.create_named_in(name, root, extra);
        j
    }

    fn jailctl(&self) -> Command {
        let mut c = Command::new(JAILCTL);
        c.env("JAILDAEMON_REGISTRY", &self.registry);
        c
    }

    /// `jailctl jail exec [-u USER] NAME args...`
    fn exec_as(&self, user: Option<&str>, args: &[&str]) -> Output {
        let mut c = self.jailctl();
        c.args(["jail", "exec"]);
        if let Some(u) = user {
            c.args(["-u", u]);
        }
        c.arg(&self.name).args(args).stdin(Stdio::null());
        c.output().unwrap()
    }

    fn exec(&self, args: &[&str]) -> Output {
        self.exec_as(None, args)
    }

    /// Run inside as root, require success, return stdout.
    fn ok(&self, args: &[&str]) -> String {
        let o = self.exec(args);
        assert!(
            o.status.success(),
            "jail exec {} {args:?} failed ({:?}): {}{}",
            self.name,
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    fn sh(&self, script: &str) -> Output {
        self.exec(&["sh", "-c", script])
    }

    /// `hostile args...` inside as USER (root when None); it must exit 0, i.e. not be
    /// killed by the filter. Returns its report.
    fn hostile_as(&self, user: Option<&str>, args: &[&str]) -> String {
        let mut a = vec!["/bin/hostile"];
        a.extend_from_slice(args);
        let o = self.exec_as(user, &a);
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(
            o.status.success(),
            "hostile {args:?} in jail {} did not exit normally ({:?}; a kill by the \
             seccomp filter is 159): {out}{}",
            self.name,
            o.status,
            String::from_utf8_lossy(&o.stderr)
        );
        out
    }

    fn hostile(&self, args: &[&str]) -> String {
        self.hostile_as(None, args)
    }

    /// The host pid of the jail's init, from the registry.
    fn init_pid(&self) -> i32 {
        for e in std::fs::read_dir(&self.registry).unwrap().flatten() {
            if !e.file_name().to_string_lossy().ends_with(".json") {
                continue;
            }
            let Ok(v) =
                serde_json::from_slice::<serde_json::Value>(&std::fs::read(e.path()).unwrap())
            else {
                continue;
            };
            if v["name"] == self.name.as_str() {
                return v["init_pid"].as_i64().expect("init_pid in the registry") as i32;
            }
        }
        panic!("jail {} is not in the registry", self.name)
    }
}

impl Drop for Jail {
    fn drop(&mut self) {
        let _ = self.jailctl().args(["jail", "remove", &self.name]).output();
    }
}

/// Host pid of a daemon's probe, by title.
fn probe_host_pid(d: &Daemon, title: &str) -> i32 {
    let ps = d.probes();
    ps.iter()
        .find(|p| p["title"] == title)
        .unwrap_or_else(|| panic!("no probe {title} in {ps:?}"))["pid"]
        .as_i64()
        .expect("armed probe has a pid") as i32
}

/// The probe's pid as seen inside the jail (pgrep -f TITLE there): exactly one.
fn probe_jail_pid(d: &Daemon, jail: &str, title: &str) -> String {
    let pids = d.pgrep(jail, title);
    assert_eq!(
        pids.len(),
        1,
        "pgrep -f {title} inside the jail finds {pids:?}"
    );
    pids[0].trim().to_string()
}

fn sha256(path: &Path) -> String {
    let o = Command::new("sha256sum").arg(path).output().unwrap();
    assert!(
        o.status.success(),
        "sha256sum {}: {} (apt-get install -y coreutils)",
        path.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// The host files a jail escape through /proc would overwrite: our binaries and the C
/// library with its loader (and libgcc_s, which our binaries map).
fn host_files() -> Vec<PathBuf> {
    let mut v = vec![PathBuf::from(JAILCTL), PathBuf::from(JAILDAEMON)];
    for f in [
        "/lib/x86_64-linux-gnu/libc.so.6",
        "/lib64/ld-linux-x86-64.so.2",
        "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
        "/lib/x86_64-linux-gnu/libgcc_s.so.1",
    ] {
        if Path::new(f).exists() {
            v.push(PathBuf::from(f));
        }
    }
    let mut seen = BTreeSet::new();
    v.into_iter()
        .filter_map(|p| std::fs::canonicalize(&p).ok())
        .filter(|p| seen.insert(p.clone()))
        .collect()
}

fn checksums() -> BTreeMap<PathBuf, String> {
    host_files()
        .into_iter()
        .map(|p| {
            let h = sha256(&p);
            (p, h)
        })
        .collect()
}

/// Host processes running our jailctl or jaildaemon binary, but `except`.
fn our_binaries_running(except: &[i32]) -> Vec<(i32, String)> {
    let ours: Vec<PathBuf> = [JAILCTL, JAILDAEMON]
        .iter()
        .filter_map(|p| std::fs::canonicalize(p).ok())
        .collect();
    let mut v = vec![];
    for d in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = d.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if except.contains(&pid) {
            continue;
        }
        let Ok(exe) = std::fs::read_link(format!("/proc/{pid}/exe")) else {
            continue;
        };
        let exe = exe.to_string_lossy().replace(" (deleted)", "");
        if ours.iter().any(|o| o.as_os_str() == exe.as_str())
            && common::stat_fields(pid).is_some_and(|f| f[0] != "Z")
        {
            v.push((pid, exe));
        }
    }
    v
}

// ---------------------------------------------------------------------------------
// Capabilities

#[test]
fn default_jail_root_has_exactly_the_freebsd_jail_root_capabilities() {
    let _g = shared();
    assert_eq!(
        base() & mask(MUST_DROP),
        0,
        "test constants: the base set holds a capability issue #7 drops"
    );
    let sb = Sandbox::new();
    let j = Jail::create(&sb, "ctn-caps", &[]);

    // jail exec as root
    let st = j.ok(&["cat", "/proc/self/status"]);
    assert_caps(
        &st,
        &["CapBnd", "CapEff", "CapPrm"],
        base(),
        "jail exec root",
    );
    assert_caps(&st, &["CapInh", "CapAmb"], 0, "jail exec root");
    assert_eq!(
        status_field(&st, "Seccomp"),
        Some("2"),
        "no seccomp filter on a jail exec process:\n{st}"
    );
    assert_eq!(
        status_field(&st, "NoNewPrivs"),
        Some("0"),
        "no_new_privs is set: setuid programs would not work as in a FreeBSD jail"
    );
    // its children (a shell, then cat)
    let st = j.ok(&["sh", "-c", "cat /proc/self/status; true"]);
    assert_caps(
        &st,
        &["CapBnd", "CapEff", "CapPrm"],
        base(),
        "a child of jail exec",
    );
    assert_caps(&st, &["CapInh", "CapAmb"], 0, "a child of jail exec");

    // the jail's init, pid 1 inside (its CapPrm may hold more: not checked)
    let st = j.ok(&["cat", "/proc/1/status"]);
    assert_caps(
        &st,
        &["CapBnd", "CapEff"],
        base(),
        "the jail's init (/proc/1)",
    );
    assert_eq!(status_field(&st, "Seccomp"), Some("2"), "init:\n{st}");
    // the same seen from the host
    let st = std::fs::read_to_string(format!("/proc/{}/status", j.init_pid())).unwrap();
    assert_caps(
        &st,
        &["CapBnd", "CapEff"],
        base(),
        "the jail's init, from the host",
    );

    // a jail user: nothing effective, the same bound
    let o = j.exec_as(Some("user"), &["cat", "/proc/self/status"]);
    assert!(o.status.success());
    let st = String::from_utf8_lossy(&o.stdout);
    assert_caps(
        &st,
        &["CapEff", "CapPrm", "CapInh", "CapAmb"],
        0,
        "jail user 1001",
    );
    assert_caps(&st, &["CapBnd"], base(), "jail user 1001");
}

#[test]
fn each_allow_parameter_adds_exactly_its_capability() {
    let _g = shared();
    let sb = Sandbox::new();
    for (param, capname) in [
        ("allow.raw_sockets", "CAP_NET_RAW"),
        ("allow.chflags", "CAP_LINUX_IMMUTABLE"),
        ("allow.mlock", "CAP_IPC_LOCK"),
        ("vnet=new", "CAP_NET_ADMIN"),
    ] {
        let name =
            format!("ctn-{}", capname.trim_start_matches("CAP_").to_lowercase()).replace('_', "-");
        let j = Jail::create(&sb, &name, &[param]);
        let want = base() | 1u64 << cap(capname);
        let st = j.ok(&["cat", "/proc/self/status"]);
        assert_caps(&st, &["CapBnd", "CapEff", "CapPrm"], want, param);
        assert_caps(&st, &["CapInh", "CapAmb"], 0, param);
        let st = j.ok(&["cat", "/proc/1/status"]);
        assert_caps(&st, &["CapBnd", "CapEff"], want, &format!("{param}: init"));
        drop(j);
    }
}

#[test]
fn allow_parameters_grant_the_matching_power_and_default_jails_lack_it() {
    let _g = shared();
    let sb = Sandbox::new();
    let def = Jail::create(&sb, "ctn-power-default", &[]);
    def.ok(&["sh", "-c", "echo x > /tmp/flagged"]);
    let out = def.hostile(&["rawsock"]);
    assert_denied_with(&out, "rawsock", &["EPERM"]);
    assert_denied_with(&out, "packetsock", &["EPERM"]);
    assert_denied_with(
        &def.hostile(&["mlock"]),
        "mlock",
        &["EPERM", "ENOMEM", "EAGAIN"],
    );
    assert_denied_with(
        &def.hostile(&["chattr", "/tmp/flagged"]),
        "chattr_immutable",
        &["EPERM"],
    );
    // the host's network: no reconfiguring it (hostile sets lo's flags to what they are)
    assert_denied_with(&def.hostile(&["netadmin"]), "netadmin", &["EPERM"]);
    drop(def);

    let raw = Jail::create_in(&sb, "ctn-power-raw", &sb.root, &["allow.raw_sockets"]);
    let out = raw.hostile(&["rawsock"]);
    assert_eq!(errno_of(&out, "rawsock"), None, "{out}");
    drop(raw);

    let ml = Jail::create_in(&sb, "ctn-power-mlock", &sb.root, &["allow.mlock"]);
    let out = ml.hostile(&["mlock"]);
    assert_eq!(errno_of(&out, "mlock"), None, "{out}");
    drop(ml);

    let cf = Jail::create_in(&sb, "ctn-power-chflags", &sb.root, &["allow.chflags"]);
    cf.ok(&["sh", "-c", "echo x > /tmp/flagged"]);
    let out = cf.hostile(&["chattr", "/tmp/flagged"]);
    assert_eq!(errno_of(&out, "chattr_immutable"), None, "{out}");
    assert_eq!(errno_of(&out, "chattr_clear"), None, "{out}");
    drop(cf);

    let vn = Jail::create_in(&sb, "ctn-power-vnet", &sb.root, &["vnet=new"]);
    assert_ne!(
        std::fs::read_link(format!("/proc/{}/ns/net", vn.init_pid())).unwrap(),
        std::fs::read_link("/proc/self/ns/net").unwrap(),
        "vnet=new: the jail is in the host's network namespace"
    );
    let out = vn.hostile(&["netadmin"]);
    assert_eq!(errno_of(&out, "netadmin"), None, "{out}");
    // a fresh network namespace has its loopback down
    let o = vn.exec(&["ip", "link", "set", "lo", "up"]);
    assert!(
        o.status.success(),
        "a vnet jail cannot configure its own loopback: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn params_list_states_the_capability_each_allow_parameter_controls() {
    let _g = shared();
    let sb = Sandbox::new();
    let out = sb.ok(&["jail", "params"]);
    for (param, what) in [
        ("allow.raw_sockets", "CAP_NET_RAW"),
        ("allow.chflags", "CAP_LINUX_IMMUTABLE"),
        ("allow.mlock", "CAP_IPC_LOCK"),
        ("vnet", "CAP_NET_ADMIN"),
    ] {
        let line = out
            .lines()
            .find(|l| l.split_whitespace().next() == Some(param))
            .unwrap_or_else(|| panic!("no {param} line in `jailctl jail params`:\n{out}"));
        assert!(
            line.contains(what),
            "`jailctl jail params` does not say that {param} controls {what}:\n{line}"
        );
    }
    let line = out
        .lines()
        .find(|l| l.split_whitespace().next() == Some("allow.mount.tmpfs"))
        .unwrap_or_else(|| panic!("no allow.mount.tmpfs line:\n{out}"));
    assert!(
        line.contains("mount(2)") || line.contains("filter") || line.contains("CAP_SYS_ADMIN"),
        "`jailctl jail params` does not say what allow.mount.tmpfs lets through:\n{line}"
    );
}

// ---------------------------------------------------------------------------------
// /proc exposure of our processes

#[test]
fn jail_root_cannot_reach_the_inits_binary_libraries_or_descriptors() {
    let _g = shared();
    let sb = Sandbox::new();
    let j = Jail::create(&sb, "ctn-init-proc", &[]);
    let out = j.hostile(&["procexpose", "1"]);
    assert_denied(&out, "readlink /proc/1/exe");
    assert_denied(&out, "open-rdonly /proc/1/exe");
    assert_denied(&out, "open-wronly /proc/1/exe");
    assert_denied(&out, "open-path /proc/1/exe");
    assert_denied(&out, "open-rdonly /proc/1/root");
    assert_denied(&out, "open-rdonly /proc/1/environ");
    assert!(
        allowed_lines(&out).is_empty(),
        "jail root reaches the init's files through /proc/1:\n{}",
        allowed_lines(&out).join("\n")
    );
    // busybox says the same
    assert!(!j.exec(&["readlink", "/proc/1/exe"]).status.success());
    assert!(
        !j.exec(&["ls", "/proc/1/map_files/"]).status.success()
            || j.ok(&["ls", "/proc/1/map_files/"]).trim().is_empty()
    );
    assert!(!j.exec(&["ls", "/proc/1/root/"]).status.success());
}

#[test]
fn probe_runs_confined_and_exposes_nothing_but_can_still_be_triggered() {
    let _g = shared();
    let d = Daemon::start();
    let j = Jail::create(&d.sb, "ctn-probe", &[]);
    let fired = d.file("fired");
    d.register(&[
        "-c",
        &format!("echo fired >> {}", fired.display()),
        "-j",
        "ctn-probe",
        "-t",
        "CTN_PROBE_TITLE",
    ]);
    let pid = probe_jail_pid(&d, "ctn-probe", "CTN_PROBE_TITLE");

    // capabilities and filter, seen inside and from the host
    let st = j.ok(&["cat", &format!("/proc/{pid}/status")]);
    assert_caps(&st, &["CapBnd", "CapEff", "CapPrm"], base(), "probe");
    assert_caps(&st, &["CapInh", "CapAmb"], 0, "probe");
    assert_eq!(status_field(&st, "Seccomp"), Some("2"), "probe:\n{st}");
    let host_pid = probe_host_pid(&d, "CTN_PROBE_TITLE");
    let st = std::fs::read_to_string(format!("/proc/{host_pid}/status")).unwrap();
    assert_caps(&st, &["CapBnd", "CapEff"], base(), "probe, from the host");

    // nothing of the host through its /proc entries
    let out = j.hostile(&["procexpose", &pid]);
    assert_denied(&out, &format!("readlink /proc/{pid}/exe"));
    assert_denied(&out, &format!("open-rdonly /proc/{pid}/exe"));
    assert_denied(&out, &format!("open-wronly /proc/{pid}/exe"));
    assert_denied(&out, &format!("open-rdonly /proc/{pid}/root"));
    assert!(
        allowed_lines(&out).is_empty(),
        "jail root reaches the probe's files through /proc/{pid}:\n{}",
        allowed_lines(&out).join("\n")
    );
    assert_denied(&j.hostile(&["ptrace", &pid]), &format!("ptrace {pid}"));

    // its command line stays readable: pkill -f still finds and fires it
    assert!(j
        .ok(&["cat", &format!("/proc/{pid}/cmdline")])
        .contains("CTN_PROBE_TITLE"));
    assert!(d.trigger("ctn-probe", "CTN_PROBE_TITLE").status.success());
    assert!(
        wait_until(5, || std::fs::read_to_string(&fired)
            .unwrap_or_default()
            .contains("fired")),
        "the probe did not fire; log:\n{}",
        d.log_text()
    );
}

#[test]
fn no_host_file_is_reachable_from_any_process_in_the_jail() {
    let _g = shared();
    let d = Daemon::start();
    let j = Jail::create(&d.sb, "ctn-scan", &[]);
    d.register(&["-c", "true", "-j", "ctn-scan", "-t", "CTN_SCAN_PROBE"]);
    let probe = probe_jail_pid(&d, "ctn-scan", "CTN_SCAN_PROBE");
    // processes entered with jail exec, as root and as a user, still running
    let mut kids: Vec<std::process::Child> = [None, Some("user")]
        .iter()
        .zip(["31.41", "27.18"])
        .map(|(u, secs)| {
            let mut c = j.jailctl();
            c.args(["jail", "exec"]);
            if let Some(u) = u {
                c.args(["-u", u]);
            }
            c.args(["ctn-scan", "sleep", secs])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    assert!(
        wait_until(5, || j
            .exec(&["pgrep", "-f", "sleep 31.41|sleep 27.18"])
            .stdout
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .count()
            == 2),
        "the jail exec processes did not start"
    );
    let out = j.hostile(&["scan"]);
    for k in &mut kids {
        let _ = k.kill();
        let _ = k.wait();
    }
    let pids: BTreeSet<&str> = out
        .lines()
        .filter_map(|l| l.strip_prefix("PID "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(
        pids.contains("1") && pids.contains(probe.as_str()),
        "the scan did not see init and the probe ({probe}):\n{out}"
    );
    let host: Vec<&str> = out.lines().filter(|l| l.starts_with("HOSTFILE")).collect();
    assert!(
        host.is_empty(),
        "host files reachable from inside the jail:\n{}",
        host.join("\n")
    );
    // descriptors on devices: only those of the jail's /dev (and its pseudo-terminals)
    let allowed_dev = ["1:3", "1:5", "1:7", "1:8", "1:9", "5:0", "5:2"];
    for l in out.lines().filter(|l| l.starts_with("DEVICE")) {
        let dev = l.rsplit(' ').next().unwrap();
        assert!(
            allowed_dev.contains(&dev) || dev.starts_with("136:"),
            "a process in the jail holds a host device: {l}"
        );
    }
}

/// The end-to-end check: a root inside opens whatever it can of the init and of
/// a probe, holds it while the daemon stops and no jailctl runs, then tries to write
/// through it. It must have got nothing, and the host's binaries and C library must be
/// unchanged. (The helper writes zero bytes at most: a broken implementation is
/// detected without damaging this machine.)
#[test]
fn descriptors_held_until_the_daemon_and_jailctl_are_gone_change_no_host_file() {
    let _g = exclusive();
    let before = checksums();
    assert!(before.len() >= 3, "{before:?}");
    let mut d = Daemon::start();
    let j = Jail::create(&d.sb, "ctn-hold", &[]);
    d.register(&["-c", "true", "-j", "ctn-hold", "-t", "CTN_HOLD_PROBE"]);
    let probe = probe_jail_pid(&d, "ctn-hold", "CTN_HOLD_PROBE");
    let probe_host = probe_host_pid(&d, "CTN_HOLD_PROBE");
    let init = j.init_pid();
    let out_file = j.root.join("tmp/hold.out");
    let go = j.root.join("tmp/go");
    j.ok(&[
        "sh",
        "-c",
        &format!("/bin/hostile hold /tmp/go 1 {probe} >/tmp/hold.out 2>&1 </dev/null &"),
    ]);
    let read = || std::fs::read_to_string(&out_file).unwrap_or_default();
    assert!(
        wait_until(10, || read().contains("HOLDING")),
        "hostile hold did not report:\n{}",
        read()
    );

    // the daemon goes (and with it the probe); no jailctl of ours runs
    d.stop();
    assert!(
        wait_until(5, || common::stat_fields(probe_host)
            .is_none_or(|f| f[0] == "Z")),
        "the probe survived the daemon"
    );
    let mine = || {
        let ours = d.sb.processes();
        our_binaries_running(&[init])
            .into_iter()
            .filter(|(p, _)| ours.contains(p))
            .collect::<Vec<_>>()
    };
    assert!(
        wait_until(10, || mine().is_empty()),
        "jailctl/jaildaemon processes of this test survive the daemon: {:?}",
        mine()
    );
    let foreign = our_binaries_running(&[init]);
    if !foreign.is_empty() {
        // another test run on this machine: their text stays busy (ETXTBSY), the
        // checks below still hold
        eprintln!("note: jailctl/jaildaemon processes of another run: {foreign:?}");
    }
    std::fs::write(&go, "").unwrap();
    assert!(
        wait_until(20, || read().contains("DONE")),
        "hostile hold did not finish:\n{}",
        read()
    );
    let after = checksums();
    let out = read();

    assert_eq!(before, after, "a host binary or library changed!\n{out}");
    assert!(
        out.lines().any(|l| l == "HOLDING 0"),
        "the jail root held descriptors of host files:\n{}",
        allowed_lines(&out).join("\n")
    );
    assert!(
        allowed_lines(&out).is_empty(),
        "the jail root got:\n{}",
        allowed_lines(&out).join("\n")
    );
    drop(j);
}

// ---------------------------------------------------------------------------------
// The system call filter, ptrace

#[test]
fn seccomp_filter_refuses_kernel_level_calls_with_eperm_without_killing() {
    let _g = shared();
    let sb = Sandbox::new();
    let j = Jail::create(&sb, "ctn-seccomp", &[]);
    let out = j.hostile(&["all"]);
    for call in [
        "finit_module",
        "init_module",
        "delete_module",
        "kexec_load",
        "kexec_file_load",
        "reboot",
        "swapon",
        "swapoff",
        "acct",
        "settimeofday",
        "clock_settime",
        "adjtimex",
        "bpf",
        "perf_event_open",
        "keyctl",
        "add_key",
        "request_key",
        "open_by_handle_at",
        "userfaultfd",
        "io_uring_setup",
        "mount",
        "umount2",
        "pivot_root",
        "setns",
        "unshare_user",
        "unshare_mnt",
        "clone_newuser",
        "clone_newns",
    ] {
        assert_denied_with(&out, call, &["EPERM"]);
    }
    // clone3 cannot be inspected by seccomp: refused outright (ENOSYS makes libc fall
    // back to clone); the new mount API likewise
    assert_denied_with(&out, "clone3_newuser", &["EPERM", "ENOSYS"]);
    assert_denied_with(&out, "fsopen", &["EPERM", "ENOSYS"]);
    // x32 system calls (a classic filter bypass)
    assert_denied(&out, "x32_getpid");
    assert!(
        allowed_lines(&out).is_empty(),
        "{}",
        allowed_lines(&out).join("\n")
    );
    // the same for a jail user, and for a setuid-root program it runs (below); the
    // jail still works afterwards
    let out = j.hostile_as(Some("user"), &["all"]);
    assert!(allowed_lines(&out).is_empty(), "{out}");
    assert_eq!(j.ok(&["echo", "alive"]).trim(), "alive");
}

#[test]
fn ptrace_of_the_init_or_a_host_process_is_refused() {
    let _g = shared();
    let sb = Sandbox::new();
    let j = Jail::create(&sb, "ctn-ptrace", &[]);
    assert_denied_with(
        &j.hostile(&["ptrace", "1"]),
        "ptrace 1",
        &["EPERM", "EACCES"],
    );
    // a host process is not even visible
    let me = std::process::id().to_string();
    assert_denied_with(
        &j.hostile(&["ptrace", &me]),
        &format!("ptrace {me}"),
        &["ESRCH"],
    );
    assert!(!j.exec(&["kill", "-0", &me]).status.success());
}

// ---------------------------------------------------------------------------------
// /proc, /dev, devices

#[test]
fn proc_kernel_settings_are_read_only_and_kernel_files_masked() {
    let _g = shared();
    let sb = Sandbox::new();
    let j = Jail::create(&sb, "ctn-proc", &["host.hostname=ctn-proc"]);

    // opened for writing only (nothing is ever written, even if the open succeeds)
    let targets: Vec<&str> = [
        "/proc/sys/kernel/hostname",
        "/proc/sys/kernel/core_pattern",
        "/proc/sys/kernel/modprobe",
        "/proc/sys/vm/drop_caches",
        "/proc/sysrq-trigger",
        "/proc/irq/default_smp_affinity",
    ]
    .into_iter()
    .filter(|p| Path::new(p).exists())
    .collect();
    let mut args = vec!["openw"];
    args.extend(&targets);
    let out = j.hostile(&args);
    for t in &targets {
        assert_denied(&out, &format!("open-wronly {t}"));
    }
    // as busybox would try it, on the jail's own hostname
    assert!(!j
        .sh("echo evil > /proc/sys/kernel/hostname")
        .status
        .success());
    assert!(!j.exec(&["hostname", "evil"]).status.success());
    assert_eq!(j.ok(&["hostname"]).trim(), "ctn-proc");
    assert_ne!(
        nix::unistd::gethostname().unwrap().to_string_lossy(),
        "evil"
    );

    // mounted read-only (where the host has them)
    let mi = j.ok(&["cat", "/proc/self/mountinfo"]);
    for p in ["/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus"] {
        if !Path::new(p).exists() {
            continue;
        }
        // the last mount on a point is the one that shows
        let line = mi
            .lines()
            .rfind(|l| l.split_whitespace().nth(4) == Some(p))
            .unwrap_or_else(|| panic!("{p} is not a mount of its own in the jail:\n{mi}"));
        let opts = line.split_whitespace().nth(5).unwrap();
        assert!(
            opts.split(',').any(|o| o == "ro"),
            "{p} is not read-only in the jail: {line}"
        );
    }

    // masked: reading gives nothing
    let masked: Vec<&str> = [
        "/proc/kcore",
        "/proc/kmsg",
        "/proc/keys",
        "/proc/timer_list",
    ]
    .into_iter()
    .filter(|p| Path::new(p).exists())
    .collect();
    let mut args = vec!["readmask"];
    args.extend(&masked);
    let out = j.hostile(&args);
    for p in &masked {
        let read_nothing = out.lines().any(|l| l == format!("READ {p} 0"));
        let refused = was_denied(&out, &format!("open-rdonly {p}"));
        assert!(
            read_nothing || refused,
            "{p} is not masked in the jail:\n{out}"
        );
    }
}

fn was_denied(out: &str, what: &str) -> bool {
    attempts(out)
        .iter()
        .any(|(w, a)| w == what && matches!(a, Attempt::Denied(..)))
}

#[test]
fn dev_holds_only_the_default_devfs_nodes_and_they_work() {
    let _g = shared();
    let sb = Sandbox::new();
    let j = Jail::create(&sb, "ctn-dev", &[]);
    let listing: BTreeSet<String> = j
        .ok(&["ls", "-A", "/dev"])
        .split_whitespace()
        .map(String::from)
        .collect();
    let want: BTreeSet<String> = [
        "null", "zero", "full", "random", "urandom", "tty", "ptmx", "pts", "fd", "stdin", "stdout",
        "stderr",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(listing, want, "/dev of a jail");
    let st = j.ok(&[
        "stat",
        "-c",
        "%n %t %T",
        "/dev/null",
        "/dev/zero",
        "/dev/full",
        "/dev/random",
        "/dev/urandom",
        "/dev/tty",
    ]);
    assert_eq!(
        st.lines().collect::<Vec<_>>(),
        vec![
            "/dev/null 1 3",
            "/dev/zero 1 5",
            "/dev/full 1 7",
            "/dev/random 1 8",
            "/dev/urandom 1 9",
            "/dev/tty 5 0"
        ]
    );
    assert_eq!(
        j.ok(&[
            "sh",
            "-c",
            "echo x > /dev/null && head -c 7 /dev/zero | wc -c && head -c 9 /dev/urandom | wc -c"
        ])
        .split_whitespace()
        .collect::<Vec<_>>(),
        vec!["7", "9"]
    );
}

/// The host's root disk (major:minor of the file system holding /).
fn host_root_disk() -> (u64, u64) {
    let dev = std::fs::metadata("/").unwrap().dev();
    (nix::sys::stat::major(dev), nix::sys::stat::minor(dev))
}

fn host_mknod(path: &Path, kind: nix::sys::stat::SFlag, major: u64, minor: u64) {
    let _ = std::fs::remove_file(path);
    nix::sys::stat::mknod(
        path,
        kind,
        nix::sys::stat::Mode::from_bits_truncate(0o600),
        nix::sys::stat::makedev(major, minor),
    )
    .unwrap_or_else(|e| panic!("mknod {} on the host: {e}", path.display()));
}

#[test]
fn block_devices_cannot_be_created_and_planted_ones_cannot_be_opened() {
    let _g = shared();
    use nix::sys::stat::SFlag;
    let sb = Sandbox::new();
    let (maj, min) = host_root_disk();
    // planted by the host before the jail exists
    host_mknod(&sb.root.join("tmp/disk"), SFlag::S_IFBLK, maj, min);
    host_mknod(&sb.root.join("tmp/sda"), SFlag::S_IFBLK, 8, 0);
    host_mknod(&sb.root.join("tmp/mem"), SFlag::S_IFCHR, 1, 1);
    host_mknod(&sb.root.join("tmp/kmsg"), SFlag::S_IFCHR, 1, 11);
    let j = Jail::create(&sb, "ctn-mknod", &[]);
    // and after
    host_mknod(&sb.root.join("tmp/disk-late"), SFlag::S_IFBLK, maj, min);

    let out = j.hostile(&["mknod", "/tmp/new-sda", "b", "8", "0"]);
    assert_denied_with(&out, "mknod /tmp/new-sda", &["EPERM"]);
    assert!(!sb.root.join("tmp/new-sda").exists());
    assert!(!j
        .exec(&[
            "mknod",
            "/tmp/new-disk",
            "b",
            &maj.to_string(),
            &min.to_string()
        ])
        .status
        .success());
    assert!(!sb.root.join("tmp/new-disk").exists());

    // opened read-only, never read
    let out = j.hostile(&[
        "open",
        "/tmp/disk",
        "/tmp/sda",
        "/tmp/mem",
        "/tmp/kmsg",
        "/tmp/disk-late",
    ]);
    for p in [
        "/tmp/disk",
        "/tmp/sda",
        "/tmp/mem",
        "/tmp/kmsg",
        "/tmp/disk-late",
    ] {
        assert_denied_with(&out, &format!("open-rdonly {p}"), &["EPERM", "EACCES"]);
    }
    assert!(!j.sh("head -c 1 /tmp/disk > /dev/null").status.success());
}

// ---------------------------------------------------------------------------------
// Mounting

#[test]
fn mount_is_refused_without_allow_mount() {
    let _g = shared();
    let sb = Sandbox::new();
    let j = Jail::create(&sb, "ctn-nomount", &[]);
    assert!(!j
        .exec(&["mount", "-t", "tmpfs", "tmpfs", "/mnt"])
        .status
        .success());
    assert_denied_with(
        &j.hostile(&["mount_tmpfs", "/mnt"]),
        "mount_tmpfs /mnt",
        &["EPERM"],
    );
    assert!(!j
        .ok(&["cat", "/proc/self/mountinfo"])
        .lines()
        .any(|l| l.split_whitespace().nth(4) == Some("/mnt")));
}

#[test]
fn allow_mount_tmpfs_mounts_in_an_own_user_namespace_and_nothing_more() {
    let _g = shared();
    use nix::sys::stat::SFlag;
    let sb = Sandbox::new();
    let (maj, min) = host_root_disk();
    host_mknod(&sb.root.join("tmp/disk"), SFlag::S_IFBLK, maj, min);
    let j = Jail::create(&sb, "ctn-mount", &["allow.mount", "allow.mount.tmpfs"]);
    let out = j.ok(&[
        "sh",
        "-c",
        "mount -t tmpfs tmpfs /mnt && echo in-tmpfs > /mnt/f && cat /mnt/f && grep ' /mnt ' /proc/mounts",
    ]);
    assert!(
        out.contains("in-tmpfs") && out.contains("tmpfs /mnt tmpfs"),
        "{out}"
    );
    assert!(
        !sb.root.join("mnt/f").exists(),
        "the tmpfs is the host's directory"
    );
    assert!(
        sb.host_mounts().is_empty(),
        "the jail's mount shows on the host: {:?}",
        sb.host_mounts()
    );
    // its own user namespace, identity-mapped
    let map = j.ok(&["cat", "/proc/self/uid_map"]);
    assert_eq!(
        map.split_whitespace().collect::<Vec<_>>(),
        vec!["0", "0", "4294967295"],
        "uid_map"
    );
    assert_ne!(
        std::fs::read_link(format!("/proc/{}/ns/user", j.init_pid())).unwrap(),
        std::fs::read_link("/proc/self/ns/user").unwrap(),
        "allow.mount.tmpfs: the jail is in the host's user namespace"
    );
    // and no more power over the host than before
    let out = j.hostile(&["all"]);
    for call in [
        "finit_module",
        "kexec_load",
        "reboot",
        "settimeofday",
        "bpf",
    ] {
        assert_denied_with(&out, call, &["EPERM"]);
    }
    // the read-only /proc/sys cannot be uncovered, nor written
    assert_denied(&out, "umount2");
    let out = j.hostile(&[
        "openw",
        "/proc/sys/kernel/core_pattern",
        "/proc/sys/kernel/hostname",
    ]);
    assert_denied(&out, "open-wronly /proc/sys/kernel/core_pattern");
    assert_denied(&out, "open-wronly /proc/sys/kernel/hostname");
    let out = j.hostile(&["mknod", "/tmp/new-sda", "b", "8", "0"]);
    assert_denied_with(&out, "mknod /tmp/new-sda", &["EPERM"]);
    let out = j.hostile(&["open", "/tmp/disk"]);
    assert_denied_with(&out, "open-rdonly /tmp/disk", &["EPERM", "EACCES"]);
}

// ---------------------------------------------------------------------------------
// What jail root can still do

#[test]
fn jail_root_can_still_chown_chmod_and_override_permissions() {
    let _g = shared();
    let sb = Sandbox::new();
    let j = Jail::create(&sb, "ctn-chown", &[]);
    let out = j.ok(&[
        "sh",
        "-c",
        "echo hi > /tmp/owned && chown 1001:1001 /tmp/owned && chmod 640 /tmp/owned \
         && stat -c %u:%g:%a /tmp/owned",
    ]);
    assert_eq!(out.trim(), "1001:1001:640");
    let m = std::fs::metadata(sb.root.join("tmp/owned")).unwrap();
    assert_eq!(
        (m.uid(), m.gid(), m.mode() & 0o7777),
        (1001, 1001, 0o640),
        "seen from the host"
    );
    // CAP_DAC_OVERRIDE: root reads a file nobody may read; a user may not
    j.ok(&[
        "sh",
        "-c",
        "echo secret > /tmp/locked && chown 1002:1002 /tmp/locked && chmod 000 /tmp/locked",
    ]);
    assert_eq!(j.ok(&["cat", "/tmp/locked"]).trim(), "secret");
    assert!(!j
        .exec_as(Some("user"), &["cat", "/tmp/locked"])
        .status
        .success());
}

#[test]
fn setuid_root_programs_work_but_stay_bounded() {
    let _g = shared();
    let sb = Sandbox::new();
    let j = Jail::create(&sb, "ctn-suid", &[]);
    let suid = sb.root.join("bin/hostile-suid");
    std::fs::copy(hostile_bin(), &suid).unwrap();
    nix::unistd::chown(
        &suid,
        Some(nix::unistd::Uid::from_raw(0)),
        Some(nix::unistd::Gid::from_raw(0)),
    )
    .unwrap();
    std::fs::set_permissions(&suid, std::fs::Permissions::from_mode(0o4755)).unwrap();

    let o = j.exec_as(Some("user"), &["/bin/hostile-suid", "euid"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}");
    assert!(
        out.lines().any(|l| l == "EUID 0 UID 1001"),
        "a setuid-root program run by user 1001 does not get euid 0:\n{out}"
    );
    assert_caps(&out, &["CapEff", "CapPrm", "CapBnd"], base(), "setuid root");
    let o = j.exec_as(Some("user"), &["/bin/hostile-suid", "all"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}");
    for call in ["finit_module", "kexec_load", "mount", "unshare_user", "bpf"] {
        assert_denied_with(&out, call, &["EPERM"]);
    }
    let o = j.exec_as(
        Some("user"),
        &["/bin/hostile-suid", "mknod", "/tmp/s", "b", "8", "0"],
    );
    assert_denied_with(
        &String::from_utf8_lossy(&o.stdout),
        "mknod /tmp/s",
        &["EPERM"],
    );
}

/// 80 when free on the host's loopback, else another reserved port that is.
fn free_reserved_port() -> u16 {
    std::iter::once(80)
        .chain(81..1024)
        .find(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())
        .expect("no free port below 1024 on 127.0.0.1")
}

#[test]
fn jail_root_can_bind_a_reserved_port() {
    let _g = shared();
    let sb = Sandbox::new();
    let j = Jail::create(&sb, "ctn-bind", &[]);
    let port = free_reserved_port().to_string();
    let out = j.hostile(&["bind", &port]);
    assert_eq!(
        errno_of(&out, &format!("bind {port}")),
        None,
        "jail root cannot bind 127.0.0.1:{port}"
    );
    let unpriv: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
        .map(|s| s.trim().parse().unwrap_or(1024))
        .unwrap_or(1024);
    if port.parse::<u16>().unwrap() < unpriv {
        let out = j.hostile_as(Some("user"), &["bind", &port]);
        assert_denied_with(&out, &format!("bind {port}"), &["EACCES"]);
    }
}

#[test]
fn jail_root_can_kill_its_own_processes() {
    let _g = shared();
    let sb = Sandbox::new();
    let j = Jail::create(&sb, "ctn-kill", &[]);
    assert_eq!(
        j.ok(&[
            "sh",
            "-c",
            "sleep 100 & p=$!; kill $p; wait $p; echo status=$?"
        ])
        .trim(),
        "status=143"
    );
    // a process of another jail user (CAP_KILL)
    let mut other = j
        .jailctl()
        .args(["jail", "exec", "-u", "other", "ctn-kill", "sleep", "42.42"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(
        wait_until(5, || j
            .exec(&["pgrep", "-f", "sleep 42.42"])
            .status
            .success()),
        "the user's sleep did not start"
    );
    let o = j.exec(&["pkill", "-f", "sleep 42.42"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut status = None;
    assert!(
        wait_until(5, || {
            status = other.try_wait().unwrap();
            status.is_some()
        }),
        "the killed process still runs"
    );
    let _ = other.kill();
    assert_eq!(status.unwrap().code(), Some(143));
}
