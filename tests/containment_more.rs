//! Linux jail containment (issue #7), what tests/containment.rs leaves out:
//!
//! * the manager's ways into a jail (`jailctl` on the directory backend): an
//!   `exec_start`/`exec_stop` hook, `jailctl exec`, `jailctl console` (login on a
//!   pseudo-terminal that script(1) provides) all run with the base capability set and
//!   the seccomp filter; the manager property `allow_raw_sockets=1` adds exactly
//!   CAP_NET_RAW; the manager's default `securelevel=2` withholds CAP_LINUX_IMMUTABLE
//!   even with `allow_chflags=1`, `securelevel=0` grants it;
//! * `linux.userns=new` on the jail layer: root inside is host uid 1000000+jid*65536,
//!   the root directory is idmapped (files keep their owners both ways), the hostname
//!   is the jail's own only with `allow.set_hostname`, and nothing of the host is
//!   reachable through the init's /proc entries;
//! * `linux.userns=identity`: an identity map, and mounting still needs
//!   `allow.mount.tmpfs` (the filter refuses it otherwise);
//! * an unknown `linux.userns` value is refused and leaves nothing behind.
//!
//! Real jails on busybox roots, checked the way a user would (`/proc/self/status`,
//! `id`, `ls -ln`, `ps` on the host), with the static helper tests/helpers/hostile.c
//! where busybox cannot make the call. Needs root. Linux only.
#![cfg(target_os = "linux")]

mod common;

use common::hostile::{
    allowed_lines, cap, caps_of, errno_of, install_hostile, status_field, wait_until, BASE,
};
use common::{make_root, require_root, Sandbox, JAILCTL};
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// Bound of every single command this file runs.
const CMD_SECS: u64 = 120;

// ---------------------------------------------------------------------------------
// Capabilities (names, BASE and the status parsing: tests/common/hostile.rs)

/// The mask of capability `name` alone.
fn bit(name: &str) -> u64 {
    1u64 << cap(name)
}

fn base() -> u64 {
    let m = BASE.iter().fold(0, |m, n| m | bit(n));
    assert_eq!(m, 0xb004_85fb, "test constants: the base set");
    m
}

/// The named Cap* sets of a status text equal `want`; the Seccomp mode is 2 (filter).
fn assert_confined(status: &str, sets: &[&str], want: u64, who: &str) {
    let caps = caps_of(status);
    for set in sets {
        let got = *caps
            .get(*set)
            .unwrap_or_else(|| panic!("{who}: no {set} line in\n{status}"));
        assert!(
            got == want,
            "{who}: {set} is {got:016x}, want {want:016x} (extra {:016x}, missing {:016x})\n{status}",
            got & !want,
            want & !got
        );
    }
    assert_eq!(
        status_field(status, "Seccomp"),
        Some("2"),
        "{who}: no seccomp filter\n{status}"
    );
}

// ---------------------------------------------------------------------------------
// Bounded commands

/// Run `c` (stdin /dev/null) to completion within `secs`, killing it past that.
fn run_bounded(c: Command, secs: u64) -> Output {
    try_run_bounded(c, secs).unwrap_or_else(|e| panic!("{e}"))
}

/// As [`run_bounded`], but an error instead of a panic (for Drop).
fn try_run_bounded(mut c: Command, secs: u64) -> Result<Output, String> {
    let what = format!("{c:?}");
    let mut child = c
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {what}: {e}"))?;
    let (tx, rx) = mpsc::channel();
    for (i, mut r) in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ]
    .into_iter()
    .enumerate()
    {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut v = vec![];
            let _ = r.read_to_end(&mut v);
            let _ = tx.send((i, v));
        });
    }
    let end = Instant::now() + Duration::from_secs(secs);
    let status = loop {
        if let Some(st) = child.try_wait().map_err(|e| e.to_string())? {
            break st;
        }
        if Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("{what} did not finish within {secs} s"));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut out = [vec![], vec![]];
    for _ in 0..2 {
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok((i, v)) => out[i] = v,
            Err(_) => {
                return Err(format!(
                    "{what} exited but something it started holds its output open"
                ))
            }
        }
    }
    let [stdout, stderr] = out;
    Ok(Output {
        status,
        stdout,
        stderr,
    })
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

