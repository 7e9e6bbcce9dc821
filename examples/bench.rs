//! jaildaemon benchmark (run as root):
//! `cargo build --release --bins && cargo run --release --example bench [-- N...]`.
//!
//! For N probes (default 1, 100 and 1000), side by side in one run:
//! * spawn: registering N probes (the daemon's spawner forks a worker: attach, fork,
//!   drop, report) vs spawning and reaping N bare processes that attach to the same
//!   jail (`jailctl jail exec JAIL true`), and, as an outside yardstick, N
//!   `nsenter --target INIT --all true` (util-linux) into the jail's namespaces;
//! * trigger latency, SIGHUP sent -> command started (the command writes its start
//!   time), median and p99, vs a bare round trip: SIGHUP to a waiting child ->
//!   waitpid -> spawn `sh -c` writing its start time. Only a process inside the jail
//!   may fire a probe, so the SIGHUP is sent by a shell running in the jail
//!   (`kill -HUP` builtin, fed pids on a pipe); the clock starts at the pipe write;
//! * parallel registrations: 1,000 clients registering at once (wall time, p50/p99 per
//!   registration), under the descriptor limit of the shipped systemd unit.
//! * private memory per probe (Private_* of /proc/PID/smaps_rollup) and the daemon's
//!   RSS with N probes armed.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jaildaemon_proto::{ProbeSpec, Request, Respawn, Response};

fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().join(name)
}

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

fn kb(path: &str, key: &str) -> u64 {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with(key))
        .map(|l| {
            l.split_whitespace()
                .nth(1)
                .unwrap_or("0")
                .parse::<u64>()
                .unwrap_or(0)
        })
        .sum()
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i]
}

fn wait_file(p: &Path) -> u128 {
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(s) = std::fs::read_to_string(p) {
            if let Ok(v) = s.trim().parse::<u128>() {
                return v;
            }
        }
        assert!(Instant::now() < end, "{} never appeared", p.display());
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// The pid of host process `pid` in its own (the jail's) pid namespace.
fn ns_pid(pid: i32) -> i32 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find(|l| l.starts_with("NSpid:"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse().ok())
        .expect("NSpid")
}

/// The host pid of jail `name`'s init, from the jail registry.
fn init_pid(registry: &Path, name: &str) -> i32 {
    for e in std::fs::read_dir(registry).unwrap().flatten() {
        let Ok(text) = std::fs::read_to_string(e.path()) else {
            continue;
        };
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
            continue;
        };
        if v["name"] == name {
            return v["init_pid"].as_i64().expect("init_pid") as i32;
        }
    }
    panic!("jail {name} is not in the registry")
}

/// `n` clients registering a probe each, all at once.
fn parallel_registrations(sock: &Path, n: usize) {
    let start = Instant::now();
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let sock = sock.to_path_buf();
            std::thread::spawn(move || {
                let t = Instant::now();
                let spec = ProbeSpec {
                    command: "true".into(),
                    jail: "bench".into(),
                    respawn: Respawn::Never,
                    uid: None,
                    gid: None,
                    title: Some(format!("BENCH_PAR_{i}")),
                    rate: None,
                    max_running: None,
                    wait: false,
                };
                let r = jaildaemon::daemon::client::request(
                    &sock,
                    &Request::Register(spec),
                    Duration::from_secs(120),
                );
                (
                    matches!(r, Ok(Response::Registered { .. })),
                    t.elapsed().as_secs_f64() * 1e3,
                )
            })
        })
        .collect();
    let results: Vec<(bool, f64)> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let wall = start.elapsed().as_secs_f64();
    let ok = results.iter().filter(|r| r.0).count();
    let mut times: Vec<f64> = results.iter().map(|r| r.1).collect();
    println!(
        "\n{n} parallel registrations: {ok} succeeded, wall {wall:.2} s, per registration p50 {:.0} ms, p99 {:.0} ms",
        pct(&mut times, 0.5),
        pct(&mut times, 0.99)
    );
}

