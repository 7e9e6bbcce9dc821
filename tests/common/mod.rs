//! Shared helpers of the integration tests. These tests need root (namespaces, mounts,
//! setns); CI runs them as root. A missing facility fails the test with what to install.
#![allow(dead_code)]

#[cfg(target_os = "linux")]
pub mod hostile;
#[cfg(target_os = "linux")]
pub mod manager_env;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The fields of /proc/PID/stat after the command name: state, ppid, pgrp,
/// session, tty_nr, ... (None when the process is gone).
pub fn stat_fields(pid: i32) -> Option<Vec<String>> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    Some(
        s.rsplit(')')
            .next()?
            .split_whitespace()
            .map(String::from)
            .collect(),
    )
}

pub const JAILCTL: &str = env!("CARGO_BIN_EXE_jailctl");

pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "these tests need root (namespaces, mounts, setns): run them as root, as CI does"
    );
}

/// A test sandbox: its own jail registry and a busybox root filesystem.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
    pub root: PathBuf,
    pub registry: PathBuf,
}

/// Build a busybox root with `examples/busybox-root.sh` (the same script the demo
/// uses): busybox and its applets, procps' pkill/pgrep, /etc/passwd and group.
pub fn make_root(root: &Path) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/busybox-root.sh");
    let o = Command::new("sh").arg(&script).arg(root).output().unwrap();
    assert!(
        o.status.success(),
        "building a busybox root failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

impl Sandbox {
    pub fn new() -> Sandbox {
        require_root();
        let dir = tempfile::Builder::new()
            .prefix("jd-test-")
            .tempdir_in("/tmp")
            .unwrap();
        let root = dir.path().join("root");
        make_root(&root);
        let registry = dir.path().join("registry");
        Sandbox {
            dir,
            root,
            registry,
        }
    }

    /// A second root in the same sandbox.
    pub fn another_root(&self, name: &str) -> PathBuf {
        let r = self.dir.path().join(name);
        make_root(&r);
        r
    }

    pub fn jailctl(&self) -> Command {
        let mut c = Command::new(JAILCTL);
        c.env("JAILDAEMON_REGISTRY", &self.registry);
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.jailctl().args(args).output().unwrap()
    }

    /// Run and require success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "jailctl {args:?} failed: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    }

    /// Run and require failure; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            !o.status.success(),
            "jailctl {args:?} should have failed: {}",
            String::from_utf8_lossy(&o.stdout)
        );
        String::from_utf8(o.stderr).unwrap()
    }

    pub fn create(&self, name: &str, extra: &[&str]) -> i32 {
        self.create_named_in(name, &self.root, extra)
    }

    pub fn create_named_in(&self, name: &str, root: &Path, extra: &[&str]) -> i32 {
        let path = format!("path={}", root.display());
        let n = format!("name={name}");
        let mut args = vec!["jail", "create", &n, &path, "persist"];
        args.extend_from_slice(extra);
        self.ok(&args).trim().parse().expect("jid printed")
    }

    pub fn registry_files(&self) -> Vec<String> {
        match std::fs::read_dir(&self.registry) {
            Ok(rd) => rd
                .flatten()
                .map(|d| d.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".json"))
                .collect(),
            Err(_) => vec![],
        }
    }

    /// Processes started by this sandbox's jailctl runs (they carry its registry path
    /// in their environment), zombies excluded.
    pub fn processes(&self) -> Vec<i32> {
        let needle = format!("JAILDAEMON_REGISTRY={}", self.registry.display());
        let me = std::process::id() as i32;
        let mut out = vec![];
        for d in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = d.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            if pid == me {
                continue;
            }
            let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else {
                continue;
            };
            if env.split(|&b| b == 0).any(|v| v == needle.as_bytes())
                && stat_fields(pid).is_some_and(|f| f[0] != "Z")
            {
                out.push(pid);
            }
        }
        out
    }

    /// Host mounts that mention this sandbox.
    pub fn host_mounts(&self) -> Vec<String> {
        let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let d = self.dir.path().display().to_string();
        mi.lines()
            .filter(|l| l.contains(&d))
            .map(String::from)
            .collect()
    }

    /// Wait up to `secs` for `f` to hold.
    pub fn wait_for(&self, secs: u64, mut f: impl FnMut() -> bool) -> bool {
        let end = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        while std::time::Instant::now() < end {
            if f() {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        f()
    }

    /// Nothing left: no registry entry, no process, no host mount.
    pub fn assert_clean(&self) {
        assert!(
            self.wait_for(5, || self.processes().is_empty()),
            "processes left behind: {:?}",
            self.processes()
        );
        assert!(
            self.registry_files().is_empty(),
            "registry entries left behind: {:?}",
            self.registry_files()
        );
        assert!(
            self.host_mounts().is_empty(),
            "host mounts left behind: {:?}",
            self.host_mounts()
        );
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        // Remove whatever a failed test left running.
        if let Ok(out) = self.jailctl().args(["jail", "list", "jid"]).output() {
            for jid in String::from_utf8_lossy(&out.stdout).lines() {
                let _ = self.jailctl().args(["jail", "remove", jid.trim()]).output();
            }
        }
        for pid in self.processes() {
            let _ =
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL);
        }
    }
}

