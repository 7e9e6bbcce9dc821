//! jailctl benchmark (run as root):
//! `cargo build --release --bins && cargo run --release --example bench_manager [-- DIR_JAILS ZFS_JAILS]`.
//!
//! Side by side in one run:
//! * `list` with many jails (default 1000 on the directory backend, 200 on ZFS) vs the
//!   naive way iocage 1.x read them: one `zfs get` per property per jail (on the
//!   directory backend: one read and parse of the jail's file per property);
//! * `create` + `start` + `stop` + `destroy` of one jail vs the same steps done by
//!   hand: `zfs clone` (or an overlay mount), `unshare` + `chroot` running /etc/rc,
//!   then `zfs destroy` (or umount and rm).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The properties `list` shows.
const LIST_PROPS: [&str; 6] = ["uuid", "boot", "tag", "type", "ip4_addr", "release"];

fn bin(name: &str) -> PathBuf {
    std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join(name)
}

fn sh(cmd: &str) {
    let st = Command::new("sh").arg("-c").arg(cmd).status().unwrap();
    assert!(st.success(), "{cmd}");
}

fn out(c: &mut Command) -> String {
    let o = c.output().unwrap();
    assert!(
        o.status.success(),
        "{c:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

fn time(n: usize, mut f: impl FnMut()) -> Duration {
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    t.elapsed() / n as u32
}

struct Setup {
    env: Vec<(String, String)>,
    zfs_pool: Option<String>,
    base: PathBuf,
}

impl Setup {
    fn jailctl(&self) -> Command {
        let mut c = Command::new(bin("jailctl"));
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }
}

fn main() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "run the benchmark as root"
    );
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let n_dir = args.first().copied().unwrap_or(1000);
    let n_zfs = args.get(1).copied().unwrap_or(200);
    let work = tempfile::Builder::new()
        .prefix("jd-mbench-")
        .tempdir_in("/tmp")
        .unwrap();
    let dir = work.path();
    let relroot = dir.join("relroot");
    sh(&format!(
        "sh {}/examples/busybox-root.sh {}",
        env!("CARGO_MANIFEST_DIR"),
        relroot.display()
    ));
    let rel = dir.join("rel");
    std::fs::create_dir_all(&rel).unwrap();
    sh(&format!(
        "tar -C {} -cJf {}/base.txz .",
        relroot.display(),
        rel.display()
    ));
    let pool = format!("jdbench{}", std::process::id());
    let img = format!("/var/tmp/{pool}.img");
    sh(&format!(
        "truncate -s 2G {img} && zpool create -m none {pool} {img}"
    ));
    let _guard = PoolGuard(pool.clone(), img.clone());
    let common = vec![
        (
            "JAILDAEMON_REGISTRY".to_string(),
            dir.join("registry").display().to_string(),
        ),
        (
            "JAILCTL_RUN".to_string(),
            dir.join("run").display().to_string(),
        ),
        (
            "JAILCTL_MOUNTPOINT".to_string(),
            dir.join("mp").display().to_string(),
        ),
    ];
    let mut dir_env = common.clone();
    dir_env.push((
        "JAILCTL_ROOT".into(),
        dir.join("jailctl").display().to_string(),
    ));
    let mut zfs_env = common.clone();
    zfs_env.push(("JAILCTL_POOL".into(), pool.clone()));
    let setups = [
        Setup {
            env: dir_env,
            zfs_pool: None,
            base: dir.join("jailctl"),
        },
        Setup {
            env: zfs_env,
            zfs_pool: Some(pool.clone()),
            base: dir.join("mp"),
        },
    ];
    println!(
        "jailctl benchmark: {} cores, one run, side by side\n",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    println!(
        "{:<5} {:>5} | {:>9} {:>9} {:>9} {:>6} {:>6} | {:>9} {:>9} {:>6} | {:>10} {:>10} {:>6}",
        "store",
        "jails",
        "list",
        "floor",
        "naive",
        "/floor",
        "speed",
        "get TAG",
        "get UUID",
        "ratio",
        "lifecycle",
        "bare",
        "ratio"
    );
    for (s, n) in setups.iter().zip([n_dir, n_zfs]) {
        out(s
            .jailctl()
            .args(["fetch", "release=bb-1"])
            .arg(format!("ftplocaldir={}", rel.display())));
        out(s
            .jailctl()
            .args(["create", "tag=bench", &format!("count={n}")]));
        // list: ours (one bulk read) vs the floor (one read of the same properties
        // without jailctl) vs one read per property per jail
        let ours = time(3, || {
            let l = out(s.jailctl().args(["list", "-H"]));
            assert_eq!(l.lines().count(), n);
        });
        let uuids: Vec<String> = out(s.jailctl().args(["list", "-H"]))
            .lines()
            .map(|l| l.split('\t').nth(1).unwrap().to_string())
            .collect();
        let floor = time(3, || match &s.zfs_pool {
            Some(pool) => {
                let props: Vec<String> = LIST_PROPS
                    .iter()
                    .map(|p| format!("org.freebsd.iocage:{p}"))
                    .collect();
                std::hint::black_box(out(Command::new("zfs").args([
                    "get",
                    "-H",
                    "-p",
                    "-r",
                    "-d",
                    "1",
                    "-o",
                    "name,property,value",
                    &props.join(","),
                    &format!("{pool}/iocage/jails"),
                ])));
            }
            None => {
                for u in &uuids {
                    let data =
                        std::fs::read(s.base.join("jails").join(u).join("config.json")).unwrap();
                    let v: serde_json::Value = serde_json::from_slice(&data).unwrap();
                    std::hint::black_box(&v["tag"]);
                }
            }
        });
        let naive = time(1, || {
            for u in &uuids {
                for p in LIST_PROPS {
                    match &s.zfs_pool {
                        Some(pool) => {
                            out(Command::new("zfs").args([
                                "get",
                                "-H",
                                "-o",
                                "value",
                                &format!("org.freebsd.iocage:{p}"),
                                &format!("{pool}/iocage/jails/{u}"),
                            ]));
                        }
                        None => {
                            let data =
                                std::fs::read(s.base.join("jails").join(u).join("config.json"))
                                    .unwrap();
                            let v: serde_json::Value = serde_json::from_slice(&data).unwrap();
                            std::hint::black_box(&v[p]);
                        }
                    }
                }
            }
        });
        // one jail by TAG vs by UUID, with n jails present
        let tag = "bench_7";
        let uuid = out(s.jailctl().args(["get", "uuid", tag]))
            .trim()
            .to_string();
        let by_tag = time(10, || {
            out(s.jailctl().args(["get", "notes", tag]));
        });
        let by_uuid = time(10, || {
            out(s.jailctl().args(["get", "notes", &uuid]));
        });
        // lifecycle by TAG: jailctl vs bare steps
        let rounds = 5;
        let life = time(rounds, || {
            out(s.jailctl().args(["create", "tag=life"]));
            out(s.jailctl().args(["start", "life"]));
            out(s.jailctl().args(["stop", "life"]));
            out(s.jailctl().args(["destroy", "-f", "life"]));
        });
        let bare = time(rounds, || bare_lifecycle(s, dir));
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!(
            "{:<5} {:>5} | {:>6.1} ms {:>6.1} ms {:>6.0} ms {:>5.2}x {:>5.1}x | {:>6.1} ms {:>6.1} ms {:>5.2}x | {:>7.1} ms {:>7.1} ms {:>5.2}x",
            if s.zfs_pool.is_some() { "zfs" } else { "dir" },
            n,
            ms(ours),
            ms(floor),
            ms(naive),
            ours.as_secs_f64() / floor.as_secs_f64(),
            naive.as_secs_f64() / ours.as_secs_f64(),
            ms(by_tag),
            ms(by_uuid),
            by_tag.as_secs_f64() / by_uuid.as_secs_f64(),
            ms(life),
            ms(bare),
            life.as_secs_f64() / bare.as_secs_f64()
        );
    }
    println!(
        "\nlist: jailctl list -H; floor: one read of the same properties without jailctl (zfs get -r, or the files); \
         naive: one read per property per jail; speed = naive / list\n\
         get: jailctl get notes by TAG vs by UUID; lifecycle: jailctl create+start+stop+destroy by TAG vs the same steps by hand\n"
    );
    bench_rcboot(dir, &rel, 50);
}

/// `rcboot` of `n` jails (exec_start `sleep 0.2`, all of one priority) serially
/// (`-j 1`) vs the default, on the directory backend in its own root below `dir`.
fn bench_rcboot(dir: &Path, rel: &Path, n: usize) {
    let root = dir.join("rcboot");
    let jailctl = || {
        let mut c = Command::new(bin("jailctl"));
        c.env("JAILCTL_ROOT", root.join("jailctl"))
            .env("JAILCTL_RUN", root.join("run"))
            .env("JAILDAEMON_REGISTRY", root.join("registry"))
            .env("JAILCTL_MOUNTPOINT", root.join("mp"))
            .env_remove("JAILCTL_POOL");
        c
    };
    out(jailctl().args([
        "fetch",
        "release=bb-1",
        &format!("ftplocaldir={}", rel.display()),
    ]));
    out(jailctl().args([
        "create",
        "release=bb-1",
        "tag=boot",
        &format!("count={n}"),
        "boot=on",
        "priority=50",
        "exec_start=sleep 0.2",
    ]));
    let run = |jobs: &[&str]| {
        let t = Instant::now();
        let started = out(jailctl().arg("rcboot").args(jobs));
        let took = t.elapsed();
        assert_eq!(started.lines().count(), n, "rcboot {jobs:?}: {started}");
        out(jailctl().arg("rcshutdown").args(jobs));
        took
    };
    let serial = run(&["-j", "1"]);
    let parallel = run(&[]);
    println!(
        "rcboot of {n} jails (exec_start sleep 0.2): -j 1 {:.2} s | default -j {:.2} s = {:.2}x",
        serial.as_secs_f64(),
        parallel.as_secs_f64(),
        parallel.as_secs_f64() / serial.as_secs_f64(),
    );
}

/// Destroys the benchmark's pool, also when a step panics.
struct PoolGuard(String, String);

impl Drop for PoolGuard {
    fn drop(&mut self) {
        let _ = Command::new("sh")
            .arg("-c")
            .arg(format!("zpool destroy -f {} && rm -f {}", self.0, self.1))
            .status();
    }
}

/// The same steps by hand: a root from the release, a jail of namespaces running
/// /etc/rc and /etc/rc.shutdown, teardown.
fn bare_lifecycle(s: &Setup, dir: &Path) {
    let run = "unshare --fork --pid --mount --uts --ipc --mount-proc";
    match &s.zfs_pool {
        Some(pool) => {
            let ds = format!("{pool}/iocage/jails/bare");
            sh(&format!(
                "zfs clone {pool}/iocage/releases/bb-1/root@base {ds}"
            ));
            let mp = out(Command::new("zfs").args(["get", "-H", "-o", "value", "mountpoint", &ds]))
                .trim()
                .to_string();
            sh(&format!(
                "{run} chroot {mp} /bin/sh -c '/bin/sh /etc/rc; /bin/sh /etc/rc.shutdown'"
            ));
            for _ in 0..50 {
                if Command::new("zfs")
                    .args(["destroy", "-r", &ds])
                    .output()
                    .unwrap()
                    .status
                    .success()
                {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        None => {
            let b = dir.join("bare");
            let lower = s.base.join("releases/bb-1/root");
            sh(&format!(
                "mkdir -p {b}/upper {b}/work {b}/root && mount -t overlay overlay -o lowerdir={l},upperdir={b}/upper,workdir={b}/work {b}/root && {run} chroot {b}/root /bin/sh -c '/bin/sh /etc/rc; /bin/sh /etc/rc.shutdown'; umount {b}/root && rm -rf {b}",
                b = b.display(),
                l = lower.display()
            ));
        }
    }
}
