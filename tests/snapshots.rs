//! Snapshots, clones and export/import (issue 15) on both backends: a zfs-fuse pool
//! on a file and the directory backend. Effects are checked on disk, not through
//! jailctl's own output. Needs root.
#![cfg(target_os = "linux")]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::manager_env::{self, mounts_at_or_below, sha256, Env, Kind, Setup};

const SETUP: Setup = Setup {
    dir_prefix: "jd-snap-",
    pool_prefix: "jds",
    archives: &[("base.txz", "-J")],
};

fn root(e: &Env, uuid: &str) -> PathBuf {
    e.base().join("jails").join(uuid).join("root")
}

fn snapnames(e: &Env, jail: &str) -> Vec<String> {
    e.ok(&["snaplist", "-H", jail])
        .lines()
        .map(|l| l.split('\t').next().unwrap().to_string())
        .collect()
}

#[test]
fn snapshots_clones_and_archives() {
    manager_env::both(&SETUP, |e| {
        if e.kind == Kind::Zfs {
            e.ok(&["activate", &e.pool]);
        }
        e.fetch();
        let src = e.create(&["-T", "release=bb-1", "tag=src", "boot=on"]);
        let motd = root(e, &src).join("etc/motd");
        std::fs::write(&motd, "one\n").unwrap();

        // snapshot, change, rollback: the file is back, later snapshots gone
        e.ok(&["snapshot", "-r", "src@first"]);
        std::fs::write(&motd, "two\n").unwrap();
        e.ok(&["snapshot", "src@second"]);
        e.ok(&["snapshot", "src"]); // a default name
        assert_eq!(snapnames(e, "src").len(), 3, "{:?}", snapnames(e, "src"));
        e.ok(&["set", "boot=off", "src"]);
        let err = e.fails(&["rollback", "src@first"]);
        assert!(err.contains("second"), "names the later snapshots: {err}");
        e.ok(&["rollback", "-f", "src@first"]);
        assert_eq!(std::fs::read_to_string(&motd).unwrap(), "one\n");
        assert_eq!(snapnames(e, "src"), ["first"]);
        // creation order, not (seconds, name): zz then aa within one second
        e.ok(&["snapshot", "src@zz"]);
        e.ok(&["snapshot", "src@aa"]);
        assert_eq!(snapnames(e, "src"), ["first", "zz", "aa"]);
        let err = e.fails(&["rollback", "src@zz"]);
        assert!(err.contains("aa"), "aa is later than zz: {err}");
        e.ok(&["snapremove", "src@aa"]);
        e.ok(&["snapremove", "src@zz"]);
        // a recursive snapshot brings the configuration back
        assert_eq!(e.ok(&["get", "boot", "src"]).trim(), "on");

        // snapmount: the old content, read-only; snapumount leaves no mount
        std::fs::write(&motd, "three\n").unwrap();
        let mnt = e.dir.path().join("view");
        std::fs::create_dir(&mnt).unwrap();
        e.ok(&["snapmount", "src@first", mnt.to_str().unwrap()]);
        assert_eq!(
            std::fs::read_to_string(mnt.join("etc/motd")).unwrap(),
            "one\n"
        );
        assert!(
            std::fs::write(mnt.join("etc/motd"), "x").is_err(),
            "read-only"
        );
        // read-only, nosuid, nodev, noexec (the files are the jail's)
        let opts: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .map(|l| l.split(' ').collect::<Vec<_>>())
            .filter(|f| Path::new(f[4]) == mnt)
            .map(|f| f[5].to_string())
            .collect();
        assert_eq!(opts.len(), 1, "{opts:?}");
        for f in ["ro", "nosuid", "nodev", "noexec"] {
            assert!(opts[0].split(',').any(|o| o == f), "{f} in {opts:?}");
        }
        e.ok(&["snapumount", "src@first"]);
        assert!(mounts_at_or_below(&mnt).is_empty());

        // clone from a snapshot and from the current state
        let c1 = e.ok(&["clone", "src@first", "tag=c1"]).trim().to_string();
        let c2 = e
            .ok(&["clone", "src", "tag=c2", "boot=off"])
            .trim()
            .to_string();
        assert_ne!(c1, src);
        assert_eq!(
            std::fs::read_to_string(root(e, &c1).join("etc/motd")).unwrap(),
            "one\n"
        );
        assert_eq!(
            std::fs::read_to_string(root(e, &c2).join("etc/motd")).unwrap(),
            "three\n"
        );
        // default properties plus those given, and where it came from
        assert_eq!(e.ok(&["get", "boot", "c1"]).trim(), "off");
        assert_eq!(
            e.ok(&["get", "origin", "c1"]).trim(),
            format!("{src}@first")
        );
        std::fs::write(root(e, &c1).join("etc/motd"), "clone\n").unwrap();
        assert_eq!(std::fs::read_to_string(&motd).unwrap(), "three\n");
        // the clone runs
        e.ok(&["start", "c1"]);
        e.ok(&["stop", "c1"]);
        // destroying the source refuses and names the clones
        let err = e.fails(&["destroy", "-f", "src"]);
        assert!(err.contains("c1") && err.contains("c2"), "{err}");
        // a template
        e.ok(&["set", "istemplate=yes", "c2"]);
        let web = e
            .ok(&["create", "template=c2", "tag=web02"])
            .trim()
            .to_string();
        assert_eq!(e.ok(&["get", "istemplate", "web02"]).trim(), "no");
        e.ok(&["destroy", "-f", "web02"]);
        assert!(!root(e, &web).exists());

        // promote: the source can go, the clone still starts
        e.ok(&["destroy", "-f", "c2"]);
        assert_eq!(
            snapnames(e, "src"),
            ["first"],
            "c2's automatic snapshot removed"
        );
        e.ok(&["promote", "c1"]);
        e.ok(&["destroy", "-f", "src"]);
        e.ok(&["start", "c1"]);
        e.ok(&["stop", "c1"]);

        // export, destroy, import: files and properties back
        e.ok(&["set", "priority=7", "c1"]);
        let out = e.ok(&["export", "c1"]);
        let archive = PathBuf::from(out.trim().rsplit(' ').next().unwrap());
        assert!(archive.exists(), "{out}");
        e.ok(&["destroy", "-f", "-R", "c1"]);
        let good = std::fs::read(&archive).unwrap();
        // a flipped byte is refused before anything is created
        let mut bad = good.clone();
        let n = bad.len() / 2;
        bad[n] ^= 1;
        std::fs::write(&archive, &bad).unwrap();
        let err = e.fails(&["import", &c1]);
        assert!(err.contains("checksum"), "{err}");
        assert!(e.ok(&["list", "-H"]).trim().is_empty());
        std::fs::write(&archive, &good).unwrap();
        let imported = e.ok(&["import", &c1[..8]]).trim().to_string();
        assert_eq!(imported, c1);
        assert_eq!(
            std::fs::read_to_string(root(e, &c1).join("etc/motd")).unwrap(),
            "clone\n"
        );
        assert_eq!(e.ok(&["get", "priority", "c1"]).trim(), "7");
        // a clash of tag or UUID is refused; tag= imports a copy
        e.fails(&["import", &c1]);
        let copy = e.ok(&["import", &c1, "tag=copy"]).trim().to_string();
        assert_ne!(copy, c1);
        e.ok(&["start", "copy"]);
        e.ok(&["stop", "copy"]);
    });
}

