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
        "{:<5} {:>6} | {:>12} {:>12} {:>7} | {:>14} {:>14} {:>7}",
        "store", "jails", "list", "naive list", "speedup", "lifecycle", "bare steps", "ratio"
    );
    for (s, n) in setups.iter().zip([n_dir, n_zfs]) {
        out(s
            .jailctl()
            .args(["fetch", "release=bb-1"])
            .arg(format!("ftplocaldir={}", rel.display())));
        out(s
            .jailctl()
            .args(["create", "tag=bench", &format!("count={n}")]));
        // list: ours (one bulk read) vs one read per property per jail
        let ours = time(3, || {
            let l = out(s.jailctl().args(["list", "-H"]));
            assert_eq!(l.lines().count(), n);
        });
        let uuids: Vec<String> = out(s.jailctl().args(["list", "-H"]))
            .lines()
            .map(|l| l.split('\t').nth(1).unwrap().to_string())
            .collect();
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
        // lifecycle: jailctl vs bare steps
        let rounds = 5;
        let life = time(rounds, || {
            let u = out(s.jailctl().args(["create", "tag=life"]))
                .trim()
                .to_string();
            out(s.jailctl().args(["start", &u]));
            out(s.jailctl().args(["stop", &u]));
            out(s.jailctl().args(["destroy", "-f", &u]));
        });
        let bare = time(rounds, || bare_lifecycle(s, dir));
        println!(
            "{:<5} {:>6} | {:>9.1} ms {:>9.1} ms {:>6.1}x | {:>11.1} ms {:>11.1} ms {:>6.2}x",
            if s.zfs_pool.is_some() { "zfs" } else { "dir" },
            n,
            ours.as_secs_f64() * 1e3,
            naive.as_secs_f64() * 1e3,
            naive.as_secs_f64() / ours.as_secs_f64(),
            life.as_secs_f64() * 1e3,
            bare.as_secs_f64() * 1e3,
            life.as_secs_f64() / bare.as_secs_f64()
        );
    }
    println!("\nspeedup = naive list / list; ratio = jailctl create+start+stop+destroy / the same steps by hand");
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
