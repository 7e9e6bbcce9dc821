//! The jailctl test harness shared by tests/manager.rs and tests/manager_safety.rs: a
//! sandbox (`Env`) on either backend (a zfs-fuse pool on a file, or the directory
//! backend) with a release to fetch, and helpers to run jailctl (every wait bounded: a
//! wedged zfs-fuse or jailctl fails the test instead of hanging it) and to check its
//! effects independently of its own output. Cleanup also removes mounts left below the
//! sandbox, so that removing it never descends into a host directory mounted there.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::{make_root, require_root, JAILCTL};

/// `zfs get -H -p -o value PROP DATASET`: the value, or None when zfs fails.
pub fn zfs_get(prop: &str, ds: &str) -> Option<String> {
    let o = zfs_cmd(&["get", "-H", "-p", "-o", "value", prop, ds]);
    o.status
        .success()
        .then(|| String::from_utf8_lossy(&o.stdout).trim().to_string())
}

/// `zfs ARGS` (or `zpool ARGS` when the first is "zpool"), bounded: a wedged zfs-fuse
/// fails the test instead of hanging it.
pub fn zfs_cmd(args: &[&str]) -> Output {
    let (prog, rest) = match args.first() {
        Some(&"zpool") => ("zpool", &args[1..]),
        _ => ("zfs", args),
    };
    let mut c = Command::new(prog);
    c.args(rest);
    run_bounded(
        c,
        Duration::from_secs(60),
        &format!("{prog} {rest:?} (is zfs-fuse wedged?)"),
    )
    .0
}

#[derive(Clone, Copy, Debug, PartialEq)]
/// The storage backend of a sandbox.
pub enum Kind {
    Dir,
    Zfs,
}

/// A sandbox for jailctl: its registry, run directory and backend (a directory, or a
/// zfs-fuse pool on a file) below a temporary directory, and a release to fetch.
/// Dropping it stops every jail, destroys the pool and unmounts what is left below it.
pub struct Env {
    pub kind: Kind,
    pub dir: tempfile::TempDir,
    pub pool: String,
    pub image: PathBuf,
    pub rel: PathBuf,
}

/// How a test binary's sandboxes are named and which archives their release holds.
pub struct Setup {
    /// Prefix of the temporary directory (in /tmp).
    pub dir_prefix: &'static str,
    /// Prefix of the ZFS pool name (followed by 6 characters of the directory's name).
    pub pool_prefix: &'static str,
    /// `(file name, tar compression flag)` of each release archive.
    pub archives: &'static [(&'static str, &'static str)],
}

fn zfs_ready() {
    let ok = |c: &mut Command| {
        let mut c2 = Command::new(c.get_program());
        c2.args(c.get_args());
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            run_bounded(c2, Duration::from_secs(30), "zfs check")
                .0
                .status
                .success()
        }))
        .unwrap_or(false)
    };
    assert!(
        ok(Command::new("sh").args(["-c", "command -v zpool && command -v zfs-fuse"])),
        "ZFS is missing: apt-get install -y zfs-fuse"
    );
    if !ok(Command::new("zpool").arg("list")) {
        let _ = Command::new("zfs-fuse").status();
        for _ in 0..50 {
            if ok(Command::new("zpool").arg("list")) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the zfs-fuse daemon does not answer: start it with `zfs-fuse` (apt-get install -y zfs-fuse)");
    }
}