/// A hand-made archive in the sandbox's images/: `jail.json` with `props` and
/// `layout`, and under `layout/` the files `files` (path, content).
fn forge(e: &Env, uuid: &str, layout: &str, props: &[(&str, &str)], files: &[(&str, &[u8])]) {
    let stage = e.dir.path().join(format!("forge-{uuid}"));
    let _ = std::fs::remove_dir_all(&stage);
    std::fs::create_dir_all(stage.join(layout)).unwrap();
    for (p, data) in files {
        let f = stage.join(layout).join(p);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(&f, data).unwrap();
    }
    let mut map = serde_json::Map::new();
    for (k, v) in props {
        map.insert(k.to_string(), serde_json::Value::String(v.to_string()));
    }
    let meta = serde_json::json!({"format": 1, "layout": layout, "props": map});
    std::fs::write(stage.join("jail.json"), meta.to_string()).unwrap();
    let images = e.base().join("images");
    std::fs::create_dir_all(&images).unwrap();
    let name = format!("{uuid}_2026-01-01_000000.tar.gz");
    let out = images.join(&name);
    let st = Command::new("tar")
        .args(["--format", "pax", "-czf"])
        .arg(&out)
        .arg("-C")
        .arg(&stage)
        .args(["jail.json", layout])
        .status()
        .unwrap();
    assert!(st.success());
    std::fs::write(
        images.join(format!("{name}.sha256")),
        format!("{}  {name}\n", sha256(&out)),
    )
    .unwrap();
}

