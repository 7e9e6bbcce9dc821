//! `jailctl` safety (issue 9), on both backends (a zfs-fuse pool on a file and the
//! directory backend), as an administrator would check it: host writes and mounts stay
//! inside the jail's root whatever the jail planted there, concurrent commands lose no
//! update, a failed or killed fetch leaves the old release and no staging, hook
//! timeouts kill every process of the hook, interrupted commands are shown as such and
//! finished by the next one, fetch times out and says where, values that cannot work
//! are refused with short errors, and a duplicated tag is marked. Needs root.
#![cfg(target_os = "linux")]

mod common;

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::manager_env::{
    self, cut, mountinfo, mounts_at_or_below, sha256, shown, text, zfs_cmd, zfs_get, Env, Kid,
    Kind, Setup,
};

// ------------------------------------------------------------------ harness
// (tests/common/manager_env.rs, and helpers of this file)

/// Sandboxes of this file: `jd-safe-*` directories, `jds*` pools, a release in xz only.
const SETUP: Setup = Setup {
    dir_prefix: "jd-safe-",
    pool_prefix: "jds",
    archives: &[("base.txz", "-J")],
};

fn both(f: impl Fn(&Env)) {
    manager_env::both(&SETUP, f)
}

/// Poll `f` every 50 ms until it holds or `limit` passes.
fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t0 = Instant::now();
    loop {
        if f() {
            return true;
        }
        if t0.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Host processes whose command line (arguments joined by spaces) contains `pat`,
/// zombies excluded.
fn processes_matching(pat: &str) -> Vec<(i32, String)> {
    let me = std::process::id() as i32;
    let mut out = vec![];
    for d in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = d.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let cmd: String = String::from_utf8_lossy(&cmd)
            .split('\0')
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        if cmd.contains(pat) && common::stat_fields(pid).is_some_and(|f| f[0] != "Z") {
            out.push((pid, cmd));
        }
    }
    out
}

/// Names in a directory, sorted (empty when it does not exist).
fn listing(p: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(p)
        .map(|r| {
            r.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Number of entries below `p` (recursively, not following symlinks).
fn count_tree(p: &Path) -> usize {
    let mut n = 0;
    let mut stack = vec![p.to_path_buf()];
    while let Some(d) = stack.pop() {
        if let Ok(rd) = std::fs::read_dir(&d) {
            for e in rd.flatten() {
                n += 1;
                if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    stack.push(e.path());
                }
            }
        }
    }
    n
}

/// An HTTP/1.0 server for /pub/rel/FILE in a thread: `chunk` bytes every `pause` per
/// answer (slow when asked), or `silent`: it accepts and never answers. Stopped when
/// dropped.
struct Server {
    port: u16,
    stop: Arc<AtomicBool>,
}

impl Server {
    fn start(dir: PathBuf, chunk: usize, pause: Duration, silent: bool) -> Server {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let st = stop.clone();
        std::thread::spawn(move || {
            let mut held = vec![];
            for s in listener.incoming().flatten() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                if silent {
                    held.push(s);
                    continue;
                }
                let dir = dir.clone();
                let st = st.clone();
                std::thread::spawn(move || serve(s, &dir, chunk, pause, &st));
            }
        });
        Server { port, stop }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = std::net::TcpStream::connect_timeout(
            &format!("127.0.0.1:{}", self.port).parse().unwrap(),
            Duration::from_secs(1),
        );
    }
}

fn serve(mut s: std::net::TcpStream, dir: &Path, chunk: usize, pause: Duration, stop: &AtomicBool) {
    let mut req = Vec::new();
    let mut buf = [0u8; 1024];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => req.extend_from_slice(&buf[..n]),
        }
    }
    let line = String::from_utf8_lossy(&req)
        .lines()
        .next()
        .unwrap_or("")
        .to_string();
    let path = line.split_whitespace().nth(1).unwrap_or("/");
    let file = path.strip_prefix("/pub/rel/").map(|f| dir.join(f));
    match file.and_then(|f| std::fs::read(f).ok()) {
        Some(body) => {
            let _ = write!(
                s,
                "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            for c in body.chunks(chunk) {
                if stop.load(Ordering::SeqCst) || s.write_all(c).is_err() {
                    return;
                }
                std::thread::sleep(pause);
            }
        }
        None => {
            let _ = s.write_all(b"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n");
        }
    }
}

// ------------------------------------------------------------------ 1. resolver