pub fn sha256(p: &Path) -> String {
    let o = Command::new("sha256sum").arg(p).output().unwrap();
    String::from_utf8(o.stdout)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// A release archive set built from the busybox root: one tarball per `(name, tar
/// flag)` of `archives` (e.g. `("base.txz", "-J")`) and a MANIFEST with their checksums.
pub fn make_release(dir: &Path, archives: &[(&str, &str)]) -> PathBuf {
    let root = dir.join("relroot");
    make_root(&root);
    let rel = dir.join("release");
    std::fs::create_dir_all(&rel).unwrap();
    let mut manifest = String::new();
    for (name, flag) in archives {
        let st = Command::new("tar")
            .arg("-C")
            .arg(&root)
            .args(["-c", flag, "-f"])
            .arg(rel.join(name))
            .arg(".")
            .status()
            .unwrap();
        assert!(
            st.success(),
            "tar {flag} failed (apt-get install -y xz-utils zstd)"
        );
        manifest.push_str(&format!(
            "{name}\t{}\t1\tbase\t\"Base system\"\ton\n",
            sha256(&rel.join(name))
        ));
    }
    std::fs::write(rel.join("MANIFEST"), manifest).unwrap();
    rel
}

/// Run a command with a deadline; its output is collected. Panics (after killing it)
/// when the deadline passes.
pub fn run_bounded(mut c: Command, limit: Duration, what: &str) -> (Output, Duration) {
    let t0 = Instant::now();
    let mut child = c
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let ro = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = so.read_to_end(&mut b);
        b
    });
    let re = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = se.read_to_end(&mut b);
        b
    });
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if t0.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: still running after {limit:?}; killed");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let elapsed = t0.elapsed();
    let stdout = ro.join().unwrap();
    let stderr = re.join().unwrap();
    (
        Output {
            status,
            stdout,
            stderr,
        },
        elapsed,
    )
}

/// A spawned process killed (and reaped) when dropped.
pub struct Kid(pub Option<Child>);

impl Kid {
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill(); // SIGKILL
            let _ = c.wait();
        }
    }

    /// Wait for it to exit, at most `limit`; Some(status) if it did.
    pub fn wait_for(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let t0 = Instant::now();
        let c = self.0.as_mut()?;
        loop {
            if let Some(st) = c.try_wait().unwrap() {
                self.0 = None;
                return Some(st);
            }
            if t0.elapsed() > limit {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Kid {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// (root, mount point, fstype) of every mount of this process's namespace.
pub fn mountinfo() -> Vec<(String, String, String)> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let fstype = l.split(" - ").nth(1)?.split_whitespace().next()?;
            Some((
                f.get(3)?.to_string(),
                f.get(4)?.to_string(),
                fstype.to_string(),
            ))
        })
        .collect()
}

/// Mount points at or below `p` on the host.
pub fn mounts_at_or_below(p: &Path) -> Vec<String> {
    let s = p.display().to_string();
    mountinfo()
        .into_iter()
        .map(|(_, m, _)| m)
        .filter(|m| *m == s || m.starts_with(&format!("{s}/")))
        .collect()
}

/// A long text cut for a message, with its length.
pub fn cut(s: &str) -> String {
    if s.len() <= 400 {
        s.to_string()
    } else {
        let mut end = 300;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}... ({} bytes)", &s[..end], s.len())
    }
}

/// Command arguments for a message, long ones cut.
pub fn shown(args: &[&str]) -> String {
    format!(
        "{:?}",
        args.iter()
            .map(|a| if a.len() > 80 {
                format!("{}...({} bytes)", &a[..40], a.len())
            } else {
                a.to_string()
            })
            .collect::<Vec<_>>()
    )
}

/// Bytes as text, invalid UTF-8 replaced.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The longest a single jailctl command may take.
pub const CMD_LIMIT: Duration = Duration::from_secs(120);

