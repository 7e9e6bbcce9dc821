//! `jailctl`, the jail manager, against both backends: a real ZFS pool (zfs-fuse) on a
//! file this test creates, and the plain-directory backend. Effects are checked
//! independently (`zfs get`, files on disk, the jail layer), not through jailctl's own
//! output. Needs root.
#![cfg(target_os = "linux")]

mod common;

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use common::manager_env::{self, zfs_get, Env, Kind, Setup};
use common::JAILCTL;

/// Sandboxes of this file: `jd-mgr-*` directories, `jdt*` pools, a release in xz, gzip and zstd.
const SETUP: Setup = Setup {
    dir_prefix: "jd-mgr-",
    pool_prefix: "jdt",
    archives: &[
        ("base.txz", "-J"),
        ("base.tgz", "-z"),
        ("base.tzst", "--zstd"),
    ],
};

impl Env {
    fn new(kind: Kind) -> Env {
        Env::setup(kind, &SETUP)
    }
}

fn both(f: impl Fn(&Env)) {
    manager_env::both(&SETUP, f)
}

#[test]
fn ordered_lifecycle_suite() {
    both(|e| {
        if e.kind == Kind::Zfs {
            e.ok(&["activate", &e.pool]);
            assert_eq!(
                zfs_get("org.freebsd.ioc:active", &e.pool).as_deref(),
                Some("yes")
            );
            for d in [
                "jails",
                "releases",
                "templates",
                "download",
                "images",
                "log",
            ] {
                assert!(
                    Command::new("zfs")
                        .args(["list", &format!("{}/iocage/{d}", e.pool)])
                        .output()
                        .unwrap()
                        .status
                        .success(),
                    "{d} dataset"
                );
            }
        }
        // fetch
        e.fetch();
        assert!(
            e.base().join("releases/bb-1/root/bin/busybox").exists(),
            "release not extracted"
        );
        if e.kind == Kind::Zfs {
            assert!(Command::new("zfs")
                .args([
                    "list",
                    "-t",
                    "snapshot",
                    &format!("{}/iocage/releases/bb-1/root@base", e.pool)
                ])
                .status()
                .unwrap()
                .success());
        }
        assert_eq!(e.ok(&["list", "-r", "-H"]).trim(), "bb-1");
        // create with properties
        let uuid = e.create(&[
            "tag=web01",
            "boot=on",
            "priority=20",
            "notes=front end",
            "ip4_addr=em0|198.18.0.5/24",
        ]);
        assert_eq!(uuid.len(), 36);
        assert_eq!(e.stored(&uuid, "tag").as_deref(), Some("web01"));
        assert_eq!(e.stored(&uuid, "uuid").as_deref(), Some(uuid.as_str()));
        assert_eq!(e.stored(&uuid, "notes").as_deref(), Some("front end"));
        assert_eq!(e.stored(&uuid, "release").as_deref(), Some("bb-1"));
        assert_eq!(e.stored(&uuid, "type").as_deref(), Some("basejail"));
        if e.kind == Kind::Zfs {
            let origin = zfs_get("origin", &format!("{}/iocage/jails/{uuid}/root", e.pool))
                .unwrap_or_default();
            assert!(
                origin.contains("releases/bb-1/root@base"),
                "not a clone of the release"
            );
        }
        // list / get
        let l = e.ok(&["list", "-H"]);
        let row: Vec<&str> = l
            .lines()
            .find(|r| r.contains(&uuid))
            .unwrap()
            .split('\t')
            .collect();
        assert_eq!(
            row,
            vec![
                "-",
                uuid.as_str(),
                "on",
                "down",
                "web01",
                "basejail",
                "em0|198.18.0.5/24",
                "bb-1"
            ]
        );
        assert!(e.ok(&["list"]).starts_with("JID"));
        let j: serde_json::Value = serde_json::from_str(&e.ok(&["list", "--json"])).unwrap();
        assert_eq!(j[0]["tag"], "web01");
        assert_eq!(e.ok(&["get", "priority", "web01"]).trim(), "20");
        assert_eq!(e.ok(&["get", "priority", &uuid[..8]]).trim(), "20");
        assert!(e
            .ok(&["get", "all", "web01"])
            .lines()
            .any(|l| l == "boot:on"));
        // set, defaults, reset
        e.ok(&["set", "priority=5", "notes=changed", "web01"]);
        assert_eq!(e.stored(&uuid, "priority").as_deref(), Some("5"));
        e.ok(&["set", "exec_timeout=45", "default"]);
        assert!(e.ok(&["defaults"]).lines().any(|l| l == "exec_timeout:45"));
        let uuid2 = e.create(&["tag=web02"]);
        assert_eq!(
            e.stored(&uuid2, "exec_timeout").as_deref(),
            Some("45"),
            "new jails take the host defaults"
        );
        e.ok(&["reset", "web01"]);
        assert_eq!(e.stored(&uuid, "priority").as_deref(), Some("99"));
        assert_eq!(
            e.stored(&uuid, "tag").as_deref(),
            Some("web01"),
            "reset keeps the tag"
        );
        assert_eq!(e.stored(&uuid, "uuid").as_deref(), Some(uuid.as_str()));
        // start: the kernel jail, exec_start inside, resolver
        e.ok(&[
            "set",
            "resolver=nameserver 198.18.0.53;search example.org",
            "web01",
        ]);
        e.ok(&["start", "web01"]);
        assert!(
            e.kernel_jails().contains(&format!("ioc-{uuid}")),
            "{:?}",
            e.kernel_jails()
        );
        assert!(
            e.root(&uuid).join("var/run/rc.started").exists(),
            "exec_start did not run"
        );
        assert_eq!(
            std::fs::read_to_string(e.root(&uuid).join("var/run/rc.hostname"))
                .unwrap()
                .trim(),
            uuid,
            "hostname defaults to the UUID"
        );
        assert_eq!(
            std::fs::read_to_string(e.root(&uuid).join("etc/resolv.conf")).unwrap(),
            "nameserver 198.18.0.53\nsearch example.org\n"
        );
        assert!(e
            .ok(&["list", "-H"])
            .lines()
            .any(|r| r.contains(&uuid) && r.contains("\tup\t")));
        assert_ne!(e.stored(&uuid, "last_started").as_deref(), Some("none"));
        // exec: inside, exit status through
        assert_eq!(
            e.ok(&["exec", "web01", "cat", "/etc/jail-marker"]).trim(),
            "inside-the-jail"
        );
        assert_eq!(
            e.run(&["exec", "web01", "sh", "-c", "exit 9"])
                .status
                .code(),
            Some(9)
        );
        assert_eq!(
            e.ok(&["exec", "-u", "user", "web01", "id", "-u"]).trim(),
            "1001"
        );
        let rt = e.ok(&["runtime", "web01"]);
        assert!(
            rt.contains(&format!("name=ioc-{uuid}")) && rt.contains("persist=true"),
            "{rt}"
        );
        // console: login(1) -f root on a terminal (script(1) provides the pty)
        let cmdline = format!("{JAILCTL} console web01");
        let mut c = e
            .with_env(Command::new("script"))
            .args(["-qec", &cmdline, "/dev/null"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut so = c.stdout.take().unwrap();
        let s2 = seen.clone();
        let reader = std::thread::spawn(move || {
            let mut b = [0u8; 4096];
            while let Ok(n) = so.read(&mut b) {
                if n == 0 {
                    break;
                }
                s2.lock().unwrap().extend_from_slice(&b[..n]);
            }
        });
        let text = || String::from_utf8_lossy(&seen.lock().unwrap()).into_owned();
        let t0 = std::time::Instant::now();
        while !text().contains("# ") && t0.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut stdin = c.stdin.take().unwrap();
        stdin.write_all(b"echo CONSOLE-$((6*7))\nexit\n").unwrap();
        drop(stdin);
        c.wait().unwrap();
        reader.join().unwrap();
        assert!(text().contains("CONSOLE-42"), "{}", text());
        // a second start is refused; stop runs exec_stop, removes the jail and its mounts
        assert!(e.fails(&["start", "web01"]).contains("already running"));
        let service = e.ok(&["exec", "web01", "pgrep", "-f", "sleep 86400"]);
        assert!(!service.trim().is_empty());
        e.ok(&["stop", "web01"]);
        assert!(!e.kernel_jails().contains(&format!("ioc-{uuid}")));
        assert!(e.mounts().is_empty(), "mounts left: {:?}", e.mounts());
        if e.kind == Kind::Dir {
            assert!(
                e.base()
                    .join("jails")
                    .join(&uuid)
                    .join("upper/var/run/rc.stopped")
                    .exists(),
                "exec_stop did not run"
            );
        } else {
            assert!(
                e.root(&uuid).join("var/run/rc.stopped").exists(),
                "exec_stop did not run"
            );
        }
        assert!(
            e.ok(&["stop", "web01"]).contains("already stopped"),
            "stop is idempotent"
        );
        // restart
        e.ok(&["start", "web01"]);
        e.ok(&["restart", "web01"]);
        assert!(e.kernel_jails().contains(&format!("ioc-{uuid}")));
        e.ok(&["restart", "-s", "web01"]);
        assert!(e.fails(&["destroy", "-f", "web01"]).contains("running"));
        e.ok(&["stop", "web01"]);
        // destroy
        assert!(
            e.fails(&["destroy", "web01"]).contains("-f"),
            "destroy needs confirmation"
        );
        e.ok(&["destroy", "-f", "web01"]);
        assert!(!e.exists(&uuid));
        e.ok(&["destroy", "-f", "web02"]);
        assert_eq!(e.jail_count(), 0);
        if e.kind == Kind::Zfs {
            e.ok(&["deactivate", &e.pool]);
        }
    });
}

#[test]
fn create_variants() {
    both(|e| {
        e.fetch();
        // count
        let out = e.ok(&["create", "tag=pool", "count=3", "host_hostname=node"]);
        let uuids: Vec<&str> = out.lines().collect();
        assert_eq!(uuids.len(), 3);
        for (i, u) in uuids.iter().enumerate() {
            assert_eq!(e.stored(u, "tag").unwrap(), format!("pool_{}", i + 1));
            assert_eq!(
                e.stored(u, "host_hostname").unwrap(),
                format!("node_{}", i + 1)
            );
        }
        // default tag: creation time
        let u = e.create(&[]);
        let tag = e.stored(&u, "tag").unwrap();
        assert!(tag.len() == 19 && tag.as_bytes()[10] == b'@', "{tag}");
        // empty jail
        let u = e.create(&["-e", "tag=empty1"]);
        assert_eq!(e.stored(&u, "type").as_deref(), Some("emptyjail"));
        assert_eq!(std::fs::read_dir(e.root(&u)).unwrap().count(), 0);
        // thick jail: a full copy, not a clone
        let u = e.create(&["-T", "tag=thick1"]);
        assert_eq!(e.stored(&u, "type").as_deref(), Some("thickjail"));
        assert!(e.root(&u).join("bin/busybox").exists());
        if e.kind == Kind::Zfs {
            assert_eq!(
                zfs_get("origin", &format!("{}/iocage/jails/{u}/root", e.pool)).as_deref(),
                Some("-")
            );
        }
        e.ok(&["start", "thick1"]);
        assert_eq!(
            e.ok(&["exec", "thick1", "cat", "/etc/jail-marker"]).trim(),
            "inside-the-jail"
        );
        e.ok(&["stop", "thick1"]);
        // duplicate tags: no stealing, nothing created
        let before = e.jail_count();
        assert!(e.fails(&["create", "tag=thick1"]).contains("already used"));
        assert!(e.fails(&["create", "tag=pool_2",]).contains("already used"));
        assert!(e
            .fails(&["create", "tag=pool", "count=2"])
            .contains("pool_1"));
        assert!(e
            .fails(&["set", "tag=thick1", "empty1"])
            .contains("already used"));
        // pkglist is FreeBSD-only: refused before anything is created
        let pl = e.dir.path().join("pkgs");
        std::fs::write(&pl, "nginx\n").unwrap();
        assert!(e
            .fails(&["create", "tag=pk", &format!("pkglist={}", pl.display())])
            .contains("FreeBSD"));
        assert_eq!(e.jail_count(), before);
    });
}

#[test]
fn bad_input_is_refused_and_writes_nothing() {
    both(|e| {
        e.fetch();
        let u = e.create(&["tag=b1", "priority=50"]);
        let before = e.ok(&["get", "all", "b1"]);
        for (args, needle) in [
            (vec!["set", "priority=100", "b1"], "0 to 99"),
            (vec!["set", "boot=yes", "b1"], "on or off"),
            (vec!["set", "ip4_addr=198.18.0.300", "b1"], "ip4_addr"),
            (
                vec!["set", "ip6_addr=em0|2001:db8::zz/64", "b1"],
                "ip6_addr",
            ),
            (vec!["set", "memoryuse=8G:explode", "b1"], "memoryuse"),
            (vec!["set", "nosuchprop=1", "b1"], "nosuchprop"),
            (vec!["set", "release=other", "b1"], "read-only"),
            (vec!["set", "priority=5", "boot=maybe", "b1"], "boot"),
            (vec!["set", "priority=5", "ghost"], "ghost"),
            (vec!["set", "priority=5"], "jail"),
            (vec!["get", "nosuchprop", "b1"], "nosuchprop"),
            (vec!["create", "tag=b2", "quota=lots"], "quota"),
            (vec!["create", "tag=b2", "release=nosuch"], "nosuch"),
            (vec!["create", "tag=b2", "count=0"], "count"),
            (vec!["create", "tag=b 2"], "tag"),
            (vec!["start", "ghost"], "ghost"),
            (vec!["stop", "ghost"], "ghost"),
            (vec!["exec", "b1", "true"], "not running"),
            (vec!["list", "-s", "nosuchcolumn"], "nosuchcolumn"),
            (vec!["clean", "-j"], "-f"),
            (vec!["clean", "-f"], "exactly one"),
            (vec!["fetch", "ftplocaldir=/tmp"], "release=NAME"),
            (vec!["fetch", "release=x"], "ftplocaldir"),
            (
                vec!["fetch", "release=x", "ftplocaldir=/tmp", "color=blue"],
                "color",
            ),
            (vec!["activate", "no-such-pool-here"], "no-such-pool-here"),
            (vec!["destroy", "-f", "ghost"], "ghost"),
            (vec!["reset", "ghost"], "ghost"),
            (vec!["console", "b1"], "not running"),
            (vec!["runtime", "b1"], "not running"),
            (vec!["restart", "-s", "b1"], "not running"),
            (vec!["create", "-e", "-T"], "empty"),
            (vec!["create", "notanassignment"], "property=value"),
        ] {
            let err = e.fails(&args);
            assert!(err.contains(needle), "{args:?}: {err}");
        }
        assert_eq!(
            e.ok(&["get", "all", "b1"]),
            before,
            "a refused command changed properties"
        );
        assert_eq!(e.stored(&u, "priority").as_deref(), Some("50"));
        assert_eq!(e.jail_count(), 1);
        // ambiguous prefix lists the matches
        let u2 = loop {
            let x = e.create(&["tag=pfx"]);
            if x.as_bytes()[0] == u.as_bytes()[0] {
                break x;
            }
            e.ok(&["destroy", "-f", &x]);
        };
        let err = e.fails(&["get", "tag", &u[..1]]);
        assert!(err.contains(&u) && err.contains(&u2), "{err}");
        // fetch: a bad checksum or a missing file leaves no release
        let bad = e.dir.path().join("badrel");
        std::fs::create_dir_all(&bad).unwrap();
        std::fs::copy(e.rel.join("base.txz"), bad.join("base.txz")).unwrap();
        std::fs::write(
            bad.join("MANIFEST"),
            format!("base.txz\t{}\t1\tbase\n", "0".repeat(64)),
        )
        .unwrap();
        assert!(e
            .fails(&[
                "fetch",
                "release=bad-1",
                &format!("ftplocaldir={}", bad.display())
            ])
            .contains("checksum mismatch"));
        assert!(e
            .fails(&[
                "fetch",
                "release=bad-2",
                &format!("ftplocaldir={}", e.dir.path().join("nowhere").display())
            ])
            .contains("does not exist"));
        assert!(e
            .fails(&["fetch", "release=bad-3", "ftphost=https://example.org/x"])
            .contains("only http"));
        assert_eq!(e.ok(&["list", "-r", "-H"]).trim(), "bb-1");
    });
}

#[test]
fn fetch_over_http_with_all_compressions() {
    both(|e| {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let dir = e.rel.clone();
        std::thread::spawn(move || {
            for s in listener.incoming().flatten() {
                let dir = dir.clone();
                std::thread::spawn(move || serve(s, &dir));
            }
        });
        let url = format!("ftphost=http://127.0.0.1:{port}/pub/rel");
        e.ok(&["fetch", "release=http-1", &url, "ftpfiles=base.txz"]);
        e.ok(&["fetch", "release=http-2", &url, "ftpfiles=base.tgz"]);
        e.ok(&["fetch", "release=http-3", &url, "ftpfiles=base.tzst"]);
        for r in ["http-1", "http-2", "http-3"] {
            assert!(
                e.base()
                    .join("releases")
                    .join(r)
                    .join("root/etc/jail-marker")
                    .exists(),
                "{r}"
            );
        }
        assert!(e
            .fails(&["fetch", "release=http-4", &url, "ftpfiles=missing.txz"])
            .contains("does not exist"));
        assert_eq!(e.ok(&["list", "-r", "-H"]).lines().count(), 3);
        let u = e.create(&["release=http-3", "tag=fromhttp"]);
        e.ok(&["start", &u]);
        assert_eq!(
            e.ok(&["exec", "fromhttp", "cat", "/etc/jail-marker"])
                .trim(),
            "inside-the-jail"
        );
        e.ok(&["stop", &u]);
    });
}

/// A minimal HTTP/1.0 file server for /pub/rel/FILE.
fn serve(mut s: std::net::TcpStream, dir: &Path) {
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
            let _ = s.write_all(&body);
        }
        None => {
            let _ = s.write_all(b"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n");
        }
    }
}