/// At start the host writes the jail's /etc/resolv.conf. Links planted by the running
/// jail (`/etc` -> a host directory, `/etc/resolv.conf` -> a host file) are resolved
/// inside the jail's root: the host directory is never written.
#[test]
fn resolver_write_never_follows_links_planted_by_the_jail() {
    both(|e| {
        e.fetch();
        let victim = e.dir.path().join("victim");
        std::fs::create_dir_all(&victim).unwrap();
        std::fs::write(victim.join("keep"), "host data\n").unwrap();
        let before = listing(&victim);
        let v = victim.display().to_string();
        let unchanged = |when: &str| {
            assert_eq!(
                listing(&victim),
                before,
                "[{:?}] {when}: the host directory {v} was written",
                e.kind
            );
            assert_eq!(
                std::fs::read_to_string(victim.join("keep")).unwrap(),
                "host data\n"
            );
        };

        // (a) /etc -> host dir, and that path also exists inside the jail (with a copy
        // of /etc): start works, and the file lands at ROOT/<host path>/resolv.conf.
        let u = e.create(&["tag=rs1", "resolver=nameserver 198.18.0.77"]);
        e.ok(&["start", "rs1"]);
        e.ok(&[
            "exec",
            "rs1",
            "sh",
            "-c",
            &format!("mkdir -p {v} && cp -a /etc/. {v}/ && rm -f {v}/resolv.conf && mv /etc /etc.real && ln -s {v} /etc && test -L /etc"),
        ]);
        e.ok(&["stop", "rs1"]);
        unchanged("after the link was planted");
        e.ok(&["start", "rs1"]);
        unchanged("start with /etc -> host dir (present inside)");
        assert_eq!(
            std::fs::read_to_string(e.inside(&u, &victim).join("resolv.conf")).unwrap_or_default(),
            "nameserver 198.18.0.77\n",
            "[{:?}] the resolver was not written inside the root",
            e.kind
        );
        assert!(
            std::fs::symlink_metadata(e.root(&u).join("etc"))
                .unwrap()
                .file_type()
                .is_symlink(),
            "the jail's /etc link was replaced"
        );
        assert_eq!(
            e.ok(&["exec", "rs1", "cat", "/etc/resolv.conf"]),
            "nameserver 198.18.0.77\n"
        );
        e.ok(&["stop", "rs1"]);
        unchanged("stop");

        // (b) /etc/resolv.conf -> a host file, then /etc -> host dir that does not
        // exist inside: the host is never written; start works (no /etc: no resolver)
        // or fails naming resolv.conf.
        let u2 = e.create(&[
            "tag=rs2",
            "resolver=nameserver 198.18.0.78",
            "exec_start=true",
            "exec_stop=true",
        ]);
        e.ok(&["start", "rs2"]);
        e.ok(&[
            "exec",
            "rs2",
            "sh",
            "-c",
            &format!("rm -f /etc/resolv.conf && ln -s {v}/resolv.conf /etc/resolv.conf"),
        ]);
        e.ok(&["stop", "rs2"]);
        e.ok(&["start", "rs2"]);
        unchanged("start with /etc/resolv.conf -> host file");
        let rc = e.root(&u2).join("etc/resolv.conf");
        assert!(
            std::fs::symlink_metadata(&rc)
                .unwrap()
                .file_type()
                .is_file(),
            "the planted resolv.conf link was followed, not replaced"
        );
        assert_eq!(
            std::fs::read_to_string(&rc).unwrap(),
            "nameserver 198.18.0.78\n"
        );
        e.ok(&[
            "exec",
            "rs2",
            "sh",
            "-c",
            &format!("mv /etc /etc.real && ln -s {v} /etc"),
        ]);
        e.ok(&["stop", "rs2"]);
        let o = e.run(&["start", "rs2"]);
        eprintln!(
            "[{:?}] start with /etc -> host dir: {:?} {}",
            e.kind,
            o.status,
            text(&o.stderr).trim()
        );
        unchanged("start with /etc -> host dir (absent inside)");
        assert!(
            o.status.success() || text(&o.stderr).contains("resolv.conf"),
            "[{:?}] start failed for another reason: {}",
            e.kind,
            text(&o.stderr)
        );
        e.run(&["stop", "rs2"]);
        unchanged("the end");
        assert!(e.mounts().is_empty(), "mounts left: {:?}", e.mounts());
    });
}

// ------------------------------------------------------------------ 2. fstab

/// An fstab target that the jail turned into a link to a host directory is resolved
/// inside the root: nothing is mounted on the host directory, and nothing stays
/// mounted after stop.
#[test]
fn fstab_target_links_planted_by_the_jail_stay_inside_the_root() {
    both(|e| {
        e.fetch();
        let shared = e.dir.path().join("fstabsrc");
        std::fs::create_dir_all(&shared).unwrap();
        std::fs::write(shared.join("hello"), "from the host\n").unwrap();
        let victim = e.dir.path().join("victim-mnt");
        std::fs::create_dir_all(&victim).unwrap();
        std::fs::write(victim.join("keep"), "host data\n").unwrap();
        let v = victim.display().to_string();
        let u = e.create(&["tag=fm1"]);
        let jail_dir = e.base().join("jails").join(&u);
        let fstab_line = format!("{} /mnt/data nullfs ro 0 0\n", shared.display());
        let nothing_on_victim = |when: &str| {
            assert!(
                mounts_at_or_below(&victim).is_empty(),
                "[{:?}] {when}: mounted on the host directory: {:?}",
                e.kind,
                mounts_at_or_below(&victim)
            );
            assert_eq!(listing(&victim), vec!["keep".to_string()]);
        };

        // the jail plants /mnt/data -> host dir while it runs
        e.ok(&["start", "fm1"]);
        e.ok(&[
            "exec",
            "fm1",
            "sh",
            "-c",
            &format!(
                "mkdir -p /mnt && rm -rf /mnt/data && ln -s {v} /mnt/data && test -L /mnt/data"
            ),
        ]);
        e.ok(&["stop", "fm1"]);
        std::fs::write(jail_dir.join("fstab"), &fstab_line).unwrap();

        // (a) the link's target does not exist inside: start fails (or mounts inside)
        let o = e.run(&["start", "fm1"]);
        eprintln!(
            "[{:?}] start with /mnt/data -> host dir: {:?} {}",
            e.kind,
            o.status,
            text(&o.stderr).trim()
        );
        nothing_on_victim("start, link target absent inside");
        if o.status.success() {
            assert!(
                !mounts_at_or_below(&e.inside(&u, &victim)).is_empty(),
                "start succeeded but mounted nowhere inside the root"
            );
            e.ok(&["stop", "fm1"]);
        } else {
            let err = text(&o.stderr);
            assert!(err.contains("fstab"), "[{:?}] {err}", e.kind);
            assert!(e.kernel_jails().is_empty());
        }
        nothing_on_victim("after (a)");
        assert!(e.mounts().is_empty(), "mounts left: {:?}", e.mounts());

        // (b) the link's target exists inside: the mount is made there, inside
        std::fs::write(jail_dir.join("fstab"), "").unwrap();
        e.ok(&["start", "fm1"]);
        e.ok(&["exec", "fm1", "mkdir", "-p", &v]);
        e.ok(&["stop", "fm1"]);
        std::fs::write(jail_dir.join("fstab"), &fstab_line).unwrap();
        e.ok(&["start", "fm1"]);
        nothing_on_victim("start, link target present inside");
        let inside = e.inside(&u, &victim);
        assert!(
            mounts_at_or_below(&inside).contains(&inside.display().to_string()),
            "[{:?}] not mounted at {} (mounts: {:?})",
            e.kind,
            inside.display(),
            e.mounts()
        );
        assert_eq!(
            e.ok(&["exec", "fm1", "cat", "/mnt/data/hello"]),
            "from the host\n"
        );
        e.ok(&["stop", "fm1"]);
        nothing_on_victim("stop");
        assert!(e.mounts().is_empty(), "mounts left: {:?}", e.mounts());

        // (c) a link one level up (/mnt -> host dir): the missing /mnt/data is created
        // inside the root, never in the host directory
        let u2 = e.create(&["tag=fm2"]);
        e.ok(&["start", "fm2"]);
        e.ok(&[
            "exec",
            "fm2",
            "sh",
            "-c",
            &format!("rm -rf /mnt && ln -s {v} /mnt && test -L /mnt"),
        ]);
        e.ok(&["stop", "fm2"]);
        std::fs::write(e.base().join("jails").join(&u2).join("fstab"), &fstab_line).unwrap();
        let o = e.run(&["start", "fm2"]);
        eprintln!(
            "[{:?}] start with /mnt -> host dir: {:?} {}",
            e.kind,
            o.status,
            text(&o.stderr).trim()
        );
        nothing_on_victim("start with /mnt -> host dir");
        if o.status.success() {
            assert_eq!(
                e.ok(&["exec", "fm2", "cat", "/mnt/data/hello"]),
                "from the host\n"
            );
            e.ok(&["stop", "fm2"]);
        } else {
            let err = text(&o.stderr);
            assert!(err.contains("fstab"), "[{:?}] {err}", e.kind);
        }
        nothing_on_victim("stop of fm2");
        assert!(e.mounts().is_empty(), "mounts left: {:?}", e.mounts());
        assert!(
            mountinfo()
                .iter()
                .all(|(_, m, t)| t == "fuse.zfs"
                    || !m.starts_with(&e.root(&u).display().to_string())),
            "[{:?}] mounts left in the root",
            e.kind
        );
    });
}