// ---------------------------------------------------------------------------------
// The manager (directory backend), as tests/manager.rs sets it up

/// A manager on the directory backend in a temporary directory, with release `bb-1`
/// (a busybox root with `hostile` in /bin) fetched from a local directory. Dropping it
/// stops and destroys every jail it made (also when the test fails).
struct Manager {
    dir: tempfile::TempDir,
}

impl Manager {
    fn new() -> Manager {
        require_root();
        let dir = tempfile::Builder::new()
            .prefix("jd-ctm-")
            .tempdir_in("/tmp")
            .unwrap();
        let root = dir.path().join("relroot");
        make_root(&root);
        install_hostile(&root);
        let rel = dir.path().join("release");
        std::fs::create_dir_all(&rel).unwrap();
        let mut tar = Command::new("tar");
        tar.arg("-C")
            .arg(&root)
            .args(["-c", "-J", "-f"])
            .arg(rel.join("base.txz"))
            .arg(".");
        let o = run_bounded(tar, CMD_SECS);
        assert!(
            o.status.success(),
            "tar -J failed (apt-get install -y xz-utils): {}",
            text(&o.stderr)
        );
        let mut sum = Command::new("sha256sum");
        sum.arg(rel.join("base.txz"));
        let sum = text(&run_bounded(sum, CMD_SECS).stdout);
        std::fs::write(
            rel.join("MANIFEST"),
            format!(
                "base.txz\t{}\t1\tbase\t\"Base system\"\ton\n",
                sum.split_whitespace().next().expect("sha256sum output")
            ),
        )
        .unwrap();
        let m = Manager { dir };
        m.ok(&[
            "fetch",
            "release=bb-1",
            &format!("ftplocaldir={}", rel.display()),
        ]);
        m
    }

    fn base(&self) -> PathBuf {
        self.dir.path().join("jailctl")
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new(JAILCTL);
        c.env("JAILDAEMON_REGISTRY", self.dir.path().join("registry"))
            .env("JAILCTL_RUN", self.dir.path().join("run"))
            .env("JAILCTL_MOUNTPOINT", self.dir.path().join("mp"))
            .env("JAILCTL_ROOT", self.base())
            .env_remove("JAILCTL_POOL");
        c
    }