#[test]
fn rcboot_follows_priority_and_rcshutdown_reverses_it() {
    both(|e| {
        e.fetch();
        let order = e.dir.path().join("order");
        for (tag, prio, boot) in [
            ("c", "30", "on"),
            ("a", "10", "on"),
            ("b", "20", "on"),
            ("x", "1", "off"),
        ] {
            e.create(&[
                &format!("tag={tag}"),
                &format!("priority={prio}"),
                &format!("boot={boot}"),
                &format!("exec_poststart=echo start {tag} >> {}", order.display()),
                &format!("exec_poststop=echo stop {tag} >> {}", order.display()),
            ]);
        }
        e.ok(&["rcboot"]);
        e.ok(&["rcshutdown"]);
        assert_eq!(
            std::fs::read_to_string(&order).unwrap(),
            "start a\nstart b\nstart c\nstop c\nstop b\nstop a\n"
        );
        assert!(e.kernel_jails().is_empty());
    });
}

#[test]
fn failed_start_undoes_every_step() {
    both(|e| {
        e.fetch();
        let u = e.create(&["tag=f1", "exec_start=/bin/false"]);
        let err = e.fails(&["start", "f1"]);
        assert!(err.contains("exec_start"), "{err}");
        assert!(
            e.kernel_jails().is_empty(),
            "a jail was left: {:?}",
            e.kernel_jails()
        );
        assert!(e.mounts().is_empty(), "mounts left: {:?}", e.mounts());
        assert!(!e
            .dir
            .path()
            .join("run/state")
            .join(format!("{u}.json"))
            .exists());
        e.ok(&[
            "set",
            "exec_start=/bin/sh /etc/rc",
            "exec_prestart=exit 3",
            "f1",
        ]);
        assert!(e.fails(&["start", "f1"]).contains("exec_prestart"));
        assert!(e.kernel_jails().is_empty());
        assert!(e.mounts().is_empty());
        e.ok(&[
            "set",
            "exec_prestart=/usr/bin/true",
            "exec_start=sleep 30",
            "exec_timeout=1",
            "f1",
        ]);
        assert!(e.fails(&["start", "f1"]).contains("exec_timeout"));
        assert!(e.kernel_jails().is_empty());
        e.ok(&["set", "exec_start=/bin/sh /etc/rc", "f1"]);
        e.ok(&["start", "f1"]);
        e.ok(&["stop", "f1"]);
    });
}