/// The jail moves its fstab mount point around; stop still removes exactly that
/// mount (by its id), and nothing of the source stays mounted.
#[test]
fn fstab_mount_moved_by_the_jail_is_unmounted_at_stop() {
    both(|e| {
        e.fetch();
        let name = format!("fstabsrc-moved-{}", e.pool);
        let shared = e.dir.path().join(&name);
        std::fs::create_dir_all(&shared).unwrap();
        std::fs::write(shared.join("hello"), "from the host\n").unwrap();
        let u = e.create(&["tag=mv1"]);
        std::fs::write(
            e.base().join("jails").join(&u).join("fstab"),
            format!("{} /mnt/data nullfs ro 0 0\n", shared.display()),
        )
        .unwrap();
        let of_source = || -> Vec<String> {
            mountinfo()
                .into_iter()
                .filter(|(root, _, _)| root.ends_with(&format!("/{name}")))
                .map(|(_, m, _)| m)
                .collect()
        };
        e.ok(&["start", "mv1"]);
        assert_eq!(of_source().len(), 1, "{:?}", of_source());
        // moved with its directory if the kernel allows it, refused otherwise
        let o = e.run(&[
            "exec",
            "mv1",
            "sh",
            "-c",
            "mv /mnt/data /mnt/moved; mv /mnt /mnt.moved; ls -d /mnt* /mnt*/*; true",
        ]);
        eprintln!(
            "[{:?}] inside after the moves: {}{}; host: {:?}",
            e.kind,
            text(&o.stdout),
            text(&o.stderr),
            of_source()
        );
        // /mnt/data itself is busy (a mount point), but its parent can be renamed:
        // the mount moved with it, on the host too
        let now = of_source();
        assert_eq!(now.len(), 1, "{now:?}");
        assert_eq!(
            now[0],
            e.root(&u).join("mnt.moved/data").display().to_string(),
            "[{:?}] the mount did not move with its directory",
            e.kind
        );
        e.ok(&["stop", "mv1"]);
        assert!(
            of_source().is_empty(),
            "[{:?}] the fstab mount outlived stop: {:?}",
            e.kind,
            of_source()
        );
        assert!(e.mounts().is_empty(), "mounts left: {:?}", e.mounts());
        assert!(e.kernel_jails().is_empty());
    });
}

// ------------------------------------------------------------------ 3. lost updates

/// Three concurrent `set`s of different properties, 20 rounds: every value survives;
/// a `set` during a slow start keeps `last_started`.
#[test]
fn concurrent_sets_lose_no_update() {
    both(|e| {
        e.fetch();
        let u = e.create(&["tag=ls1"]);
        for round in 0..20 {
            let want = [
                ("notes", format!("round-{round}")),
                ("priority", format!("{}", 10 + round)),
                ("exec_timeout", format!("{}", 100 + round)),
            ];
            let mut kids: Vec<Kid> = want
                .iter()
                .map(|(k, v)| e.spawn(&["set", &format!("{k}={v}"), &u], &[]))
                .collect();
            for k in &mut kids {
                let st = k.wait_for(Duration::from_secs(60)).expect("set hung");
                assert!(st.success(), "[{:?}] round {round}: a set failed", e.kind);
            }
            let all = e.ok(&["get", "all", &u]);
            for (k, v) in &want {
                assert!(
                    all.lines().any(|l| l == format!("{k}:{v}")),
                    "[{:?}] round {round}: {k}={v} was lost:\n{all}",
                    e.kind
                );
            }
        }
        // read independently of jailctl too
        assert_eq!(e.stored(&u, "notes").as_deref(), Some("round-19"));
        assert_eq!(e.stored(&u, "priority").as_deref(), Some("29"));
        assert_eq!(e.stored(&u, "exec_timeout").as_deref(), Some("119"));

        // set during a slow start
        e.ok(&["set", "exec_start=sleep 2", &u]);
        assert_eq!(e.ok(&["get", "last_started", &u]).trim(), "none");
        let mut start = e.spawn(&["start", "ls1"], &[]);
        assert!(
            wait_until(Duration::from_secs(30), || e.is_up(&u)),
            "the start never made the jail"
        );
        e.ok(&["set", "notes=x", &u]);
        let st = start.wait_for(Duration::from_secs(60)).expect("start hung");
        assert!(st.success(), "[{:?}] the slow start failed", e.kind);
        let last = e.ok(&["get", "last_started", &u]);
        assert_ne!(
            last.trim(),
            "none",
            "[{:?}] last_started was reverted",
            e.kind
        );
        assert!(!last.trim().is_empty());
        assert_eq!(e.ok(&["get", "notes", &u]).trim(), "x");
        assert_eq!(e.stored(&u, "notes").as_deref(), Some("x"));
        e.ok(&["stop", "ls1"]);
    });
}

// ------------------------------------------------------------------ 4. fetch failures