    /// Another program with jailctl's environment.
    fn with_env(&self, mut c: Command) -> Command {
        for (k, v) in self.cmd().get_envs() {
            match v {
                Some(v) => c.env(k, v),
                None => c.env_remove(k),
            };
        }
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        let mut c = self.cmd();
        c.args(args);
        run_bounded(c, CMD_SECS)
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "jailctl {args:?} failed ({:?}): {}{}",
            o.status,
            text(&o.stdout),
            text(&o.stderr)
        );
        text(&o.stdout)
    }

    /// `create tag=TAG props...`, then `start TAG`; returns the UUID.
    fn start(&self, tag: &str, props: &[&str]) -> String {
        let t = format!("tag={tag}");
        let mut a = vec!["create", &t];
        a.extend_from_slice(props);
        let uuid = self
            .ok(&a)
            .lines()
            .next()
            .expect("create prints the UUID")
            .trim()
            .to_string();
        self.ok(&["start", tag]);
        uuid
    }

    /// The jail's root directory as the host sees it while it runs.
    fn root(&self, uuid: &str) -> PathBuf {
        self.base().join("jails").join(uuid).join("root")
    }

    /// `jailctl exec TAG cat FILE`.
    fn cat(&self, tag: &str, file: &str) -> String {
        self.ok(&["exec", tag, "cat", file])
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        let run = |args: &[&str]| {
            let mut c = self.cmd();
            c.args(args);
            try_run_bounded(c, CMD_SECS)
        };
        let _ = run(&["stop", "ALL"]);
        if let Ok(o) = run(&["list", "-H"]) {
            for row in text(&o.stdout).lines() {
                if let Some(uuid) = row.split('\t').nth(1) {
                    let _ = run(&["destroy", "-f", uuid]);
                }
            }
        }
        // whatever a failed stop left: kernel jails, then mounts below the base
        if let Ok(o) = run(&["jail", "list", "jid"]) {
            for jid in text(&o.stdout).split_whitespace() {
                let _ = run(&["jail", "remove", jid]);
            }
        }
        let base = self.base().display().to_string();
        let mounts: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_whitespace().nth(4).map(String::from))
            .filter(|m| m.starts_with(&base))
            .collect();
        for m in mounts.iter().rev() {
            let _ = nix::mount::umount2(m.as_str(), nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

// ---------------------------------------------------------------------------------
// Jails of the jail layer

/// A jail of a sandbox's registry, removed when dropped.
struct Jail {
    name: String,
    registry: PathBuf,
}

impl Jail {
    fn create(sb: &Sandbox, name: &str, root: &Path, extra: &[&str]) -> Jail {
        install_hostile(root);
        let j = Jail {
            name: name.to_string(),
            registry: sb.registry.clone(),
        };
        let n = format!("name={name}");
        let p = format!("path={}", root.display());
        let mut a = vec!["jail", "create", &n, &p, "persist"];
        a.extend_from_slice(extra);
        let o = j.run(&a);
        assert!(
            o.status.success(),
            "jailctl {a:?} failed ({:?}): {}{}",
            o.status,
            text(&o.stdout),
            text(&o.stderr)
        );
        j
    }

    fn run(&self, args: &[&str]) -> Output {
        let mut c = Command::new(JAILCTL);
        c.env("JAILDAEMON_REGISTRY", &self.registry).args(args);
        run_bounded(c, CMD_SECS)
    }

    fn exec(&self, args: &[&str]) -> Output {
        let mut a = vec!["jail", "exec", self.name.as_str()];
        a.extend_from_slice(args);
        self.run(&a)
    }

    /// Run inside as root, require success, return stdout.
    fn ok(&self, args: &[&str]) -> String {
        let o = self.exec(args);
        assert!(
            o.status.success(),
            "jail exec {} {args:?} failed ({:?}): {}{}",
            self.name,
            o.status,
            text(&o.stdout),
            text(&o.stderr)
        );
        text(&o.stdout)
    }

    /// `hostile args...` inside as root; it must exit normally. Returns its report.
    fn hostile(&self, args: &[&str]) -> String {
        let mut a = vec!["/bin/hostile"];
        a.extend_from_slice(args);
        let o = self.exec(&a);
        assert!(
            o.status.success(),
            "hostile {args:?} in jail {} did not exit normally ({:?}): {}{}",
            self.name,
            o.status,
            text(&o.stdout),
            text(&o.stderr)
        );
        text(&o.stdout)
    }

    fn jid(&self) -> i32 {
        let o = self.run(&["jail", "get", &self.name, "jid"]);
        assert!(o.status.success(), "{}", text(&o.stderr));
        text(&o.stdout).trim().parse().expect("a jid")
    }
}

impl Drop for Jail {
    fn drop(&mut self) {
        let mut c = Command::new(JAILCTL);
        c.env("JAILDAEMON_REGISTRY", &self.registry)
            .args(["jail", "remove", &self.name]);
        let _ = try_run_bounded(c, CMD_SECS);
    }
}

/// A tmpfs mounted by the test, detached when dropped.
struct TmpfsMount(PathBuf);

impl Drop for TmpfsMount {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

/// The file system type of `dir` as `stat -f -c %T` names it.
fn fs_type(dir: &Path) -> String {
    let mut c = Command::new("stat");
    c.args(["-f", "-c", "%T"]).arg(dir);
    let o = run_bounded(c, 10);
    assert!(o.status.success(), "stat -f: {}", text(&o.stderr));
    text(&o.stdout).trim().to_string()
}

/// A busybox root for a `linux.userns=new` jail, on a file system that supports
/// idmapped mounts: in the sandbox when /tmp is ext4, xfs, btrfs or tmpfs; otherwise on
/// a tmpfs the test mounts in the sandbox (returned, to be dropped after the jails).
fn idmappable_root(sb: &Sandbox, name: &str) -> (Option<TmpfsMount>, PathBuf) {
    let t = fs_type(sb.dir.path());
    if matches!(t.as_str(), "ext2/ext3" | "xfs" | "btrfs" | "tmpfs") {
        return (None, sb.another_root(name));
    }
    let mp = sb.dir.path().join(format!("{name}-tmpfs"));
    std::fs::create_dir_all(&mp).unwrap();
    nix::mount::mount(
        Some("tmpfs"),
        &mp,
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        Some("size=256m,mode=755"),
    )
    .unwrap_or_else(|e| {
        panic!(
            "mount a tmpfs on {} ({t} has no idmapped mounts): {e}",
            mp.display()
        )
    });
    let guard = TmpfsMount(mp.clone());
    let root = mp.join("root");
    make_root(&root);
    (Some(guard), root)
}

/// Host pids whose command line is exactly `argv`, zombies excluded.
fn host_pids_of(argv: &[&str]) -> Vec<i32> {
    let want: Vec<u8> = argv.iter().flat_map(|a| a.bytes().chain([0])).collect();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|d| d.file_name().to_string_lossy().parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == want)
                && common::stat_fields(*pid).is_some_and(|f| f[0] != "Z")
        })
        .collect()
}