fn staging_left(e: &Env) -> Vec<String> {
    std::fs::read_dir(e.base().join("images"))
        .unwrap()
        .flatten()
        .map(|d| d.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect()
}

const U1: &str = "11111111-1111-4111-8111-111111111111";
const U2: &str = "22222222-2222-4222-8222-222222222222";
const U3: &str = "33333333-3333-4333-8333-333333333333";
const U4: &str = "44444444-4444-4444-8444-444444444444";
const U5: &str = "55555555-5555-4555-8555-555555555555";

/// Hostile archives (directory backend): read-only properties are rebuilt, an
/// escaping release is refused, host-side properties are dropped unless --trust,
/// the size bound holds, and a live run's staging survives another run's sweep.
#[test]
fn hostile_archives() {
    let e = Env::setup(Kind::Dir, &SETUP);
    e.fetch();
    e.ok(&["list"]);
    // 1. a release that climbs out of releases/ (or injects overlay options)
    for (u, bad) in [
        (U1, "../../../../../../../../proc/self"),
        (U2, "bb-1,lowerdir=/"),
        (U3, "nosuch"),
    ] {
        forge(
            &e,
            u,
            "upper",
            &[
                ("uuid", u),
                ("tag", "evil"),
                ("type", "basejail"),
                ("release", bad),
            ],
            &[("etc/motd", b"x\n")],
        );
        let err = e.fails(&["import", u]);
        assert!(err.contains("release"), "{bad}: {err}");
        assert!(e.ok(&["list", "-H"]).trim().is_empty(), "no jail made");
        std::fs::remove_file(
            e.base()
                .join(format!("images/{u}_2026-01-01_000000.tar.gz")),
        )
        .unwrap();
    }
    assert!(staging_left(&e).is_empty(), "{:?}", staging_left(&e));
    // a full root that claims to be thin becomes a thick jail; last_started rebuilt
    forge(
        &e,
        U1,
        "root",
        &[
            ("uuid", U1),
            ("tag", "liar"),
            ("type", "basejail"),
            ("release", "bb-1"),
            ("last_started", "\u{1b}[31mred"),
        ],
        &[("etc/motd", b"liar\n")],
    );
    e.ok(&["import", U1]);
    assert_eq!(e.ok(&["get", "type", "liar"]).trim(), "thickjail");
    assert_eq!(e.ok(&["get", "last_started", "liar"]).trim(), "none");
    e.ok(&["destroy", "-f", "liar"]);

    // 2. host-side properties: dropped by default and named; kept with -t
    let pwned = e.dir.path().join("pwned");
    let hook = format!("/bin/sh -c 'id > {}'", pwned.display());
    let host_props = [
        ("uuid", U2),
        ("tag", "hooks"),
        ("release", "bb-1"),
        ("exec_prestart", hook.as_str()),
        ("exec_poststop", hook.as_str()),
        ("boot", "on"),
        ("allow_mount", "1"),
        ("notes", "hello"),
        ("priority", "5"),
    ];
    forge(&e, U2, "upper", &host_props, &[("etc/motd", b"hooks\n")]);
    let o = e.run(&["import", U2]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    for k in ["exec_prestart", "exec_poststop", "boot=on", "allow_mount=1"] {
        assert!(err.contains(k), "names {k}: {err}");
    }
    assert_eq!(e.ok(&["get", "boot", "hooks"]).trim(), "off");
    assert_eq!(e.ok(&["get", "allow_mount", "hooks"]).trim(), "0");
    assert_eq!(e.ok(&["get", "notes", "hooks"]).trim(), "hello");
    assert_eq!(e.ok(&["get", "priority", "hooks"]).trim(), "5");
    assert_eq!(e.ok(&["get", "type", "hooks"]).trim(), "basejail");
    e.ok(&["start", "hooks"]);
    e.ok(&["stop", "hooks"]);
    assert!(!pwned.exists(), "the archive's host hook did not run");
    // --trust keeps them (an archive the admin made)
    let o = e.run(&["import", "-t", U2, "tag=trusted"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(e.ok(&["get", "exec_prestart", "trusted"]).trim(), hook);
    assert_eq!(e.ok(&["get", "boot", "trusted"]).trim(), "on");
    e.ok(&["destroy", "-f", "trusted"]);
    e.ok(&["destroy", "-f", "hooks"]);

    // 6. a decompression bomb: refused by the size bound, nothing left
    let zeros = vec![0u8; 8 << 20];
    forge(
        &e,
        U3,
        "root",
        &[("uuid", U3), ("tag", "bomb"), ("release", "bb-1")],
        &[("big", &zeros)],
    );
    let err = e.fails(&["import", "--max-size", "1M", U3]);
    assert!(
        err.contains("size limit") && err.contains("1048576"),
        "{err}"
    );
    assert!(e.ok(&["list", "-H"]).trim().is_empty());
    assert!(staging_left(&e).is_empty(), "{:?}", staging_left(&e));
    let err = e.fails(&["import", "--max-size", "lots", U3]);
    assert!(err.contains("size in bytes"), "{err}");

    // 7. a live run's staging survives another import's sweep; a dead run's goes
    let images = e.base().join("images");
    let live_lock = images.join(".run-live.lock");
    std::fs::write(&live_lock, "").unwrap();
    std::fs::create_dir_all(images.join(".run-live.import.partial/data")).unwrap();
    std::fs::write(images.join(".run-dead.lock"), "").unwrap();
    std::fs::create_dir_all(images.join(".run-dead.import.partial/data")).unwrap();
    // one process holds the lock (killing it releases it)
    let mut holder = Command::new("sh")
        .args(["-c", "exec 9>>\"$0\"; flock 9 && exec sleep 60"])
        .arg(&live_lock)
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    forge(
        &e,
        U4,
        "root",
        &[("uuid", U4), ("tag", "fine"), ("release", "bb-1")],
        &[("etc/motd", b"fine\n")],
    );
    e.ok(&["import", U4]);
    assert!(
        images.join(".run-live.import.partial/data").is_dir(),
        "live run kept"
    );
    assert!(
        !images.join(".run-dead.import.partial").exists(),
        "dead run swept"
    );
    holder.kill().unwrap();
    holder.wait().unwrap();
    forge(
        &e,
        U5,
        "root",
        &[("uuid", U5), ("tag", "fine2"), ("release", "bb-1")],
        &[],
    );
    e.ok(&["import", U5]);
    assert!(staging_left(&e).is_empty(), "{:?}", staging_left(&e));
    e.ok(&["destroy", "-f", "fine"]);
    e.ok(&["destroy", "-f", "fine2"]);
}

/// snapmount's destination must be a directory only root can change, outside the
/// layout; a directory-backend snapshot of a running jail is refused.
#[test]
fn snapmount_destinations_and_running_jails() {
    let e = Env::setup(Kind::Dir, &SETUP);
    e.fetch();
    let j = e.create(&["-T", "release=bb-1", "tag=j"]);
    // 5. a running jail: no snapshot, no clone of its current state
    e.ok(&["start", "j"]);
    let err = e.fails(&["snapshot", "j@live"]);
    assert!(
        err.contains("running") && err.contains("stop it first"),
        "{err}"
    );
    let err = e.fails(&["clone", "j", "tag=c"]);
    assert!(err.contains("running"), "{err}");
    assert_eq!(snapnames(&e, "j"), Vec::<String>::new());
    e.ok(&["stop", "j"]);
    e.ok(&["snapshot", "j@s"]);

    // 4. destinations that others (or the jail) could redirect are refused
    let d = e.dir.path();
    let real = d.join("real");
    std::fs::create_dir(&real).unwrap();
    let link = d.join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let err = e.fails(&["snapmount", "j@s", link.to_str().unwrap()]);
    assert!(err.contains("link"), "{err}");
    let open = d.join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::create_dir(open.join("v")).unwrap();
    let err = e.fails(&["snapmount", "j@s", open.join("v").to_str().unwrap()]);
    assert!(err.contains("writable by other users"), "{err}");
    let theirs = d.join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    std::os::unix::fs::chown(&theirs, Some(1000), Some(1000)).unwrap();
    let err = e.fails(&["snapmount", "j@s", theirs.to_str().unwrap()]);
    assert!(err.contains("not root"), "{err}");
    let inside = root(&e, &j).join("mnt");
    std::fs::create_dir_all(&inside).unwrap();
    let err = e.fails(&["snapmount", "j@s", inside.to_str().unwrap()]);
    assert!(err.contains("layout"), "{err}");
    // the root of a kernel jail made outside the layout
    let kroot = d.join("kroot");
    std::fs::create_dir_all(kroot.join("mnt")).unwrap();
    let path = format!("path={}", kroot.display());
    e.ok(&["jail", "create", "name=kj", &path, "persist"]);
    let err = e.fails(&["snapmount", "j@s", kroot.join("mnt").to_str().unwrap()]);
    e.ok(&["jail", "remove", "kj"]);
    assert!(
        err.contains("inside the root") && err.contains("kj"),
        "{err}"
    );
    for p in [&real, &open.join("v"), &theirs, &inside, &kroot.join("mnt")] {
        assert!(mounts_at_or_below(p).is_empty(), "{}", p.display());
    }
    // a good one, then unmounted by its id
    e.ok(&["snapmount", "j@s", real.to_str().unwrap()]);
    assert_eq!(mounts_at_or_below(&real).len(), 1);
    e.ok(&["snapumount", "j@s"]);
    assert!(mounts_at_or_below(&real).is_empty());
    e.ok(&["destroy", "-f", "j"]);
}