/// Re-fetching a release from a truncated archive fails and leaves the release as it
/// was (listed, usable) and no staging area or download behind.
#[test]
fn failed_refetch_keeps_the_old_release() {
    both(|e| {
        e.fetch();
        let relroot = e.base().join("releases/bb-1/root");
        let count = count_tree(&relroot);
        assert!(relroot.join("bin/busybox").exists());
        // truncated archive, MANIFEST matching it: the extraction fails
        let bad = e.dir.path().join("truncated");
        std::fs::create_dir_all(&bad).unwrap();
        let full = std::fs::read(e.rel.join("base.txz")).unwrap();
        std::fs::write(bad.join("base.txz"), &full[..1000]).unwrap();
        std::fs::write(
            bad.join("MANIFEST"),
            format!("base.txz\t{}\t1\tbase\n", sha256(&bad.join("base.txz"))),
        )
        .unwrap();
        // and truncated with the good MANIFEST: a checksum mismatch
        let bad2 = e.dir.path().join("truncated2");
        std::fs::create_dir_all(&bad2).unwrap();
        std::fs::write(bad2.join("base.txz"), &full[..1000]).unwrap();
        std::fs::copy(e.rel.join("MANIFEST"), bad2.join("MANIFEST")).unwrap();
        for (d, needle) in [(&bad, "base.txz"), (&bad2, "checksum")] {
            let err = e.fails(&[
                "fetch",
                "release=bb-1",
                &format!("ftplocaldir={}", d.display()),
            ]);
            assert!(err.contains(needle), "[{:?}] {err}", e.kind);
            assert_eq!(e.releases(), vec!["bb-1"], "[{:?}] after {err}", e.kind);
            assert!(
                relroot.join("bin/busybox").exists() && relroot.join("etc/jail-marker").exists(),
                "[{:?}] the release was damaged by the failed fetch",
                e.kind
            );
            assert_eq!(count_tree(&relroot), count, "the release changed");
            assert!(
                e.fetch_leftovers("bb-1").is_empty(),
                "[{:?}] left behind: {:?}",
                e.kind,
                e.fetch_leftovers("bb-1")
            );
        }
        if e.kind == Kind::Zfs {
            assert!(zfs_get(
                "name",
                &format!("{}/iocage/releases/bb-1/root@base", e.pool)
            )
            .is_some());
        }
        // a fresh release name that fails leaves nothing at all
        e.fails(&[
            "fetch",
            "release=bb-9",
            &format!("ftplocaldir={}", bad.display()),
        ]);
        assert!(e.fetch_leftovers("bb-9").is_empty());
        assert!(!e.base().join("releases/bb-9").exists());
        assert_eq!(e.releases(), vec!["bb-1"]);
        // the old release still makes working jails
        let u = e.create(&["tag=after", "release=bb-1"]);
        e.ok(&["start", &u]);
        assert_eq!(
            e.ok(&["exec", "after", "cat", "/etc/jail-marker"]).trim(),
            "inside-the-jail"
        );
        e.ok(&["stop", &u]);
    });
}

/// Start a fetch of `name` from the slow server and kill it with -9 once its download
/// has begun; it must have left a staging area and a download.
fn kill_fetch_midway(e: &Env, url: &str, name: &str) {
    let mut f = e.spawn(&["fetch", &format!("release={name}"), url], &[]);
    let part = e.base().join("download").join(name).join("base.txz");
    assert!(
        wait_until(Duration::from_secs(30), || std::fs::metadata(&part)
            .map(|m| m.len() > 0)
            .unwrap_or(false)),
        "[{:?}] the slow download of {name} never began",
        e.kind
    );
    assert!(
        f.wait_for(Duration::from_millis(300)).is_none(),
        "the fetch ended early"
    );
    f.kill9();
    let left = e.fetch_leftovers(name);
    assert!(
        left.iter().any(|l| l.contains(".partial")) && left.iter().any(|l| l.contains("download")),
        "[{:?}] expected a staging area and a download after kill -9: {left:?}",
        e.kind
    );
    assert_eq!(e.releases(), vec!["bb-1"], "a killed fetch shows a release");
}

/// A fetch killed with -9 in the middle of its download leaves a staging area and a
/// download; the next fetch (of another release), run right away, removes them.
#[test]
fn killed_fetch_leftovers_are_removed_by_the_next_fetch() {
    both(|e| {
        e.fetch();
        let slow = Server::start(e.rel.clone(), 4096, Duration::from_millis(100), false);
        let url = format!("ftphost=http://127.0.0.1:{}/pub/rel", slow.port);
        kill_fetch_midway(e, &url, "slow-1");
        e.ok(&[
            "fetch",
            "release=bb-2",
            &format!("ftplocaldir={}", e.rel.display()),
        ]);
        assert!(
            e.fetch_leftovers("slow-1").is_empty(),
            "[{:?}] the next fetch left: {:?}",
            e.kind,
            e.fetch_leftovers("slow-1")
        );
        assert_eq!(e.releases(), vec!["bb-1", "bb-2"]);
        assert!(e.base().join("releases/bb-1/root/bin/busybox").exists());
        drop(slow);
    });
}

/// The same, removed by `clean` (here of the templates), run right away.
#[test]
fn killed_fetch_leftovers_are_removed_by_clean() {
    both(|e| {
        e.fetch();
        let slow = Server::start(e.rel.clone(), 4096, Duration::from_millis(100), false);
        let url = format!("ftphost=http://127.0.0.1:{}/pub/rel", slow.port);
        kill_fetch_midway(e, &url, "slow-2");
        e.ok(&["clean", "-f", "-t"]);
        assert!(
            e.fetch_leftovers("slow-2").is_empty(),
            "[{:?}] clean left: {:?}",
            e.kind,
            e.fetch_leftovers("slow-2")
        );
        assert_eq!(e.releases(), vec!["bb-1"]);
        assert!(e.base().join("releases/bb-1/root/bin/busybox").exists());
        drop(slow);
    });
}

// ------------------------------------------------------------------ 5. hook timeouts