fn main() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "run the benchmark as root"
    );
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![1, 100, 1000]
    } else {
        sizes
    };
    let work = tempfile::Builder::new()
        .prefix("jd-bench-")
        .tempdir_in("/tmp")
        .unwrap();
    let dir = work.path();
    let root = dir.join("root");
    let st = Command::new("sh")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/busybox-root.sh"
        ))
        .arg(&root)
        .status()
        .unwrap();
    assert!(st.success());
    let registry = dir.join("registry");
    std::env::set_var("JAILDAEMON_REGISTRY", &registry);
    let jailctl = bin("jailctl");
    let out = Command::new(&jailctl)
        .args(["jail", "create", "name=bench", "persist"])
        .arg(format!("path={}", root.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sock = dir.join("jd.sock");
    // The shipped systemd unit's limit (LimitNOFILE=65536) where the hard limit allows.
    let hard: u64 = String::from_utf8_lossy(
        &Command::new("sh")
            .args(["-c", "ulimit -Hn"])
            .output()
            .unwrap()
            .stdout,
    )
    .trim()
    .parse()
    .unwrap_or(65536);
    let mut daemon = Command::new("prlimit");
    daemon
        .arg(format!("--nofile=1024:{}", hard.min(65536)))
        .arg("--")
        .arg(bin("jaildaemon"));
    let mut daemon = daemon
        .args(["-D", "-F", "-p"])
        .arg(dir.join("jd.pid"))
        .arg("-f")
        .arg(&sock)
        .arg("-s")
        .arg(dir.join("state/probes.json"))
        .env("RUST_LOG", "warn")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    while jaildaemon::daemon::client::ping(&sock).is_none() {
        std::thread::sleep(Duration::from_millis(20));
    }
    let dpid = daemon.id();
    // The in-jail trigger: a shell that sends SIGHUP to each pid it reads.
    let mut trig = Command::new(&jailctl)
        .args([
            "jail",
            "exec",
            "bench",
            "/bin/sh",
            "-c",
            "while read p; do kill -HUP $p; done",
        ])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut trig_in = trig.stdin.take().unwrap();
    println!(
        "jaildaemon benchmark: {} cores, one run, side by side\n",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    let init = init_pid(&registry, "bench");
    println!(
        "{:>5} | {:>12} {:>12} {:>6} {:>12} {:>6} | {:>10} {:>10} {:>10} {:>10} {:>6} | {:>10} {:>10}",
        "N",
        "spawn/probe",
        "bare/proc",
        "ratio",
        "nsenter/proc",
        "ratio",
        "trig p50",
        "bare p50",
        "trig p99",
        "bare p99",
        "p50 x",
        "priv/probe",
        "daemon RSS"
    );
    // warm-up: one registration and one bare attached process, not measured
    let warm = ProbeSpec {
        command: "true".into(),
        jail: "bench".into(),
        respawn: Respawn::Never,
        uid: None,
        gid: None,
        title: Some("BENCH_WARMUP".into()),
        rate: None,
        max_running: None,
        wait: false,
    };
    let _ = jaildaemon::daemon::client::request(
        &sock,
        &Request::Register(warm),
        Duration::from_secs(30),
    );
    let _ = Command::new(&jailctl)
        .args(["jail", "exec", "bench", "true"])
        .status();
    let mut next = 0u64;
    for &n in &sizes {
        // spawn: probes
        let t = Instant::now();
        let mut pids = Vec::new();
        for _ in 0..n {
            next += 1;
            let spec = ProbeSpec {
                command: format!("date +%s%N > {}/t.$JAILDAEMON_PROBE_ID", dir.display()),
                jail: "bench".into(),
                respawn: Respawn::Never,
                uid: None,
                gid: None,
                title: Some(format!("BENCH_PROBE_{next}")),
                rate: None,
                max_running: None,
                wait: false,
            };
            match jaildaemon::daemon::client::request(
                &sock,
                &Request::Register(spec),
                Duration::from_secs(30),
            )
            .unwrap()
            {
                Response::Registered { id, pid, .. } => pids.push((id, pid)),
                other => panic!("{other:?}"),
            }
        }
        let spawn = t.elapsed().as_secs_f64() * 1e3 / n as f64;
        // spawn: bare attached processes
        let t = Instant::now();
        for _ in 0..n {
            let st = Command::new(&jailctl)
                .args(["jail", "exec", "bench", "true"])
                .status()
                .unwrap();
            assert!(st.success());
        }
        let bare = t.elapsed().as_secs_f64() * 1e3 / n as f64;
        // spawn: the outside yardstick, nsenter into every namespace of the jail
        let t = Instant::now();
        for _ in 0..n {
            let st = Command::new("nsenter")
                .arg("--target")
                .arg(init.to_string())
                .args(["--all", "true"])
                .status()
                .unwrap();
            assert!(st.success());
        }
        let nsenter = t.elapsed().as_secs_f64() * 1e3 / n as f64;
        // memory with n probes armed
        let mut privs: Vec<f64> = pids
            .iter()
            .map(|(_, p)| kb(&format!("/proc/{p}/smaps_rollup"), "Private_") as f64)
            .collect();
        let priv_med = pct(&mut privs, 0.5);
        let rss = kb(&format!("/proc/{dpid}/status"), "VmRSS:");
        // trigger latency: probes (sample up to 200 of them)
        let sample = pids.len().min(200);
        let mut lat = Vec::new();
        for (id, pid) in pids.iter().take(sample) {
            let f = dir.join(format!("t.{id}"));
            let inner = ns_pid(*pid);
            let t0 = now_ns();
            {
                use std::io::Write;
                writeln!(trig_in, "{inner}").unwrap();
                trig_in.flush().unwrap();
            }
            let t1 = wait_file(&f);
            lat.push((t1.saturating_sub(t0)) as f64 / 1e6);
        }
        // the rest are removed
        for (id, _) in pids.iter().skip(sample) {
            let _ = jaildaemon::daemon::client::request(
                &sock,
                &Request::Remove { id: *id },
                Duration::from_secs(30),
            );
        }
        // trigger latency: bare kill -> waitpid -> sh -c
        let mut base = Vec::new();
        for i in 0..sample {
            let mut c = Command::new("sleep").arg("1000").spawn().unwrap();
            std::thread::sleep(Duration::from_millis(2));
            let f = dir.join(format!("b.{n}.{i}"));
            let t0 = now_ns();
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(c.id() as i32),
                nix::sys::signal::SIGHUP,
            )
            .unwrap();
            c.wait().unwrap();
            Command::new("/bin/sh")
                .arg("-c")
                .arg(format!("date +%s%N > {}", f.display()))
                .status()
                .unwrap();
            let t1 = wait_file(&f);
            base.push((t1.saturating_sub(t0)) as f64 / 1e6);
        }
        let (p50, p99) = (pct(&mut lat, 0.5), pct(&mut lat, 0.99));
        let (b50, b99) = (pct(&mut base, 0.5), pct(&mut base, 0.99));
        println!(
            "{:>5} | {:>9.2} ms {:>9.2} ms {:>6.2} {:>9.2} ms {:>6.2} | {:>7.2} ms {:>7.2} ms {:>7.2} ms {:>7.2} ms {:>6.2} | {:>7} kB {:>7} kB",
            n, spawn, bare, spawn / bare, nsenter, spawn / nsenter, p50, b50, p99, b99, p50 / b50, priv_med, rss
        );
    }
    drop(trig_in);
    let _ = trig.wait();
    parallel_registrations(&sock, 1000);
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(dpid as i32),
        nix::sys::signal::SIGTERM,
    );
    let _ = daemon.wait();
    let _ = Command::new(&jailctl)
        .args(["jail", "remove", "bench"])
        .status();
    println!("\nratio = probe spawn / bare attached process (jailctl jail exec JAIL true), then / nsenter --target INIT --all true; p50 x = probe trigger p50 / bare round trip p50");
}
