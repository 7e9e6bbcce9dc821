//! Snapshots, clones and export/import (issue 15) on both backends: a zfs-fuse pool
//! on a file and the directory backend. Effects are checked on disk, not through
//! jailctl's own output. Needs root.
#![cfg(target_os = "linux")]

mod common;

use std::path::PathBuf;

use common::manager_env::{self, mounts_at_or_below, Env, Kind, Setup};

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