/// A hook that outlives exec_timeout is killed with everything it started: no
/// `sleep 123` (host hook) or `sleep 124` (exec_stop in the jail) survives.
#[test]
fn hook_timeouts_kill_their_children() {
    both(|e| {
        e.fetch();
        e.create(&[
            "tag=ht1",
            "exec_prestart=sleep 123; echo never",
            "exec_timeout=2",
        ]);
        let (o, took) = e.timed(&["start", "ht1"]);
        assert!(!o.status.success());
        let err = text(&o.stderr);
        assert!(
            err.contains("exec_prestart") && err.contains("exec_timeout"),
            "[{:?}] {err}",
            e.kind
        );
        assert!(
            took >= Duration::from_millis(1800) && took < Duration::from_secs(15),
            "[{:?}] start took {took:?}",
            e.kind
        );
        assert!(
            wait_until(Duration::from_secs(3), || processes_matching("sleep 123")
                .is_empty()),
            "[{:?}] the prestart hook's child survived its timeout: {:?}",
            e.kind,
            processes_matching("sleep 123")
        );
        assert!(e.kernel_jails().is_empty());
        assert!(e.mounts().is_empty(), "mounts left: {:?}", e.mounts());

        e.ok(&[
            "set",
            "exec_prestart=/usr/bin/true",
            "exec_stop=sleep 124",
            "ht1",
        ]);
        e.ok(&["start", "ht1"]);
        let (o, took) = e.timed(&["stop", "ht1"]);
        assert!(
            o.status.success(),
            "[{:?}] stop: {}",
            e.kind,
            text(&o.stderr)
        );
        assert!(
            text(&o.stderr).contains("exec_stop"),
            "[{:?}] the exec_stop timeout was not reported: {}",
            e.kind,
            text(&o.stderr)
        );
        assert!(took < Duration::from_secs(20), "stop took {took:?}");
        assert!(
            wait_until(Duration::from_secs(3), || processes_matching("sleep 124")
                .is_empty()),
            "[{:?}] exec_stop's child survived: {:?}",
            e.kind,
            processes_matching("sleep 124")
        );
        assert!(e.kernel_jails().is_empty());
    });
}

// ------------------------------------------------------------------ 6. phases

/// kill -9 during start (in exec_start) or stop (in exec_stop): `list` says so, not
/// `up`; the next start says the jail was left half-done, stops it, and starts it.
#[test]
fn interrupted_start_and_stop_are_shown_and_finished() {
    both(|e| {
        e.fetch();
        let u = e.create(&["tag=ph1", "exec_start=sleep 5"]);
        let mut s = e.spawn(&["start", "ph1"], &[]);
        assert!(wait_until(Duration::from_secs(30), || e.is_up(&u)));
        std::thread::sleep(Duration::from_millis(700)); // inside exec_start
        assert!(
            s.wait_for(Duration::from_millis(10)).is_none(),
            "start ended early"
        );
        s.kill9();
        let state = e.state(&u).expect("listed");
        assert!(
            state.starts_with("starting"),
            "[{:?}] a killed start is listed as {state}",
            e.kind
        );
        assert_eq!(state, "starting(interrupted)");
        let j: serde_json::Value = serde_json::from_str(&e.ok(&["list", "--json"])).unwrap();
        assert_eq!(j[0]["state"], "starting(interrupted)");
        let o = e.run(&["start", "ph1"]);
        let err = text(&o.stderr);
        assert!(o.status.success(), "[{:?}] {err}", e.kind);
        assert!(
            err.contains("left starting") && err.contains("stopping it first"),
            "[{:?}] {err}",
            e.kind
        );
        assert_eq!(e.state(&u).as_deref(), Some("up"));

        // the same for stop
        e.ok(&["set", "exec_stop=sleep 5", "ph1"]);
        let mut s = e.spawn(&["stop", "ph1"], &[]);
        assert!(wait_until(Duration::from_secs(10), || e
            .state(&u)
            .is_some_and(|s| s.starts_with("stopping"))));
        std::thread::sleep(Duration::from_millis(500));
        s.kill9();
        assert_eq!(e.state(&u).as_deref(), Some("stopping(interrupted)"));
        e.ok(&["set", "exec_stop=true", "exec_start=true", "ph1"]);
        let o = e.run(&["start", "ph1"]);
        let err = text(&o.stderr);
        assert!(o.status.success(), "[{:?}] {err}", e.kind);
        assert!(err.contains("left stopping"), "[{:?}] {err}", e.kind);
        assert_eq!(e.state(&u).as_deref(), Some("up"));
        e.ok(&["stop", "ph1"]);
        assert_eq!(e.state(&u).as_deref(), Some("down"));
    });
}

/// kill -9 at several points of `destroy` of a big thick jail: afterwards the jail is
/// either whole (the kill came first) or never listed again, and removed by the next
/// command, which says so.
#[test]
fn interrupted_destroy_never_shows_a_half_deleted_jail() {
    both(|e| {
        e.fetch();
        let files = if e.kind == Kind::Dir { 10_000 } else { 300 };
        let make = |tag: &str| -> (String, usize) {
            let u = e.create(&["-T", &format!("tag={tag}")]);
            let many = e.root(&u).join("many");
            std::fs::create_dir_all(&many).unwrap();
            for i in 0..files {
                std::fs::write(many.join(format!("f{i}")), b"x").unwrap();
            }
            let n = count_tree(&e.root(&u));
            (u, n)
        };
        // how long an uninterrupted destroy takes
        let (u0, _) = make("dk0");
        let (o, full) = e.timed(&["destroy", "-f", &u0]);
        assert!(o.status.success(), "{}", text(&o.stderr));
        assert!(!e.exists(&u0));
        let mut hits = 0;
        // kill at fractions of that time, and (directory backend) a last time as soon
        // as the jail has taken its incomplete name, in the middle of the removal
        let points: &[f64] = if e.kind == Kind::Dir {
            &[0.1, 0.3, 0.5, 0.7, 0.9, -1.0]
        } else {
            &[0.1, 0.3, 0.5, 0.7, 0.9]
        };
        for (i, frac) in points.iter().enumerate() {
            let (u, n) = make(&format!("dk{}", i + 1));
            let mut d = e.spawn(&["destroy", "-f", &u], &[]);
            if *frac < 0.0 {
                let partial = e.base().join("jails").join(format!(".{u}.partial"));
                let t0 = Instant::now();
                while !partial.exists() && t0.elapsed() < Duration::from_secs(30) {
                    std::thread::sleep(Duration::from_micros(200));
                }
                std::thread::sleep(Duration::from_millis(20));
            } else {
                std::thread::sleep(full.mul_f64(*frac));
            }
            d.kill9();
            let was_incomplete = e.incomplete(&u);
            if was_incomplete {
                hits += 1;
            }
            let o = e.run(&["list", "-H"]);
            assert!(o.status.success());
            let out = text(&o.stdout);
            let err = text(&o.stderr);
            match out
                .lines()
                .find(|l| l.split('\t').nth(1) == Some(u.as_str()))
            {
                Some(row) => {
                    // listed: then it must be whole
                    assert!(
                        row.split('\t').nth(3) == Some("down"),
                        "[{:?}] {row}",
                        e.kind
                    );
                    assert!(
                        !e.incomplete(&u),
                        "[{:?}] an incomplete jail is listed: {row}",
                        e.kind
                    );
                    assert_eq!(e.stored(&u, "uuid").as_deref(), Some(u.as_str()));
                    assert_eq!(
                        count_tree(&e.root(&u)),
                        n,
                        "[{:?}] a half-deleted jail is listed as {row}",
                        e.kind
                    );
                    e.ok(&["destroy", "-f", &u]);
                }
                None => {
                    if e.kind == Kind::Dir && was_incomplete {
                        assert!(
                            err.contains("left incomplete by an interrupted create or destroy"),
                            "[{:?}] {err}",
                            e.kind
                        );
                    }
                    // gone, or going (a zfs destroy may still run on ZFS)
                    assert!(
                        wait_until(Duration::from_secs(30), || {
                            let o = e.run(&["list", "-H"]);
                            assert!(!text(&o.stdout).contains(&u), "listed again");
                            !e.exists(&u)
                        }),
                        "[{:?}] the half-destroyed jail {u} is never removed",
                        e.kind
                    );
                }
            }
        }
        eprintln!(
            "[{:?}] destroy ({full:?}) interrupted midway {hits} of {} times",
            e.kind,
            points.len()
        );
        if e.kind == Kind::Dir {
            assert!(
                hits > 0,
                "no kill landed inside destroy; the test did not test"
            );
        }
        assert_eq!(e.jail_count(), 0);
    });
}