// =================================================================================
// 1. The manager's ways into a jail

#[test]
fn manager_exec_start_and_exec_stop_hooks_run_with_the_base_caps_and_the_filter() {
    let m = Manager::new();
    let uuid = m.start(
        "ctm-hook",
        &[
            "exec_start=cp /proc/$$/status /tmp/hook-sh.status; cat /proc/self/status > /tmp/hook.status",
            "exec_stop=cat /proc/self/status > /tmp/stop.status",
        ],
    );
    // written inside the jail's root: the hook ran inside
    let root = m.root(&uuid);
    let sh = std::fs::read_to_string(root.join("tmp/hook-sh.status"))
        .expect("exec_start did not write /tmp/hook-sh.status in the jail");
    assert_confined(
        &sh,
        &["CapBnd", "CapEff", "CapPrm"],
        base(),
        "exec_start's shell",
    );
    let cat = std::fs::read_to_string(root.join("tmp/hook.status"))
        .expect("exec_start did not write /tmp/hook.status in the jail");
    assert_confined(
        &cat,
        &["CapBnd", "CapEff", "CapPrm"],
        base(),
        "a child of exec_start",
    );
    assert_confined(&cat, &["CapInh", "CapAmb"], 0, "a child of exec_start");

    m.ok(&["stop", "ctm-hook"]);
    // after stop the root is unmounted; the overlay's upper layer holds the file
    let stop = std::fs::read_to_string(
        m.base()
            .join("jails")
            .join(&uuid)
            .join("upper/tmp/stop.status"),
    )
    .expect("exec_stop did not write /tmp/stop.status in the jail");
    assert_confined(&stop, &["CapBnd", "CapEff", "CapPrm"], base(), "exec_stop");
}