impl Env {
    /// A fresh sandbox of `kind`, named and provisioned as `setup` says: for ZFS a
    /// 768 MiB pool on a file in /var/tmp, and in both cases a release to fetch.
    pub fn setup(kind: Kind, setup: &Setup) -> Env {
        require_root();
        let dir = tempfile::Builder::new()
            .prefix(setup.dir_prefix)
            .tempdir_in("/tmp")
            .unwrap();
        let suffix: String = dir
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_lowercase();
        let pool = format!("{}{}", setup.pool_prefix, &suffix[suffix.len() - 6..]);
        let image = PathBuf::from(format!("/var/tmp/{pool}.img"));
        if kind == Kind::Zfs {
            zfs_ready();
            let f = std::fs::File::create(&image).unwrap();
            f.set_len(768 << 20).unwrap();
            let img = image.display().to_string();
            let o = zfs_cmd(&["zpool", "create", "-m", "none", &pool, &img]);
            assert!(
                o.status.success(),
                "zpool create: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        let rel = make_release(dir.path(), setup.archives);
        Env {
            kind,
            dir,
            pool,
            image,
            rel,
        }
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(JAILCTL);
        c.env("JAILDAEMON_REGISTRY", self.dir.path().join("registry"))
            .env("JAILCTL_RUN", self.dir.path().join("run"))
            .env("JAILCTL_MOUNTPOINT", self.dir.path().join("mp"))
            .env_remove("JAILCTL_ROOT")
            .env_remove("JAILCTL_POOL")
            .env_remove("JAILCTL_CREATE_DELAY_MS");
        match self.kind {
            Kind::Dir => c.env("JAILCTL_ROOT", self.dir.path().join("jailctl")),
            Kind::Zfs => c.env("JAILCTL_POOL", &self.pool),
        };
        c
    }

    /// Another program with jailctl's environment.
    pub fn with_env(&self, mut c: Command) -> Command {
        for (k, v) in self.cmd().get_envs() {
            match v {
                Some(v) => c.env(k, v),
                None => c.env_remove(k),
            };
        }
        c
    }

    /// jailctl ARGS, its output collected; fails the test after CMD_LIMIT.
    pub fn run(&self, args: &[&str]) -> Output {
        self.timed(args).0
    }

    pub fn timed(&self, args: &[&str]) -> (Output, Duration) {
        let mut c = self.cmd();
        c.args(args);
        run_bounded(
            c,
            CMD_LIMIT,
            &format!("[{:?}] jailctl {}", self.kind, shown(args)),
        )
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "[{:?}] jailctl {}: {}{}",
            self.kind,
            shown(args),
            cut(&text(&o.stdout)),
            cut(&text(&o.stderr))
        );
        text(&o.stdout)
    }

    pub fn fails(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            !o.status.success(),
            "[{:?}] jailctl {} should fail: {}",
            self.kind,
            shown(args),
            cut(&text(&o.stdout))
        );
        text(&o.stderr)
    }

    /// jailctl in the background.
    pub fn spawn(&self, args: &[&str], env: &[(&str, &str)]) -> Kid {
        let mut c = self.cmd();
        c.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (k, v) in env {
            c.env(k, v);
        }
        Kid(Some(c.spawn().unwrap()))
    }

    pub fn fetch(&self) {
        let d = format!("ftplocaldir={}", self.rel.display());
        self.ok(&["fetch", "release=bb-1", &d]);
    }

    pub fn create(&self, args: &[&str]) -> String {
        let mut a = vec!["create"];
        a.extend_from_slice(args);
        let out = self.ok(&a);
        out.lines().next().expect("a UUID").trim().to_string()
    }

    pub fn base(&self) -> PathBuf {
        match self.kind {
            Kind::Dir => self.dir.path().join("jailctl"),
            Kind::Zfs => self.dir.path().join("mp"),
        }
    }

    /// A property as stored, read without jailctl.
    pub fn stored(&self, uuid: &str, prop: &str) -> Option<String> {
        match self.kind {
            Kind::Zfs => zfs_get(
                &format!("org.freebsd.iocage:{prop}"),
                &format!("{}/iocage/jails/{uuid}", self.pool),
            )
            .filter(|v| v != "-"),
            Kind::Dir => {
                let p = self.base().join("jails").join(uuid).join("config.json");
                let v: serde_json::Value = serde_json::from_slice(&std::fs::read(p).ok()?).ok()?;
                v[prop].as_str().map(String::from)
            }
        }
    }

    /// Does the jail's storage exist (dataset, directory or its incomplete name)?
    pub fn exists(&self, uuid: &str) -> bool {
        match self.kind {
            Kind::Zfs => zfs_cmd(&["list", &format!("{}/iocage/jails/{uuid}", self.pool)])
                .status
                .success(),
            Kind::Dir => {
                self.base().join("jails").join(uuid).exists()
                    || self
                        .base()
                        .join("jails")
                        .join(format!(".{uuid}.partial"))
                        .exists()
            }
        }
    }

    /// Is the jail's storage in its incomplete (being created or destroyed) state?
    pub fn incomplete(&self, uuid: &str) -> bool {
        match self.kind {
            Kind::Zfs => zfs_get(
                "org.freebsd.iocage:jailctl_incomplete",
                &format!("{}/iocage/jails/{uuid}", self.pool),
            )
            .is_some_and(|v| v != "-"),
            Kind::Dir => self
                .base()
                .join("jails")
                .join(format!(".{uuid}.partial"))
                .exists(),
        }
    }