/// `create count=3` killed after its second jail: the next command removes the whole
/// batch, and its tags are free again.
#[test]
fn interrupted_batch_create_leaves_no_jail() {
    both(|e| {
        e.fetch();
        let mut c = e.spawn(
            &["create", "tag=batch", "count=3"],
            &[("JAILCTL_CREATE_DELAY_MS", "3000")],
        );
        assert!(
            wait_until(Duration::from_secs(40), || e.jail_count() >= 2),
            "the batch never reached its second jail"
        );
        std::thread::sleep(Duration::from_millis(500));
        assert!(c.wait_for(Duration::from_millis(10)).is_none());
        c.kill9();
        assert!(e.jail_count() >= 2);
        let o = e.run(&["list", "-H"]);
        assert!(o.status.success());
        assert!(!text(&o.stdout).contains("batch_"), "{}", text(&o.stdout));
        assert!(
            text(&o.stderr).contains("left incomplete"),
            "[{:?}] {}",
            e.kind,
            text(&o.stderr)
        );
        assert_eq!(
            e.jail_count(),
            0,
            "[{:?}] jails of the batch remain",
            e.kind
        );
        let out = e.ok(&["create", "tag=batch", "count=3"]);
        assert_eq!(out.lines().count(), 3);
    });
}

// ------------------------------------------------------------------ 7. fetch timeouts

/// A server that accepts and never answers trips read_timeout; a connection whose
/// SYNs are dropped (full accept queue) trips connect_timeout; both errors name the
/// host and port and the limit. Bad limits are refused.
#[test]
fn fetch_times_out_and_says_where() {
    both(|e| {
        // (a) accepts, never answers
        let silent = Server::start(e.rel.clone(), 1, Duration::ZERO, true);
        let hp = format!("127.0.0.1:{}", silent.port);
        let (o, took) = e.timed(&[
            "fetch",
            "release=to-1",
            &format!("ftphost=http://{hp}/pub/rel"),
            "read_timeout=2",
        ]);
        let err = text(&o.stderr);
        assert!(!o.status.success());
        assert!(
            took < Duration::from_secs(6),
            "[{:?}] took {took:?}: {err}",
            e.kind
        );
        assert!(
            err.contains(&hp) && err.contains("read_timeout"),
            "[{:?}] {err}",
            e.kind
        );
        assert!(e.releases().is_empty());
        assert!(
            e.fetch_leftovers("to-1").is_empty(),
            "{:?}",
            e.fetch_leftovers("to-1")
        );
        drop(silent);

        // (b) SYNs dropped: a listener with a full accept queue that never accepts
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        // SAFETY: listen(2) again on our own socket only lowers its backlog.
        assert_eq!(unsafe { libc::listen(l.as_raw_fd(), 0) }, 0);
        let addr = l.local_addr().unwrap();
        let mut fillers = vec![];
        let mut dropped = false;
        for _ in 0..4 {
            match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(700)) {
                Ok(s) => fillers.push(s),
                Err(_) => dropped = true,
            }
        }
        let hp = format!("127.0.0.1:{}", addr.port());
        let (o, took) = e.timed(&[
            "fetch",
            "release=to-2",
            &format!("ftphost=http://{hp}/pub/rel"),
            "connect_timeout=2",
            "read_timeout=3",
        ]);
        let err = text(&o.stderr);
        assert!(!o.status.success());
        assert!(
            took < Duration::from_secs(6),
            "[{:?}] took {took:?}: {err}",
            e.kind
        );
        assert!(err.contains(&hp), "[{:?}] {err}", e.kind);
        if dropped {
            assert!(err.contains("connect_timeout"), "[{:?}] {err}", e.kind);
        } else {
            eprintln!("the kernel did not drop SYNs here; connect_timeout not reached: {err}");
        }
        assert!(e.fetch_leftovers("to-2").is_empty());
        drop(fillers);
        drop(l);

        // (c) bad values
        for (opt, val) in [
            ("connect_timeout", "0"),
            ("connect_timeout", "abc"),
            ("read_timeout", "0"),
            ("read_timeout", "-5"),
        ] {
            let err = e.fails(&[
                "fetch",
                "release=to-3",
                &format!("ftplocaldir={}", e.rel.display()),
                &format!("{opt}={val}"),
            ]);
            assert!(err.contains(opt), "[{:?}] {opt}={val}: {err}", e.kind);
        }
        assert!(e.releases().is_empty());
    });
}

// ------------------------------------------------------------------ 8. limits

fn short(err: &str) {
    let err = err.trim_end();
    assert!(
        err.len() < 200 && err.lines().all(|l| l.len() < 200),
        "a long error ({} bytes): {}...",
        err.len(),
        &err[..err.len().min(300)]
    );
}