pub const JAILDAEMON: &str = env!("CARGO_BIN_EXE_jaildaemon");

/// A foreground daemon (`jaildaemon -D -F`) on a socket inside a sandbox.
pub struct Daemon {
    pub sb: Sandbox,
    pub socket: PathBuf,
    pub pidfile: PathBuf,
    pub log: PathBuf,
    pub child: Option<std::process::Child>,
}

impl Daemon {
    pub fn start() -> Daemon {
        let sb = Sandbox::new();
        let socket = sb.dir.path().join("jd.sock");
        let pidfile = sb.dir.path().join("jd.pid");
        let log = sb.dir.path().join("jd.log");
        let mut d = Daemon {
            sb,
            socket,
            pidfile,
            log,
            child: None,
        };
        d.spawn();
        d
    }

    /// Start (again) a daemon process on this sandbox's socket and pidfile.
    pub fn spawn(&mut self) {
        let child = self
            .daemon_cmd(&["-D", "-F"])
            .stderr(std::fs::File::create(&self.log).unwrap())
            .spawn()
            .unwrap();
        self.child = Some(child);
        assert!(
            self.sb.wait_for(10, || self.ping()),
            "the daemon did not come up; log:\n{}",
            self.log_text()
        );
    }

    pub fn daemon_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(JAILDAEMON);
        c.args(args)
            .arg("-p")
            .arg(&self.pidfile)
            .arg("-f")
            .arg(&self.socket)
            .arg("-s")
            .arg(self.sb.dir.path().join("state/probes.json"))
            .env("JAILDAEMON_REGISTRY", &self.sb.registry)
            .env("RUST_LOG", "debug");
        c
    }

    pub fn ping(&self) -> bool {
        jaildaemon::daemon::client::ping(&self.socket).is_some()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }

    /// The utility, talking to this daemon.
    pub fn util(&self, args: &[&str]) -> Output {
        let mut c = Command::new(JAILDAEMON);
        c.args(args).arg("-f").arg(&self.socket);
        c.output().unwrap()
    }

    pub fn register(&self, args: &[&str]) {
        let o = self.util(args);
        assert!(
            o.status.success(),
            "jaildaemon {args:?} failed: {}\nlog:\n{}",
            String::from_utf8_lossy(&o.stderr),
            self.log_text()
        );
    }

    pub fn probes(&self) -> Vec<serde_json::Value> {
        let o = self.util(&["-l", "-J"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice::<Vec<serde_json::Value>>(&o.stdout).unwrap()
    }

    /// Send SIGHUP from inside jail `jail` to every process whose command line
    /// matches `title`, as a user of the jail would.
    pub fn trigger(&self, jail: &str, title: &str) -> Output {
        self.sb
            .run(&["jail", "exec", jail, "pkill", "-HUP", "-f", title])
    }

    /// Pids (inside the jail) of processes matching `title`, found with pgrep there.
    pub fn pgrep(&self, jail: &str, title: &str) -> Vec<String> {
        let o = self.sb.run(&["jail", "exec", jail, "pgrep", "-f", title]);
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(String::from)
            .collect()
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.sb.dir.path().join(name)
    }

    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.file(name)).unwrap_or_default()
    }

    /// SIGTERM the daemon and wait for it.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("daemon running");
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(c.id() as i32),
            nix::sys::signal::SIGTERM,
        )
        .unwrap();
        c.wait().unwrap()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(c.id() as i32),
                nix::sys::signal::SIGTERM,
            );
            let _ = c.wait();
        }
    }
}