#[test]
fn interrupted_create_is_cleaned_by_the_next_command() {
    both(|e| {
        e.fetch();
        let mut c = e
            .cmd()
            .args(["create", "tag=killed"])
            .env("JAILCTL_CREATE_DELAY_MS", "20000")
            .spawn()
            .unwrap();
        let start = std::time::Instant::now();
        while e.jail_count() == 0 && start.elapsed() < Duration::from_secs(20) {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(e.jail_count(), 1, "the create never started");
        c.kill().unwrap();
        c.wait().unwrap();
        assert_eq!(
            e.jail_count(),
            1,
            "the partial jail is on disk until the next command"
        );
        let out = e.run(&["list", "-H"]);
        assert!(out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("incomplete"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(e.jail_count(), 0, "the partial jail was not cleaned");
        // the tag is free again
        e.create(&["tag=killed"]);
    });
}

#[test]
fn concurrent_creates_of_one_tag_let_exactly_one_win() {
    both(|e| {
        e.fetch();
        let children: Vec<_> = (0..4)
            .map(|_| {
                e.cmd()
                    .args(["create", "tag=race"])
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let outs: Vec<Output> = children
            .into_iter()
            .map(|c| c.wait_with_output().unwrap())
            .collect();
        assert_eq!(
            outs.iter().filter(|o| o.status.success()).count(),
            1,
            "{outs:?}"
        );
        for o in outs.iter().filter(|o| !o.status.success()) {
            assert!(String::from_utf8_lossy(&o.stderr).contains("already used"));
        }
        assert_eq!(e.jail_count(), 1);
    });
}

#[test]
fn a_corrupt_jail_does_not_break_the_others() {
    both(|e| {
        e.fetch();
        let bad = e.create(&["tag=bad"]);
        e.create(&["tag=good"]);
        match e.kind {
            Kind::Dir => std::fs::write(
                e.base().join("jails").join(&bad).join("config.json"),
                "{ not json",
            )
            .unwrap(),
            Kind::Zfs => {
                let st = Command::new("zfs")
                    .args([
                        "set",
                        "org.freebsd.iocage:priority=high",
                        &format!("{}/iocage/jails/{bad}", e.pool),
                    ])
                    .status()
                    .unwrap();
                assert!(st.success());
            }
        }
        let out = e.run(&["list", "-H"]);
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.lines()
                .any(|l| l.contains(&bad) && l.contains("CORRUPT")),
            "{text}"
        );
        assert!(
            text.lines()
                .any(|l| l.contains("good") && l.contains("down")),
            "{text}"
        );
        assert!(String::from_utf8_lossy(&out.stderr).contains(&bad));
        e.ok(&["start", "good"]);
        e.ok(&["stop", "good"]);
        assert!(e.fails(&["start", &bad]).contains("corrupt"));
    });
}

#[test]
fn clean_removes_what_it_is_asked_to() {
    both(|e| {
        e.fetch();
        e.create(&["tag=c1"]);
        assert!(e.fails(&["clean", "-f", "-r"]).contains("basejails"));
        e.ok(&["start", "c1"]);
        assert!(e.fails(&["clean", "-f", "-j"]).contains("running"));
        e.ok(&["stop", "c1"]);
        e.ok(&["clean", "-f", "-j"]);
        assert_eq!(e.jail_count(), 0);
        e.ok(&["clean", "-f", "-r"]);
        assert!(e.ok(&["list", "-r", "-H"]).trim().is_empty());
        e.ok(&["clean", "-f", "-a"]);
        match e.kind {
            Kind::Zfs => assert!(!Command::new("zfs")
                .args(["list", &format!("{}/iocage", e.pool)])
                .output()
                .unwrap()
                .status
                .success()),
            Kind::Dir => assert!(!e.base().exists()),
        }
    });
}

#[test]
fn zfs_native_properties_and_send_receive_carry_the_configuration() {
    let e = Env::new(Kind::Zfs);
    e.fetch();
    let u = e.create(&["tag=moved", "quota=200M", "notes=travels along"]);
    assert_eq!(
        zfs_get("quota", &format!("{}/iocage/jails/{u}", e.pool)).unwrap_or_default(),
        (200u64 << 20).to_string()
    );
    // zfs send | zfs receive of the jail's dataset keeps its properties
    let ds = format!("{}/iocage/jails/{u}", e.pool);
    assert!(Command::new("zfs")
        .args(["snapshot", &format!("{ds}@move")])
        .status()
        .unwrap()
        .success());
    let copy = format!("{}/copy", e.pool);
    let st = Command::new("sh")
        .arg("-c")
        .arg(format!("zfs send -R {ds}@move | zfs receive -u {copy}"))
        .status()
        .unwrap();
    assert!(st.success());
    assert_eq!(
        zfs_get("org.freebsd.iocage:notes", &copy).as_deref(),
        Some("travels along")
    );
}

#[test]
fn more_than_one_active_pool_is_an_error_naming_them() {
    let a = Env::new(Kind::Zfs);
    let b = Env::new(Kind::Zfs);
    a.ok(&["activate", &a.pool]);
    // activating a second pool is refused while the first is active
    assert!(a.fails(&["activate", &b.pool]).contains(&a.pool));
    // both marked behind jailctl's back: commands that must pick one refuse, naming both
    assert!(Command::new("zfs")
        .args(["set", "org.freebsd.ioc:active=yes", &b.pool])
        .status()
        .unwrap()
        .success());
    let mut c = a.cmd();
    c.env_remove("JAILCTL_POOL").args(["list"]);
    let o = c.output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains(&a.pool) && err.contains(&b.pool),
        "{err}"
    );
    a.ok(&["deactivate", &a.pool]);
    b.ok(&["deactivate", &b.pool]);
}

#[test]
fn fstab_mounts_are_made_at_start_and_undone_at_stop() {
    both(|e| {
        e.fetch();
        let u = e.create(&["tag=fs1"]);
        let shared = e.dir.path().join("shared");
        std::fs::create_dir_all(&shared).unwrap();
        std::fs::write(shared.join("hello"), "from the host\n").unwrap();
        let jail_dir = e.base().join("jails").join(&u);
        std::fs::write(
            jail_dir.join("fstab"),
            format!(
                "# shared data\n{} /mnt/data nullfs ro 0 0\n",
                shared.display()
            ),
        )
        .unwrap();
        e.ok(&["start", "fs1"]);
        assert_eq!(
            e.ok(&["exec", "fs1", "cat", "/mnt/data/hello"]).trim(),
            "from the host"
        );
        assert!(
            !e.run(&["exec", "fs1", "touch", "/mnt/data/x"])
                .status
                .success(),
            "a ro mount is writable"
        );
        let target = e.root(&u).join("mnt/data").display().to_string();
        let mounted = || {
            std::fs::read_to_string("/proc/self/mountinfo")
                .unwrap()
                .lines()
                .any(|l| l.split_whitespace().nth(4) == Some(target.as_str()))
        };
        assert!(mounted());
        e.ok(&["stop", "fs1"]);
        assert!(!mounted(), "the fstab mount outlived the jail");
        // a broken fstab line fails the start and leaves nothing behind
        std::fs::write(
            jail_dir.join("fstab"),
            format!(
                "{} /mnt/data nullfs ro 0 0\n/nonexistent /mnt/other nullfs ro 0 0\n",
                shared.display()
            ),
        )
        .unwrap();
        assert!(e.fails(&["start", "fs1"]).contains("fstab line 2"));
        assert!(e.kernel_jails().is_empty());
        assert!(e.mounts().is_empty());
    });
}