#[test]
fn manager_exec_runs_with_the_base_caps_and_the_filter() {
    let m = Manager::new();
    m.start("ctm-exec", &[]);
    let st = m.cat("ctm-exec", "/proc/self/status");
    assert_confined(&st, &["CapBnd", "CapEff", "CapPrm"], base(), "jailctl exec");
    assert_confined(&st, &["CapInh", "CapAmb"], 0, "jailctl exec");
    assert_eq!(
        status_field(&st, "NoNewPrivs"),
        Some("0"),
        "jailctl exec sets no_new_privs"
    );
    // a shell and its child
    let st = m.ok(&[
        "exec",
        "ctm-exec",
        "sh",
        "-c",
        "cat /proc/self/status; true",
    ]);
    assert_confined(
        &st,
        &["CapBnd", "CapEff", "CapPrm"],
        base(),
        "a child of jailctl exec",
    );
    // as a jail user: nothing effective, the same bound
    let st = m.ok(&["exec", "-u", "user", "ctm-exec", "cat", "/proc/self/status"]);
    assert_confined(&st, &["CapEff", "CapPrm"], 0, "jailctl exec -u user");
    assert_confined(&st, &["CapBnd"], base(), "jailctl exec -u user");
    // the jail's init too
    let st = m.cat("ctm-exec", "/proc/1/status");
    assert_confined(
        &st,
        &["CapBnd", "CapEff"],
        base(),
        "the init of a manager jail",
    );
    // and the filter refuses what it refuses elsewhere
    let out = m.ok(&["exec", "ctm-exec", "/bin/hostile", "all"]);
    for call in ["finit_module", "kexec_load", "mount", "unshare_user", "bpf"] {
        assert_eq!(
            errno_of(&out, call).as_deref(),
            Some("EPERM"),
            "{call} through jailctl exec:\n{out}"
        );
    }
}

