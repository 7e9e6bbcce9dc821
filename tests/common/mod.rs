//! Shared helpers of the integration tests. These tests need root (namespaces, mounts,
//! setns); CI runs them as root. A missing facility fails the test with what to install.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const JAILCTL: &str = env!("CARGO_BIN_EXE_jailctl");

pub fn require_root() {
    assert!(nix::unistd::geteuid().is_root(), "these tests need root (namespaces, mounts, setns): run them as root, as CI does");
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
    assert!(o.status.success(), "building a busybox root failed: {}", String::from_utf8_lossy(&o.stderr));
}

impl Sandbox {
    pub fn new() -> Sandbox {
        require_root();
        let dir = tempfile::Builder::new().prefix("jd-test-").tempdir_in("/tmp").unwrap();
        let root = dir.path().join("root");
        make_root(&root);
        let registry = dir.path().join("registry");
        Sandbox { dir, root, registry }
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
        assert!(o.status.success(), "jailctl {args:?} failed: {}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    }

    /// Run and require failure; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(!o.status.success(), "jailctl {args:?} should have failed: {}", String::from_utf8_lossy(&o.stdout));
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
            Ok(rd) => rd.flatten().map(|d| d.file_name().to_string_lossy().into_owned()).filter(|n| n.ends_with(".json")).collect(),
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
            let Ok(pid) = d.file_name().to_string_lossy().parse::<i32>() else { continue };
            if pid == me {
                continue;
            }
            let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else { continue };
            if env.split(|&b| b == 0).any(|v| v == needle.as_bytes()) {
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                if !stat.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z') {
                    out.push(pid);
                }
            }
        }
        out
    }

    /// Host mounts that mention this sandbox.
    pub fn host_mounts(&self) -> Vec<String> {
        let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let d = self.dir.path().display().to_string();
        mi.lines().filter(|l| l.contains(&d)).map(String::from).collect()
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
        assert!(self.wait_for(5, || self.processes().is_empty()), "processes left behind: {:?}", self.processes());
        assert!(self.registry_files().is_empty(), "registry entries left behind: {:?}", self.registry_files());
        assert!(self.host_mounts().is_empty(), "host mounts left behind: {:?}", self.host_mounts());
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
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL);
        }
    }
}