    pub fn jail_count(&self) -> usize {
        match self.kind {
            Kind::Zfs => {
                let o = zfs_cmd(&[
                    "list",
                    "-H",
                    "-d",
                    "1",
                    "-o",
                    "name",
                    &format!("{}/iocage/jails", self.pool),
                ]);
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .count()
                    .saturating_sub(1)
            }
            Kind::Dir => std::fs::read_dir(self.base().join("jails"))
                .map(|r| r.count())
                .unwrap_or(0),
        }
    }

    pub fn root(&self, uuid: &str) -> PathBuf {
        self.base().join("jails").join(uuid).join("root")
    }

    /// Where host path `p` is inside the jail's root.
    pub fn inside(&self, uuid: &str, p: &Path) -> PathBuf {
        self.root(uuid).join(p.strip_prefix("/").unwrap())
    }

    /// Kernel jails (the jail layer), by name.
    pub fn kernel_jails(&self) -> Vec<String> {
        self.ok(&["jail", "list", "name"])
            .lines()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect()
    }

    pub fn is_up(&self, uuid: &str) -> bool {
        self.kernel_jails().contains(&format!("ioc-{uuid}"))
    }

    /// Host mounts below the backend other than its own ZFS datasets.
    pub fn mounts(&self) -> Vec<String> {
        let d = self.base().display().to_string();
        mountinfo()
            .into_iter()
            .filter(|(_, m, t)| m.starts_with(&d) && !t.starts_with("fuse.zfs"))
            .map(|(_, m, _)| m)
            .collect()
    }

    /// The row of `list -H` for a jail, split into its columns.
    pub fn row(&self, uuid: &str) -> Option<Vec<String>> {
        self.ok(&["list", "-H"])
            .lines()
            .find(|l| l.split('\t').nth(1) == Some(uuid))
            .map(|l| l.split('\t').map(String::from).collect())
    }

    pub fn state(&self, uuid: &str) -> Option<String> {
        self.row(uuid).map(|r| r[3].clone())
    }

    pub fn releases(&self) -> Vec<String> {
        self.ok(&["list", "-r", "-H"])
            .lines()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect()
    }

    /// What a fetch of release `name` may leave behind: its staging area (and a
    /// swapped-out old copy) and its download directory.
    pub fn fetch_leftovers(&self, name: &str) -> Vec<String> {
        let mut left = vec![];
        match self.kind {
            Kind::Dir => {
                for n in [format!(".{name}.partial"), format!(".{name}.old")] {
                    let p = self.base().join("releases").join(n);
                    if p.exists() {
                        left.push(p.display().to_string());
                    }
                }
            }
            Kind::Zfs => {
                let o = zfs_cmd(&[
                    "list",
                    "-H",
                    "-r",
                    "-o",
                    "name",
                    &format!("{}/iocage/releases", self.pool),
                ]);
                for l in text(&o.stdout).lines() {
                    let last = l.trim().rsplit('/').find(|c| *c != "root").unwrap_or("");
                    if last == format!(".{name}.partial") || last == format!(".{name}.old") {
                        left.push(l.trim().to_string());
                    }
                }
            }
        }
        let dl = self.base().join("download").join(name);
        if dl.exists() {
            left.push(dl.display().to_string());
        }
        left
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let mut c = self.cmd();
        c.args(["stop", "ALL"]);
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            run_bounded(c, Duration::from_secs(90), "stop ALL")
        }));
        if self.kind == Kind::Zfs {
            for _ in 0..40 {
                let destroyed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    zfs_cmd(&["zpool", "destroy", "-f", &self.pool])
                        .status
                        .success()
                }));
                if destroyed.unwrap_or(true) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(250));
            }
            let _ = std::fs::remove_file(&self.image);
        }
        // Whatever is still mounted below the sandbox goes before it is removed.
        let mut left = mounts_at_or_below(self.dir.path());
        left.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in left {
            let _ = Command::new("umount").args(["-l", &m]).output();
        }
    }
}

/// Run `f` on a fresh sandbox of each backend, the directory one first.
pub fn both(setup: &Setup, f: impl Fn(&Env)) {
    for k in [Kind::Dir, Kind::Zfs] {
        let e = Env::setup(k, setup);
        f(&e);
    }
}