/// A child killed when dropped.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn manager_console_login_shell_runs_with_the_base_caps_and_the_filter() {
    let m = Manager::new();
    m.start("ctm-console", &[]);
    assert_eq!(
        m.ok(&["get", "login_flags", "ctm-console"]).trim(),
        "-f root"
    );
    // login(1) wants a terminal: script(1) gives it one (bsdutils)
    let cmdline = format!("{JAILCTL} console ctm-console");
    let mut c = m.with_env(Command::new("script"));
    c.args(["-qec", &cmdline, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = KillOnDrop(
        c.spawn()
            .unwrap_or_else(|e| panic!("cannot run script(1) ({e}): apt-get install -y bsdutils")),
    );
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut so = child.0.stdout.take().unwrap();
    let s2 = seen.clone();
    std::thread::spawn(move || {
        let mut b = [0u8; 4096];
        while let Ok(n) = so.read(&mut b) {
            if n == 0 {
                break;
            }
            s2.lock().unwrap().extend_from_slice(&b[..n]);
        }
    });
    let seen_text = || text(&seen.lock().unwrap()).replace('\r', "");
    assert!(
        wait_until(20, || seen_text().contains("# ")),
        "no root prompt from `jailctl console`:\n{}",
        seen_text()
    );
    let mut stdin = child.0.stdin.take().unwrap();
    // the markers are split in the typed line, so the terminal's echo does not match
    stdin
        .write_all(
            b"echo CON''SOLE-BEGIN; cat /etc/jail-marker; grep -E '^(Cap|Seccomp|NoNewPrivs)' /proc/self/status; echo CON''SOLE-END\nexit\n",
        )
        .unwrap();
    drop(stdin);
    let mut status = None;
    assert!(
        wait_until(20, || {
            status = child.0.try_wait().unwrap();
            status.is_some()
        }),
        "`jailctl console` did not end after `exit`:\n{}",
        seen_text()
    );
    let out = seen_text();
    let inner = out
        .split_once("CONSOLE-BEGIN\n")
        .and_then(|(_, r)| r.split_once("CONSOLE-END"))
        .map(|(i, _)| i.to_string())
        .unwrap_or_else(|| panic!("the console shell did not run the commands:\n{out}"));
    assert!(
        inner.lines().any(|l| l == "inside-the-jail"),
        "the console is not in the jail:\n{out}"
    );
    assert_confined(
        &inner,
        &["CapBnd", "CapEff", "CapPrm"],
        base(),
        "jailctl console",
    );
    assert_confined(&inner, &["CapInh", "CapAmb"], 0, "jailctl console");
}

#[test]
fn manager_allow_raw_sockets_adds_exactly_cap_net_raw() {
    let m = Manager::new();
    m.start("ctm-raw", &["allow_raw_sockets=1"]);
    m.start("ctm-noraw", &[]);
    let want = base() | bit("CAP_NET_RAW");
    let st = m.cat("ctm-raw", "/proc/self/status");
    assert_confined(
        &st,
        &["CapBnd", "CapEff", "CapPrm"],
        want,
        "allow_raw_sockets=1: exec",
    );
    let st = m.cat("ctm-raw", "/proc/1/status");
    assert_confined(
        &st,
        &["CapBnd", "CapEff"],
        want,
        "allow_raw_sockets=1: init",
    );
    let out = m.ok(&["exec", "ctm-raw", "/bin/hostile", "rawsock"]);
    assert_eq!(
        errno_of(&out, "rawsock"),
        None,
        "allow_raw_sockets=1:\n{out}"
    );

    let st = m.cat("ctm-noraw", "/proc/self/status");
    assert_confined(
        &st,
        &["CapBnd", "CapEff", "CapPrm"],
        base(),
        "default: exec",
    );
    let out = m.ok(&["exec", "ctm-noraw", "/bin/hostile", "rawsock"]);
    assert_eq!(
        errno_of(&out, "rawsock").as_deref(),
        Some("EPERM"),
        "default:\n{out}"
    );
}

#[test]
fn manager_securelevel_withholds_cap_linux_immutable_even_with_allow_chflags() {
    let m = Manager::new();
    // iocage's default securelevel is 2
    m.start("ctm-sl-default", &["allow_chflags=1"]);
    assert_eq!(m.ok(&["get", "securelevel", "ctm-sl-default"]).trim(), "2");
    m.start("ctm-sl-1", &["allow_chflags=1", "securelevel=1"]);
    m.start("ctm-sl-0", &["allow_chflags=1", "securelevel=0"]);

    for tag in ["ctm-sl-default", "ctm-sl-1"] {
        let st = m.cat(tag, "/proc/self/status");
        assert_confined(&st, &["CapBnd", "CapEff", "CapPrm"], base(), tag);
        let out = m.ok(&[
            "exec",
            tag,
            "sh",
            "-c",
            "echo x > /tmp/flagged && /bin/hostile chattr /tmp/flagged",
        ]);
        assert_eq!(
            errno_of(&out, "chattr_immutable").as_deref(),
            Some("EPERM"),
            "{tag}: chattr +i:\n{out}"
        );
    }
    let want = base() | bit("CAP_LINUX_IMMUTABLE");
    let st = m.cat("ctm-sl-0", "/proc/self/status");
    assert_confined(
        &st,
        &["CapBnd", "CapEff", "CapPrm"],
        want,
        "securelevel=0 allow_chflags=1",
    );
    let st = m.cat("ctm-sl-0", "/proc/1/status");
    assert_confined(
        &st,
        &["CapBnd", "CapEff"],
        want,
        "securelevel=0 allow_chflags=1: init",
    );
    let out = m.ok(&[
        "exec",
        "ctm-sl-0",
        "sh",
        "-c",
        "echo x > /tmp/flagged && /bin/hostile chattr /tmp/flagged",
    ]);
    assert_eq!(
        errno_of(&out, "chattr_immutable"),
        None,
        "securelevel=0:\n{out}"
    );
    assert_eq!(
        errno_of(&out, "chattr_clear"),
        None,
        "securelevel=0:\n{out}"
    );
}

// =================================================================================
// 2. linux.userns=new

#[test]
fn userns_new_maps_jail_root_to_an_unprivileged_host_range_with_an_idmapped_root() {
    let sb = Sandbox::new();
    let (_fs, root) = idmappable_root(&sb, "uroot-map");
    let j = Jail::create(&sb, "ctm-uns-map", &root, &["linux.userns=new"]);
    let jid = j.jid();
    let hbase = 1_000_000u64 + jid as u64 * 65536;

    // root inside
    let id = j.ok(&["id"]);
    assert!(id.starts_with("uid=0(root) gid=0("), "id inside: {id}");
    for map in ["/proc/self/uid_map", "/proc/self/gid_map"] {
        let m = j.ok(&["cat", map]);
        assert_eq!(
            m.split_whitespace().collect::<Vec<_>>(),
            vec!["0".to_string(), hbase.to_string(), "65536".to_string()],
            "{map} of jid {jid}"
        );
    }

    // the root keeps its owners inside
    let ls = j.ok(&["ls", "-ln", "/bin/busybox"]);
    let f: Vec<&str> = ls.split_whitespace().collect();
    assert_eq!(
        (f[2], f[3]),
        ("0", "0"),
        "owner of /bin/busybox inside: {ls}"
    );
    // and files made inside keep theirs on the host (idmapped, not base+uid)
    j.ok(&[
        "sh",
        "-c",
        "echo hi > /tmp/by-root && echo hi > /tmp/by-user && chown 1001:1001 /tmp/by-user",
    ]);
    let m = std::fs::metadata(root.join("tmp/by-root")).unwrap();
    assert_eq!(
        (m.uid(), m.gid()),
        (0, 0),
        "a file made by jail root, seen from the host"
    );
    let m = std::fs::metadata(root.join("tmp/by-user")).unwrap();
    assert_eq!(
        (m.uid(), m.gid()),
        (1001, 1001),
        "a file chowned to 1001 inside, seen from the host"
    );

    // the jail's processes are the range's uids on the host
    let arg = format!("{}.{}", 700 + jid, 4321);
    j.ok(&[
        "sh",
        "-c",
        &format!("sleep {arg} </dev/null >/dev/null 2>&1 &"),
    ]);
    let mut pids = vec![];
    assert!(
        wait_until(10, || {
            pids = host_pids_of(&["sleep", &arg]);
            pids.len() == 1
        }),
        "the jail's `sleep {arg}` is not found on the host: {pids:?}"
    );
    let mut ps = Command::new("ps");
    ps.args(["-o", "uid=,gid=", "-p", &pids[0].to_string()]);
    let o = run_bounded(ps, 10);
    assert!(
        o.status.success(),
        "ps (apt-get install -y procps): {}",
        text(&o.stderr)
    );
    assert_eq!(
        text(&o.stdout).split_whitespace().collect::<Vec<_>>(),
        vec![hbase.to_string(), hbase.to_string()],
        "host uid and gid of a root process of jid {jid}"
    );
}

#[test]
fn userns_new_sets_the_hostname_only_with_allow_set_hostname() {
    let host_before = nix::unistd::gethostname().unwrap();
    let sb = Sandbox::new();
    let (_fs, root) = idmappable_root(&sb, "uroot-hn");

    let j = Jail::create(
        &sb,
        "ctm-uns-nohn",
        &root,
        &["linux.userns=new", "host.hostname=ctm-before"],
    );
    let o = j.exec(&["hostname", "ctm-evil"]);
    assert!(
        !o.status.success(),
        "hostname is settable without allow.set_hostname"
    );
    assert_eq!(j.ok(&["hostname"]).trim(), "ctm-before");
    drop(j);

    let j = Jail::create(
        &sb,
        "ctm-uns-hn",
        &root,
        &[
            "linux.userns=new",
            "host.hostname=ctm-before",
            "allow.set_hostname",
        ],
    );
    let out = j.ok(&["sh", "-c", "hostname ctm-renamed && hostname"]);
    assert_eq!(
        out.trim(),
        "ctm-renamed",
        "allow.set_hostname with linux.userns=new"
    );
    assert_eq!(j.ok(&["hostname"]).trim(), "ctm-renamed", "a later process");
    assert_eq!(
        nix::unistd::gethostname().unwrap(),
        host_before,
        "the host's hostname changed"
    );
}

#[test]
fn userns_new_jail_root_still_reaches_nothing_of_the_host_through_proc() {
    let sb = Sandbox::new();
    let (_fs, root) = idmappable_root(&sb, "uroot-proc");
    let j = Jail::create(&sb, "ctm-uns-proc", &root, &["linux.userns=new"]);
    let out = j.hostile(&["procexpose", "1"]);
    for what in [
        "readlink /proc/1/exe",
        "open-rdonly /proc/1/exe",
        "open-wronly /proc/1/exe",
        "open-rdonly /proc/1/root",
        "open-rdonly /proc/1/environ",
    ] {
        assert!(
            errno_of(&out, what).is_some(),
            "`{what}` was ALLOWED:\n{out}"
        );
    }
    assert!(
        allowed_lines(&out).is_empty(),
        "a linux.userns=new jail's root reaches the init's files:\n{}",
        allowed_lines(&out).join("\n")
    );
    // the kernel-level calls stay refused, though root has CAP_SYS_ADMIN in its namespace
    let out = j.hostile(&["all"]);
    for call in [
        "finit_module",
        "kexec_load",
        "reboot",
        "settimeofday",
        "bpf",
        "mount",
    ] {
        assert_eq!(
            errno_of(&out, call).as_deref(),
            Some("EPERM"),
            "{call}:\n{out}"
        );
    }
}

// =================================================================================
// 3. linux.userns=identity

#[test]
fn userns_identity_maps_uids_to_themselves_and_still_needs_allow_mount_tmpfs() {
    let sb = Sandbox::new();
    let j = Jail::create(&sb, "ctm-uns-id", &sb.root, &["linux.userns=identity"]);
    for map in ["/proc/self/uid_map", "/proc/self/gid_map"] {
        assert_eq!(
            j.ok(&["cat", map]).split_whitespace().collect::<Vec<_>>(),
            vec!["0", "0", "4294967295"],
            "{map}"
        );
    }
    // CAP_SYS_ADMIN over its own namespaces: only the filter stands between it and mount
    let st = j.ok(&["cat", "/proc/self/status"]);
    let eff = caps_of(&st)["CapEff"];
    assert_ne!(eff & bit("CAP_SYS_ADMIN"), 0, "identity jail root:\n{st}");
    assert!(
        !j.exec(&["mount", "-t", "tmpfs", "tmpfs", "/tmp"])
            .status
            .success(),
        "mount -t tmpfs works without allow.mount.tmpfs"
    );
    assert_eq!(
        errno_of(&j.hostile(&["mount_tmpfs", "/mnt"]), "mount_tmpfs /mnt").as_deref(),
        Some("EPERM")
    );
    assert!(!j
        .ok(&["cat", "/proc/self/mountinfo"])
        .lines()
        .any(|l| matches!(l.split_whitespace().nth(4), Some("/tmp" | "/mnt"))));
    drop(j);

    let j = Jail::create(
        &sb,
        "ctm-uns-id-mnt",
        &sb.root,
        &["linux.userns=identity", "allow.mount.tmpfs"],
    );
    let out = j.ok(&[
        "sh",
        "-c",
        "mount -t tmpfs tmpfs /tmp && echo in-tmpfs > /tmp/f && cat /tmp/f && grep ' /tmp ' /proc/mounts",
    ]);
    assert!(
        out.contains("in-tmpfs") && out.contains("tmpfs /tmp tmpfs"),
        "mount -t tmpfs with allow.mount.tmpfs:\n{out}"
    );
    assert!(
        !sb.root.join("tmp/f").exists(),
        "the tmpfs is the host's directory"
    );
    assert!(
        sb.host_mounts().is_empty(),
        "the jail's mount shows on the host: {:?}",
        sb.host_mounts()
    );
}

// =================================================================================
// 4. A bad linux.userns

#[test]
fn unknown_userns_mode_is_refused_and_leaves_nothing() {
    let sb = Sandbox::new();
    let o = sb.run(&[
        "jail",
        "create",
        "name=ctm-uns-bogus",
        &format!("path={}", sb.root.display()),
        "persist",
        "linux.userns=bogus",
    ]);
    let err = text(&o.stderr);
    assert!(
        !o.status.success(),
        "linux.userns=bogus was accepted: {}",
        text(&o.stdout)
    );
    assert!(
        err.contains("disable, identity or new"),
        "the error does not name the modes: {err}"
    );
    assert!(
        sb.registry_files().is_empty(),
        "registry: {:?}",
        sb.registry_files()
    );
    let list = sb.ok(&["jail", "list", "name"]);
    assert!(list.trim().is_empty(), "jail list name: {list}");
    assert!(!sb.run(&["jail", "get", "ctm-uns-bogus"]).status.success());
    sb.assert_clean();
}