/// Values that cannot work are refused at `set` and `create`, with short errors that
/// name the property, the limit and the length; nothing is stored.
#[test]
fn values_that_cannot_work_are_refused_with_short_errors() {
    both(|e| {
        e.fetch();
        let u = e.create(&["tag=v1", "notes=orig", "host_hostname=v1.example.org"]);
        // a 300-byte host name (labels of at most 60 bytes)
        let long_host = format!("{}a", vec!["a".repeat(59); 5].join("."));
        assert_eq!(long_host.len(), 300);
        let hn = format!("host_hostname={long_host}");
        for args in [
            vec!["set", hn.as_str(), "v1"],
            vec!["create", "tag=v2", hn.as_str()],
        ] {
            let err = e.fails(&args);
            assert!(
                err.contains("host_hostname") && err.contains("255"),
                "[{:?}] {err}",
                e.kind
            );
            short(&err);
        }
        for args in [
            vec!["set", "host_hostname=-bad-", "v1"],
            vec!["create", "tag=v2", "host_hostname=-bad-"],
        ] {
            let err = e.fails(&args);
            assert!(err.contains("host_hostname"), "[{:?}] {err}", e.kind);
            short(&err);
        }
        // a 5,000-byte tag
        let tag = format!("tag={}", "t".repeat(5000));
        for args in [
            vec!["create", tag.as_str()],
            vec!["set", tag.as_str(), "v1"],
        ] {
            let err = e.fails(&args);
            assert!(
                err.contains("64") && err.contains("5000"),
                "[{:?}] {}: {}",
                e.kind,
                shown(&args),
                cut(&err)
            );
            short(&err);
        }
        // 100 kB of notes
        let notes = format!("notes={}", "n".repeat(100 * 1024));
        for args in [
            vec!["set", notes.as_str(), "v1"],
            vec!["create", "tag=v3", notes.as_str()],
        ] {
            let err = e.fails(&args);
            assert!(
                err.contains("notes") && err.contains("8191") && err.contains("102400"),
                "[{:?}] {}",
                e.kind,
                &err[..err.len().min(300)]
            );
            short(&err);
        }
        // nothing was stored
        assert_eq!(e.jail_count(), 1);
        assert_eq!(e.stored(&u, "notes").as_deref(), Some("orig"));
        assert_eq!(e.stored(&u, "tag").as_deref(), Some("v1"));
        assert_eq!(
            e.stored(&u, "host_hostname").as_deref(),
            Some("v1.example.org")
        );
        assert_eq!(e.ok(&["get", "notes", "v1"]).trim(), "orig");
        // values at the limits are accepted
        let ok_host = format!(
            "host_hostname={}",
            vec!["h".repeat(63); 4].join(".").get(..255).unwrap()
        );
        e.ok(&["set", &ok_host, "v1"]);
        e.ok(&["set", &format!("notes={}", "n".repeat(8191)), "v1"]);
        assert_eq!(e.stored(&u, "notes").map(|n| n.len()), Some(8191));
        // whatever validation lets through must be storable: at 8,192 bytes (the
        // limit named by the errors) the value is stored, or refused with a short error
        let o = e.run(&["set", &format!("notes={}", "n".repeat(8192)), "v1"]);
        if o.status.success() {
            assert_eq!(e.stored(&u, "notes").map(|n| n.len()), Some(8192));
        } else {
            let err = text(&o.stderr);
            assert!(err.contains("notes"), "[{:?}] {}", e.kind, cut(&err));
            short(&err);
            assert_eq!(e.stored(&u, "notes").map(|n| n.len()), Some(8191));
        }
        e.ok(&["set", &format!("tag={}", "t".repeat(64)), "v1"]);
    });
}

// ------------------------------------------------------------------ 9. duplicate tags

/// Two jails given one tag by hand: `list` marks both DUPTAG and warns; `get` and
/// `set` by UUID still work; the tag alone is refused as ambiguous.
#[test]
fn duplicate_tags_are_marked_and_uuids_still_work() {
    both(|e| {
        e.fetch();
        let u1 = e.create(&["tag=dup1"]);
        let u2 = e.create(&["tag=dup2"]);
        match e.kind {
            Kind::Dir => {
                let p = e.base().join("jails").join(&u2).join("config.json");
                let mut v: serde_json::Value =
                    serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
                v["tag"] = "dup1".into();
                std::fs::write(&p, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
            }
            Kind::Zfs => {
                let o = zfs_cmd(&[
                    "set",
                    "org.freebsd.iocage:tag=dup1",
                    &format!("{}/iocage/jails/{u2}", e.pool),
                ]);
                assert!(o.status.success());
            }
        }
        let o = e.run(&["list", "-H"]);
        assert!(o.status.success());
        let out = text(&o.stdout);
        for u in [&u1, &u2] {
            assert!(
                out.lines().any(|l| {
                    let c: Vec<&str> = l.split('\t').collect();
                    c.get(1) == Some(&u.as_str()) && c[3].contains("DUPTAG") && c[4] == "dup1"
                }),
                "[{:?}] {u} not marked:\n{out}",
                e.kind
            );
        }
        let err = text(&o.stderr);
        assert!(err.contains("dup1"), "[{:?}] no warning: {err}", e.kind);
        // by UUID, everything still works
        assert_eq!(e.ok(&["get", "notes", &u2]).trim(), "none");
        e.ok(&["set", "notes=y", &u2]);
        assert_eq!(e.ok(&["get", "notes", &u2]).trim(), "y");
        assert_eq!(e.stored(&u2, "notes").as_deref(), Some("y"));
        assert_ne!(e.stored(&u1, "notes").as_deref(), Some("y"));
        // the tag alone names both
        let err = e.fails(&["get", "notes", "dup1"]);
        assert!(
            err.contains(&u1) && err.contains(&u2),
            "[{:?}] {err}",
            e.kind
        );
        // a running one keeps its mark
        e.ok(&["start", &u2]);
        let st = e.state(&u2).unwrap();
        assert!(
            st.contains("DUPTAG") && st.contains("up"),
            "[{:?}] {st}",
            e.kind
        );
        e.ok(&["stop", &u2]);
    });
}

// ------------------------------------------------------------------ 8. the TAG index

/// Set a property behind jailctl's back, as an administrator editing by hand would.
fn hand_set(e: &Env, uuid: &str, prop: &str, value: &str) {
    match e.kind {
        Kind::Zfs => {
            let o = zfs_cmd(&[
                "set",
                &format!("org.freebsd.iocage:{prop}={value}"),
                &format!("{}/iocage/jails/{uuid}", e.pool),
            ]);
            assert!(o.status.success(), "{}", text(&o.stderr));
        }
        Kind::Dir => {
            let p = e.base().join("jails").join(uuid).join("config.json");
            let mut v: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
            v[prop] = serde_json::Value::String(value.into());
            std::fs::write(&p, serde_json::to_vec(&v).unwrap()).unwrap();
        }
    }
}

#[test]
fn the_tag_index_survives_kill9_and_hand_edits_and_never_misleads() {
    both(|e| {
        e.fetch();
        let a = e.create(&["tag=alpha"]);
        let b = e.create(&["tag=beta"]);
        // a create killed between its index entry and its last step
        let mut c = e.spawn(
            &["create", "tag=gamma"],
            &[("JAILCTL_CREATE_DELAY_MS", "3000")],
        );
        assert!(
            wait_until(Duration::from_secs(40), || e.jail_count() >= 3),
            "the create never started"
        );
        c.kill9();
        let err = e.fails(&["get", "notes", "gamma"]);
        assert!(
            err.contains("no jail matches \"gamma\""),
            "[{:?}] {err}",
            e.kind
        );
        let g = e.create(&["tag=gamma"]);
        assert_eq!(e.ok(&["get", "tag", "gamma"]).trim(), "gamma");
        assert_eq!(e.ok(&["get", "uuid", "gamma"]).trim(), g);
        // a tag edited by hand: the old name no longer resolves, the new one does
        hand_set(e, &a, "tag", "alpha2");
        let err = e.fails(&["get", "notes", "alpha"]);
        assert!(err.contains("no jail matches"), "[{:?}] {err}", e.kind);
        assert_eq!(e.ok(&["get", "uuid", "alpha2"]).trim(), a);
        // tags swapped by hand: each resolves to the jail that bears it now
        hand_set(e, &a, "tag", "beta");
        hand_set(e, &b, "tag", "alpha2");
        assert_eq!(e.ok(&["get", "uuid", "beta"]).trim(), a, "[{:?}]", e.kind);
        assert_eq!(e.ok(&["get", "uuid", "alpha2"]).trim(), b, "[{:?}]", e.kind);
        // jailctl's own renames keep it right, and a UUID prefix still resolves
        e.ok(&["set", "tag=delta", "beta"]);
        assert_eq!(e.ok(&["get", "uuid", "delta"]).trim(), a);
        assert!(e
            .fails(&["get", "notes", "beta"])
            .contains("no jail matches"));
        assert_eq!(e.ok(&["get", "tag", &g[..8]]).trim(), "gamma");
        // destroy forgets it; a new jail may take the name
        e.ok(&["destroy", "-f", "delta"]);
        let d = e.create(&["tag=delta"]);
        assert_eq!(e.ok(&["get", "uuid", "delta"]).trim(), d);
        assert_eq!(e.ok(&["reindex"]).lines().count(), 1);
    });
}

/// The tag census that lets `create` check a TAG without reading every jail: a tag
/// given by hand is seen (at once on the directory backend, whose files carry a
/// change stamp; after the next full read on ZFS, which keeps no change time for a
/// property), a tag freed by hand can be taken, and a census lost or mangled (a
/// crash, a hand) is rebuilt.
#[test]
fn create_never_reuses_a_tag_in_use_whatever_happened_to_the_census() {
    both(|e| {
        e.fetch();
        let one = e.create(&["tag=one"]);
        e.create(&["tag=two"]);
        hand_set(e, &one, "tag", "byhand");
        if e.kind == Kind::Zfs {
            e.ok(&["list"]);
        }
        let err = e.fails(&["create", "tag=byhand"]);
        assert!(
            err.contains(&format!("tag \"byhand\" is already used by jail {one}")),
            "[{:?}] {err}",
            e.kind
        );
        // the tag freed by hand may be taken
        let again = e.create(&["tag=one"]);
        assert_eq!(e.ok(&["get", "uuid", "one"]).trim(), again);
        // a mangled census, then a missing one: rebuilt from the jails
        let census: Vec<PathBuf> = std::fs::read_dir(e.dir.path().join("run/tags"))
            .unwrap()
            .flatten()
            .map(|d| d.path())
            .filter(|p| p.extension().is_some_and(|x| x == "census"))
            .collect();
        assert_eq!(census.len(), 1, "[{:?}] one census per backend", e.kind);
        std::fs::write(&census[0], b"{\"jails\":{\"garbage").unwrap();
        let err = e.fails(&["create", "tag=two"]);
        assert!(
            err.contains("is already used by jail"),
            "[{:?}] {err}",
            e.kind
        );
        std::fs::remove_file(&census[0]).unwrap();
        let err = e.fails(&["create", "tag=byhand"]);
        assert!(
            err.contains("is already used by jail"),
            "[{:?}] {err}",
            e.kind
        );
        // set tag= checks the same way, and the census learns the new tag
        let err = e.fails(&["set", "tag=two", "one"]);
        assert!(
            err.contains("is already used by jail"),
            "[{:?}] {err}",
            e.kind
        );
        e.ok(&["set", "tag=three", "one"]);
        let err = e.fails(&["create", "tag=three"]);
        assert!(
            err.contains(&format!("is already used by jail {again}")),
            "[{:?}] {err}",
            e.kind
        );
        e.create(&["tag=one"]);
        // ZFS: a jail whose datasets are not mounted still holds its tag
        if e.kind == Kind::Zfs {
            let ds = format!("{}/iocage/jails/{again}", e.pool);
            for d in [format!("{ds}/root"), ds.clone()] {
                let o = zfs_cmd(&["umount", &d]);
                assert!(o.status.success(), "zfs umount {d}: {}", text(&o.stderr));
            }
            let err = e.fails(&["create", "tag=three"]);
            // mounted again, this pool's two datasets only (zfs-fuse may still call
            // one busy for a moment)
            for d in [ds.clone(), format!("{ds}/root")] {
                let ok = wait_until(Duration::from_secs(10), || {
                    zfs_cmd(&["mount", &d]).status.success()
                });
                assert!(ok, "zfs mount {d} kept failing");
            }
            assert!(
                err.contains(&format!("is already used by jail {again}")),
                "an unmounted jail's tag was taken: {err}"
            );
        }
    });
}
