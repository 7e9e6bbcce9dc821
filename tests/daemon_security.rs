//! jaildaemon security (issue #8): "the jail sends one bit and nothing more".
//!
//! Each test plays one attack of the issue as written, against a real daemon on its own
//! socket, registry and busybox jail, and asserts what the attacker (or the
//! administrator) observes once the defence is in place:
//!
//! 1. a jail root SIGSTOPs freshly forked probes and forges `pid <host pid>` status
//!    lines: the daemon never names, lists or kills the host victim;
//! 3. 1,100 probes at a soft descriptor limit of 1,024: all register and fire;
//! 4. a jail that SIGSTOPs every new process: registration fails in bounded time,
//!    nothing of the probe is left, the daemon keeps answering meanwhile;
//! 5. a `-u 1001` probe cannot be fired by uid 1001 (or root) on the host;
//! 6. `-l` with 1,500 long probes (far past one 64 KiB frame);
//! 7. pidfile and socket in world-writable places: symlinks, open directories, a fake
//!    daemon run by another user, a pidfile locked by another user;
//! 8. SIGHUP floods: rate limit and cap on running commands, coalesced triggers;
//! 9. idle connections do not delay the administrator;
//! 10. titles with control or bidirectional-override characters are refused.
//!
//! (Defect 2, the host binary reachable through /proc, is tested in containment.rs.)
//!
//! The hostile parts are played by tests/helpers/hostile_daemon.c, a small static C
//! program compiled here; see its header for what each mode does and why it cannot
//! harm the test machine. The tests run one at a time (some spin every CPU or hold
//! thousands of probes, and several measure latencies). Needs root.
#![cfg(target_os = "linux")]

mod common;

use common::{Daemon, Sandbox, JAILDAEMON};
use jaildaemon_proto::{ProbeSpec, Rate, Request, Respawn, Response};
use serde_json::Value;
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------
// One test at a time

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------------------------
// The hostile helper

/// tests/helpers/hostile_daemon.c, compiled once per test run (static: it runs in a
/// busybox jail and as any user on the host).
fn hostile_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| common::hostile::compile_static("hostile_daemon"))
}

/// Copy the helper to `dir/hostile_daemon`, mode 0755.
fn install_hostile_at(dir: &Path) -> PathBuf {
    let dst = dir.join("hostile_daemon");
    std::fs::copy(hostile_bin(), &dst).unwrap();
    std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(0o755)).unwrap();
    dst
}

/// The helper running inside a jail as its root, started with
/// `jailctl jail exec JAIL sh -c 'hostile_daemon ... &'`. Its report is the jail's
/// `/tmp/NAME.out`; it ends when `/tmp/NAME.stop` exists (made when dropped too; the
/// jail's removal by the sandbox kills it in any case).
struct Hostile {
    out: PathBuf,
    stop: PathBuf,
}

impl Hostile {
    /// Start `hostile_daemon MODE ARGS... MAX_SECS /tmp/NAME.stop` in `jail`; returns
    /// once it reports READY.
    fn start(d: &Daemon, jail: &str, name: &str, mode_args: &[&str], max_secs: u32) -> Hostile {
        install_hostile_at(&d.sb.root.join("bin"));
        let h = Hostile {
            out: d.sb.root.join(format!("tmp/{name}.out")),
            stop: d.sb.root.join(format!("tmp/{name}.stop")),
        };
        let _ = std::fs::remove_file(&h.stop);
        let _ = std::fs::remove_file(&h.out);
        let script = format!(
            "/bin/hostile_daemon {} {max_secs} /tmp/{name}.stop >/tmp/{name}.out 2>&1 </dev/null &",
            mode_args.join(" ")
        );
        let o = d.sb.run(&["jail", "exec", jail, "sh", "-c", &script]);
        assert!(
            o.status.success(),
            "starting the hostile process in jail {jail}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(
            h.wait_for("READY", 10),
            "the hostile process did not start: {}",
            h.report()
        );
        h
    }

    fn report(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    /// Report lines starting with `prefix`.
    fn lines(&self, prefix: &str) -> Vec<String> {
        self.report()
            .lines()
            .filter(|l| l.starts_with(prefix))
            .map(String::from)
            .collect()
    }

    fn wait_for(&self, prefix: &str, secs: u64) -> bool {
        wait_until(Duration::from_secs(secs), || !self.lines(prefix).is_empty())
    }

    /// Tell it to stop and wait for its last line; returns the whole report.
    fn finish(&self) -> String {
        std::fs::write(&self.stop, "stop").unwrap();
        assert!(
            self.wait_for("DONE", 15),
            "the hostile process did not stop: {}",
            self.report()
        );
        self.report()
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        let _ = std::fs::write(&self.stop, "stop");
    }
}

// ---------------------------------------------------------------------------------
// Small helpers

fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A host process killed (and reaped) when dropped.
struct KillOnDrop(Child);

impl KillOnDrop {
    fn pid(&self) -> i32 {
        self.0.id() as i32
    }

    /// Still running (not exited, not a zombie).
    fn alive(&mut self) -> bool {
        matches!(self.0.try_wait(), Ok(None))
            && common::stat_fields(self.pid()).is_some_and(|f| f[0] != "Z")
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A harmless host process the attacker would like the daemon to kill.
fn victim() -> KillOnDrop {
    KillOnDrop(
        Command::new("sleep")
            .arg("1000")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("sleep(1) (apt-get install -y coreutils)"),
    )
}

/// A daemon whose descriptor limit is SOFT:HARD when it starts (systemd's default soft
/// limit is 1,024). It is a `common::Daemon`, so it is stopped and its sandbox cleaned
/// when dropped.
fn daemon_with_nofile(soft: u64, hard: u64) -> Guarded {
    let sb = Sandbox::new();
    let socket = sb.dir.path().join("jd.sock");
    let pidfile = sb.dir.path().join("jd.pid");
    let log = sb.dir.path().join("jd.log");
    let mut d = Daemon {
        sb,
        socket,
        pidfile,
        log,
        child: None,
    };
    let mut c = d.daemon_cmd(&["-D", "-F"]);
    c.stderr(std::fs::File::create(&d.log).unwrap());
    // SAFETY: only setrlimit(2), async-signal-safe, between fork and exec.
    unsafe {
        c.pre_exec(move || {
            let r = libc::rlimit {
                rlim_cur: soft as libc::rlim_t,
                rlim_max: hard as libc::rlim_t,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &r) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    d.child = Some(c.spawn().unwrap());
    let d = Guarded(d);
    assert!(
        d.sb.wait_for(10, || d.ping()),
        "the daemon did not come up; log:\n{}",
        d.log_text()
    );
    d
}

/// A `common::Daemon` whose stop is bounded: SIGTERM, then SIGKILL after 10 s. (The
/// common Drop waits for ever, so a daemon stuck on a hostile jail would hang the
/// suite instead of failing one test.) The sandbox is cleaned by the inner Drop.
struct Guarded(Daemon);

impl Guarded {
    fn start() -> Guarded {
        Guarded(Daemon::start())
    }

    /// SIGTERM the daemon and wait at most 10 s for it; None when it had to be killed
    /// (or was not running).
    fn stop_bounded(&mut self) -> Option<ExitStatus> {
        let mut c = self.0.child.take()?;
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(c.id() as i32),
            nix::sys::signal::SIGTERM,
        );
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            if let Ok(Some(st)) = c.try_wait() {
                return Some(st);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = c.kill();
        let _ = c.wait();
        None
    }
}

impl std::ops::Deref for Guarded {
    type Target = Daemon;
    fn deref(&self) -> &Daemon {
        &self.0
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        let _ = self.stop_bounded();
    }
}

/// (soft, hard) "Max open files" of a process.
fn nofile_limits(pid: i32) -> (String, String) {
    let l = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = l
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("Max open files in /proc/PID/limits");
    let f: Vec<&str> = line.split_whitespace().collect();
    (f[3].to_string(), f[4].to_string())
}

/// Host pid of the init of jail `name`, from the sandbox's registry.
fn init_pid(sb: &Sandbox, name: &str) -> i32 {
    for e in std::fs::read_dir(&sb.registry).unwrap().flatten() {
        if !e.file_name().to_string_lossy().ends_with(".json") {
            continue;
        }
        let Ok(v) = serde_json::from_slice::<Value>(&std::fs::read(e.path()).unwrap()) else {
            continue;
        };
        if v["name"] == name {
            return v["init_pid"].as_i64().expect("init_pid in the registry") as i32;
        }
    }
    panic!("jail {name} is not in the registry")
}

fn cmdline(pid: i32) -> Option<String> {
    let b = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(
        String::from_utf8_lossy(&b)
            .trim_end_matches('\0')
            .replace('\0', " "),
    )
}

/// Host processes (zombies excluded) whose argv[0] is `title`: a probe or its helper.
fn host_processes_titled(title: &str) -> Vec<(i32, String)> {
    let mut v = vec![];
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(b) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let argv0 = b.split(|&c| c == 0).next().unwrap_or_default();
        if argv0 == title.as_bytes() && common::stat_fields(pid).is_some_and(|f| f[0] != "Z") {
            v.push((pid, common::stat_fields(pid).unwrap()[0].clone()));
        }
    }
    v
}

fn probe_by_title(d: &Daemon, title: &str) -> Option<Value> {
    d.probes().into_iter().find(|p| p["title"] == title)
}

/// The result of a command run with a time limit; `status` is None when it had to be
/// killed.
struct Bounded {
    status: Option<ExitStatus>,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

fn run_bounded(mut cmd: Command, limit: Duration) -> Bounded {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let t0 = Instant::now();
    let mut child = cmd.spawn().unwrap();
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let ho = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = so.read_to_end(&mut s);
        s
    });
    let he = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = se.read_to_end(&mut s);
        s
    });
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break Some(st);
        }
        if t0.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let elapsed = t0.elapsed();
    Bounded {
        status,
        stdout: text(&ho.join().unwrap()),
        stderr: text(&he.join().unwrap()),
        elapsed,
    }
}

/// Register `n` single-shot probes in `jail`, `threads` utilities at a time; `spec(i)`
/// gives the title and command of probe i. Returns the failures (index, stderr).
fn register_many(
    d: &Daemon,
    jail: &str,
    n: usize,
    threads: usize,
    spec: impl Fn(usize) -> (String, String) + Sync,
) -> Vec<(usize, String)> {
    let failures = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for t in 0..threads {
            let (failures, spec) = (&failures, &spec);
            s.spawn(move || {
                for i in (t..n).step_by(threads) {
                    let (title, command) = spec(i);
                    let o = d.util(&["-c", &command, "-j", jail, "-t", &title]);
                    if !o.status.success() {
                        failures.lock().unwrap().push((i, text(&o.stderr)));
                    }
                }
            });
        }
    });
    let mut f = failures.into_inner().unwrap();
    f.sort();
    f
}

/// One request straight on the socket, as a client that skips the utility's checks.
fn raw_request(socket: &Path, req: &Request) -> Response {
    let mut s = UnixStream::connect(socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    s.write_all(&jaildaemon_proto::encode(req).unwrap())
        .unwrap();
    let body = jaildaemon_proto::read_frame(&mut s).unwrap();
    jaildaemon_proto::decode(&body).unwrap()
}

fn spec(jail: &str, title: &str) -> ProbeSpec {
    ProbeSpec {
        command: "true".into(),
        jail: jail.into(),
        respawn: Respawn::Never,
        uid: None,
        gid: None,
        title: Some(title.into()),
        rate: None,
        max_running: None,
        wait: false,
    }
}

/// A directory in /tmp that other users can reach (mode 0755), removed when dropped.
fn public_dir(prefix: &str) -> tempfile::TempDir {
    let d = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in("/tmp")
        .unwrap();
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    d
}

/// Run the helper on the host as uid/gid 65534 with setpriv(1), its report into `log`.
fn as_nobody(bin: &Path, args: &[&str], log: &Path) -> KillOnDrop {
    let out = std::fs::File::create(log).unwrap();
    KillOnDrop(
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(bin)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("setpriv(1) (apt-get install -y util-linux)"),
    )
}

fn assert_refused_to_start(b: &Bounded, what: &str, needle: &str) {
    let st = b.status.unwrap_or_else(|| {
        panic!(
            "{what}: the daemon did not exit within {:?} (it started, or hangs); stderr:\n{}",
            b.elapsed, b.stderr
        )
    });
    assert!(
        !st.success(),
        "{what}: the daemon started and exited 0; stdout:\n{}stderr:\n{}",
        b.stdout,
        b.stderr
    );
    assert!(
        b.stderr.contains(needle),
        "{what}: the error does not say `{needle}`:\n{}",
        b.stderr
    );
}

// ---------------------------------------------------------------------------------
// 1. Forged status lines

/// The attack of defect 1: a root in the jail spins SIGSTOPping the pids its pid
/// namespace hands out next, so it holds fresh probes (single-shot registrations, and
/// the respawns of a `-R` probe it fires itself) in the middle of their setup; it tries
/// to open `/proc/<probe>/fd/*` and write `pid <victim>\nok\n` where the daemon's
/// channel used to be. The victim is a `sleep` on the host. What the attacker sees:
/// every open is refused, `-l -J` never shows the victim, every listed pid is the
/// probe in the jail, and neither `-k` nor the daemon's SIGTERM touch the victim.
#[test]
fn jail_root_cannot_make_the_daemon_name_or_kill_a_host_process() {
    let _g = serial();
    let mut d = Guarded::start();
    d.sb.create("forge", &[]);
    let jail_init = init_pid(&d.sb, "forge");
    let jail_pidns = std::fs::read_link(format!("/proc/{jail_init}/ns/pid")).unwrap();
    let mut victim = victim();
    let vpid = victim.pid().to_string();
    let h = Hostile::start(
        &d,
        "forge",
        "forge",
        &["forge", &vpid, "300", "FORGE_RESPAWN", "4", "1200"],
        120,
    );
    let marker = d.file("forge-fired");
    let cmd = format!("echo fired >> {}", marker.display());
    // Registrations: each either succeeds or fails only because the probe was held
    // past the setup limit.
    let mut registered = vec![];
    let mut register = |title: &str, extra: &[&str]| -> bool {
        let mut args = vec!["-c", cmd.as_str(), "-j", "forge", "-t", title];
        args.extend_from_slice(extra);
        let o = d.util(&args);
        if o.status.success() {
            registered.push(title.to_string());
            return true;
        }
        let e = text(&o.stderr);
        assert!(
            e.contains("did not finish setting up"),
            "registering {title} failed for another reason than the setup limit: {e}\nlog:\n{}",
            d.log_text()
        );
        false
    };
    let respawning = (0..3).any(|_| register("FORGE_RESPAWN", &["-R"]));
    // at least 6 single-shot probes, more until one was caught while it still held
    // more than the three /dev/null descriptors of an armed probe (in its setup)
    for i in 1..=20 {
        register(&format!("FORGE_ONCE_{i}"), &[]);
        if i >= 6 && caught_in_setup(&h.report()) != Some(false) {
            break;
        }
    }
    if respawning {
        // the hostile fires the -R probe 4 times: 4 respawns it attacks too (if the
        // probe is lost on the way, the assertions below still hold)
        h.wait_for("FIRE_DONE", 30);
        std::thread::sleep(Duration::from_millis(1500));
    }
    let report = h.finish();

    // The attack was staged: probes were caught stopped in the jail.
    let caught: Vec<&str> = report
        .lines()
        .filter(|l| l.starts_with("STOPPED ") && l.contains("FORGE_"))
        .collect();
    assert!(
        !caught.is_empty(),
        "the hostile process never caught a probe, the attack could not be staged:\n{report}"
    );
    // What the administrator and the daemon see: only probes, never the victim.
    let probes = d.probes();
    assert!(
        !registered.is_empty() && !probes.is_empty(),
        "no probe could be registered under attack: {registered:?}"
    );
    for p in &probes {
        assert_ne!(
            p["pid"].to_string(),
            vpid,
            "the daemon took the host process {vpid} for a probe: {p}"
        );
        if let Some(pid) = p["pid"].as_i64() {
            let pid = pid as i32;
            assert_eq!(
                cmdline(pid).as_deref(),
                p["title"].as_str(),
                "pid {pid} of probe {} is not that probe",
                p["id"]
            );
            assert_eq!(
                std::fs::read_link(format!("/proc/{pid}/ns/pid")).unwrap(),
                jail_pidns,
                "pid {pid} of probe {} is not in the jail",
                p["id"]
            );
        }
    }
    assert!(victim.alive(), "the victim died during the attack");
    // -k kills exactly the probe
    for p in &probes {
        let id = p["id"].to_string();
        let o = d.util(&["-k", &id]);
        assert!(o.status.success(), "-k {id}: {}", text(&o.stderr));
        assert!(
            victim.alive(),
            "`jaildaemon -k {id}` killed the host process {vpid}"
        );
    }
    // and so does the daemon's SIGTERM, for the probes that are left
    for t in ["FORGE_LATE_1", "FORGE_LATE_2"] {
        d.register(&["-c", "true", "-j", "forge", "-t", t, "-r"]);
    }
    let st = d
        .stop_bounded()
        .expect("the daemon did not exit within 10 s of its SIGTERM");
    assert!(st.success(), "the daemon's SIGTERM exit: {st:?}");
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        victim.alive(),
        "the daemon's SIGTERM killed the host process {vpid}"
    );
    assert!(host_processes_titled("FORGE_LATE_1").is_empty());
    // The root cause: the jail's root could open none of the probes' descriptors, so
    // it wrote nothing. (Listing /proc/PID/fd shows only numbers and is not refused.)
    let reached: Vec<&str> = report
        .lines()
        .filter(|l| l.starts_with("WROTE ") || (l.starts_with("OPEN ") && l.contains(" OK ")))
        .collect();
    assert!(
        reached.is_empty(),
        "a root in the jail reached a probe's descriptors through /proc: {reached:?}\n{report}"
    );
    assert!(
        report
            .lines()
            .any(|l| l.starts_with("OPEN ") && l.contains(" DENIED ")),
        "no attempt on /proc/PID/fd was reported:\n{report}"
    );
    // (and the test proved something: a probe was held in its setup)
    assert!(
        caught_in_setup(&report) != Some(false),
        "the hostile process caught probes only once they were armed, the attack could \
         not be staged:\n{report}"
    );
}

/// Whether the hostile's report shows a probe (title FORGE_*) stopped while it held
/// more than descriptors 0-2 (an armed probe holds exactly those: so it was caught in
/// its setup). None when /proc/PID/fd could not even be listed, so it cannot tell.
fn caught_in_setup(report: &str) -> Option<bool> {
    let probes: BTreeSet<&str> = report
        .lines()
        .filter(|l| l.starts_with("STOPPED ") && l.contains("FORGE_"))
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    let mut listed = false;
    for l in report.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() == 4 && f[0] == "LISTFD" && f[2] == "OK" && probes.contains(f[1]) {
            listed = true;
            if f[3].parse::<u32>().is_ok_and(|n| n > 3) {
                return Some(true);
            }
        }
    }
    if listed || probes.is_empty() {
        Some(false)
    } else {
        None
    }
}

// ---------------------------------------------------------------------------------
// 3. Descriptors

/// Defect 3: at a soft limit of 1,024 (systemd's default), 157 of 1,100 registrations
/// failed and triggers were lost. The daemon now raises its soft limit to the hard
/// limit: 1,100 probes in one jail all register, each fired one runs its command, and
/// the jail stays listed.
#[test]
fn eleven_hundred_probes_at_soft_nofile_1024_register_and_fire() {
    let _g = serial();
    let d = daemon_with_nofile(1024, 20000);
    assert_eq!(
        nofile_limits(d.pid()),
        ("20000".to_string(), "20000".to_string()),
        "the daemon did not raise its descriptor soft limit to the hard limit"
    );
    d.sb.create("nofile", &[]);
    const N: usize = 1100;
    let marker = |i: usize| d.file(&format!("nofile-{i:04}"));
    let title = |i: usize| format!("NOFILE_{i:04}");
    let failures = register_many(&d, "nofile", N, 4, |i| {
        (title(i), format!("echo fired >> {}", marker(i).display()))
    });
    assert!(
        failures.is_empty(),
        "{} of {N} registrations failed, first: {:?}",
        failures.len(),
        failures.first()
    );
    let probes = d.probes();
    assert_eq!(probes.len(), N);
    assert!(probes.iter().all(|p| p["state"] == "Armed"));
    let fds = std::fs::read_dir(format!("/proc/{}/fd", d.pid()))
        .unwrap()
        .count();
    assert!(fds > N, "the daemon holds {fds} descriptors for {N} probes");
    // triggers run their commands, including the probes registered last
    let fired = [0usize, 550, 1023, 1024, 1099];
    for &i in &fired {
        let o = d.trigger("nofile", &title(i));
        assert!(
            o.status.success(),
            "pkill -HUP -f {}: {}",
            title(i),
            text(&o.stderr)
        );
        assert!(
            wait_until(Duration::from_secs(5), || marker(i).exists()),
            "the command of {} did not run; log tail:\n{}",
            title(i),
            tail(&d.log_text(), 30)
        );
    }
    assert!(
        wait_until(Duration::from_secs(5), || d.probes().len()
            == N - fired.len()),
        "{} probes listed after {} single-shot triggers",
        d.probes().len(),
        fired.len()
    );
    let jails = d.sb.ok(&["jail", "list", "name"]);
    assert!(
        jails.lines().any(|l| l.trim() == "nofile"),
        "the jail is no longer listed:\n{jails}"
    );
    assert_eq!(
        d.sb.ok(&["jail", "exec", "nofile", "echo", "alive"]).trim(),
        "alive"
    );
    assert!(
        !d.log_text().contains("could not be started"),
        "a command could not be started; log tail:\n{}",
        tail(&d.log_text(), 30)
    );
}

fn tail(s: &str, n: usize) -> String {
    let l: Vec<&str> = s.lines().collect();
    l[l.len().saturating_sub(n)..].join("\n")
}

// ---------------------------------------------------------------------------------
// 4. Start-up timeout

/// Defect 4: a jail whose root SIGSTOPs every new process hung registration forever
/// and left the half-made probe behind. Now the registration fails within the setup
/// limit with an error saying so, nothing of the probe is left in the jail or in `-l`,
/// and the daemon answers `-l` and pings within a second meanwhile.
#[test]
fn probe_stopped_during_setup_fails_registration_and_leaves_nothing() {
    let _g = serial();
    let d = Guarded::start();
    d.sb.create("stopper", &[]);
    let h = Hostile::start(&d, "stopper", "stopall", &["stopall"], 120);
    let mut held = None;
    for attempt in 1..=6 {
        let title = format!("SLOW_SETUP_{attempt}");
        let socket = d.socket.clone();
        let t = title.clone();
        let reg = std::thread::spawn(move || {
            let mut c = Command::new(JAILDAEMON);
            c.args(["-c", "true", "-j", "stopper", "-t", &t, "-f"])
                .arg(&socket);
            run_bounded(c, Duration::from_secs(15))
        });
        std::thread::sleep(Duration::from_millis(1500));
        if reg.is_finished() {
            // The hostile process missed the race: the probe armed before it was
            // stopped. Remove it and try again.
            let b = reg.join().unwrap();
            if b.status.is_some_and(|st| st.success()) {
                let id =
                    probe_by_title(&d, &title).expect("registered probe listed")["id"].to_string();
                assert!(d.util(&["-k", &id]).status.success());
            } else {
                assert!(
                    b.stderr.contains("did not finish setting up"),
                    "registration failed for another reason: {}",
                    b.stderr
                );
            }
            continue;
        }
        // A registration is stuck on a stopped probe: the daemon still answers.
        let mut c = Command::new(JAILDAEMON);
        c.arg("-l").arg("-f").arg(&d.socket);
        let l = run_bounded(c, Duration::from_secs(5));
        assert!(
            l.status.is_some_and(|st| st.success()),
            "-l during a slow registration: {:?} after {:?}: {}",
            l.status,
            l.elapsed,
            l.stderr
        );
        assert!(
            l.elapsed < Duration::from_secs(1),
            "-l took {:?} during a slow registration",
            l.elapsed
        );
        let t0 = Instant::now();
        assert!(d.ping(), "no answer to a ping during a slow registration");
        assert!(
            t0.elapsed() < Duration::from_secs(1),
            "ping took {:?}",
            t0.elapsed()
        );
        let b = reg.join().unwrap();
        let elapsed = b.elapsed;
        let st = b.status.unwrap_or_else(|| {
            panic!(
                "the registration of {title} hung (killed after {elapsed:?}): {}",
                b.stderr
            )
        });
        assert!(
            !st.success(),
            "the registration of {title} succeeded although its probe was held stopped"
        );
        let e = b.stderr;
        assert!(
            e.contains("did not finish setting up"),
            "the error does not say the probe did not finish setting up: {e}"
        );
        assert!(
            elapsed < Duration::from_secs(10),
            "the registration took {elapsed:?} to fail"
        );
        eprintln!("attempt {attempt}: {title} held in setup, registration failed in {elapsed:?}");
        held = Some(title);
        break;
    }
    let title = held.unwrap_or_else(|| {
        panic!(
            "the hostile process never held a probe in setup, the attack could not be staged:\n{}",
            h.report()
        )
    });
    let report = h.finish();
    assert!(
        report
            .lines()
            .any(|l| l.starts_with("STOPPED ") && l.contains(&title)),
        "the hostile process did not report stopping {title}:\n{report}"
    );
    // nothing of the probe is left
    assert!(
        wait_until(Duration::from_secs(5), || host_processes_titled(&title)
            .is_empty()),
        "processes of the failed probe remain: {:?}",
        host_processes_titled(&title)
    );
    let ps = d.sb.ok(&["jail", "exec", "stopper", "ps"]);
    assert!(
        !ps.contains(&title),
        "the failed probe is still in the jail:\n{ps}"
    );
    assert!(probe_by_title(&d, &title).is_none());
    // ... and it is not registered later either
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        probe_by_title(&d, &title).is_none(),
        "the failed probe was registered after its registration failed"
    );
    assert!(host_processes_titled(&title).is_empty());
}

// ---------------------------------------------------------------------------------
// 5. -u probes fire only from inside the jail

/// Defect 5: with `-u 1001`, any host process of uid 1001 fired the probe. It still may
/// deliver the signal (same uid), but no command runs and the probe stays armed; the
/// same uid inside the jail fires it.
#[test]
fn uid_probe_is_not_fired_by_the_same_uid_on_the_host() {
    let _g = serial();
    let d = Guarded::start();
    d.sb.create("uidjail", &[]);
    let marker = d.file("uid-fired");
    d.register(&[
        "-c",
        &format!("echo fired >> {}", marker.display()),
        "-j",
        "uidjail",
        "-u",
        "1001",
        "-t",
        "UID_HOST_T",
    ]);
    let p = probe_by_title(&d, "UID_HOST_T").unwrap();
    let pid = p["pid"].as_i64().unwrap() as i32;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(
        status
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == ["Uid:", "1001", "1001", "1001", "1001"]),
        "{status}"
    );
    let still_armed = |why: &str| {
        std::thread::sleep(Duration::from_secs(1));
        assert!(!marker.exists(), "{why} ran the command");
        let p = probe_by_title(&d, "UID_HOST_T").expect("probe listed");
        assert_eq!(p["state"], "Armed", "{why}: {p}");
        assert_eq!(p["pid"], pid, "{why}: {p}");
        assert_eq!(p["triggers"], 0, "{why}: {p}");
        assert!(
            common::stat_fields(pid).is_some_and(|f| f[0] == "S"),
            "{why}: the probe is not waiting"
        );
    };
    // uid 1001 on the host: the kill is allowed by the kernel, and ignored
    let o = Command::new("setpriv")
        .args([
            "--reuid=1001",
            "--regid=1001",
            "--clear-groups",
            "kill",
            "-HUP",
        ])
        .arg(pid.to_string())
        .output()
        .expect("setpriv(1) (apt-get install -y util-linux)");
    assert!(
        o.status.success(),
        "uid 1001 could not even signal the probe (the test proves nothing): {}",
        text(&o.stderr)
    );
    still_armed("a SIGHUP from uid 1001 on the host");
    // root on the host is not in the jail either
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGHUP).unwrap();
    still_armed("a SIGHUP from root on the host");
    // the same uid inside the jail fires it
    let o = d.sb.run(&[
        "jail",
        "exec",
        "-u",
        "user",
        "uidjail",
        "pkill",
        "-HUP",
        "-f",
        "UID_HOST_T",
    ]);
    assert!(o.status.success(), "pkill in the jail: {}", text(&o.stderr));
    assert!(
        wait_until(Duration::from_secs(5), || marker.exists()),
        "a SIGHUP from uid 1001 inside the jail did not run the command; log:\n{}",
        d.log_text()
    );
}

// ---------------------------------------------------------------------------------
// 6. -l with many probes

/// Defect 6: `-l` failed past ~1,000 probes (one 64 KiB frame). 1,500 probes with
/// ~100-character titles and commands: `-l` prints them all, `-l -J` is an array of all.
#[test]
fn list_shows_all_of_fifteen_hundred_long_probes() {
    let _g = serial();
    let d = daemon_with_nofile(1024, 20000);
    d.sb.create("biglist", &[]);
    const N: usize = 1500;
    let title = |i: usize| format!("BIGLIST_{i:04}_{}", "t".repeat(90));
    let command = |i: usize| format!("echo {i:04} {} >/dev/null", "c".repeat(84));
    assert!(title(0).len() >= 100 && command(0).len() >= 100);
    let failures = register_many(&d, "biglist", N, 4, |i| (title(i), command(i)));
    assert!(
        failures.is_empty(),
        "{} of {N} registrations failed, first: {:?}",
        failures.len(),
        failures.first()
    );
    let o = d.util(&["-l"]);
    assert!(o.status.success(), "jaildaemon -l: {}", text(&o.stderr));
    let table = text(&o.stdout);
    assert!(
        table.len() > 64 * 1024,
        "the listing is only {} bytes",
        table.len()
    );
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].trim_start().starts_with("ID"),
        "no header: {}",
        lines[0]
    );
    let data = &lines[1..];
    assert_eq!(data.len(), N, "-l printed {} data lines", data.len());
    for i in 0..N {
        let t = title(i);
        assert_eq!(
            data.iter().filter(|l| l.contains(&t)).count(),
            1,
            "probe {t} is not listed exactly once"
        );
    }
    let o = d.util(&["-l", "-J"]);
    assert!(o.status.success(), "jaildaemon -l -J: {}", text(&o.stderr));
    let list: Vec<Value> = serde_json::from_slice(&o.stdout).expect("-l -J is a JSON array");
    assert_eq!(list.len(), N);
    let ids: BTreeSet<String> = list.iter().map(|p| p["id"].to_string()).collect();
    assert_eq!(ids.len(), N, "duplicate ids in -l -J");
    let got: BTreeSet<(String, String)> = list
        .iter()
        .map(|p| {
            (
                p["title"].as_str().unwrap().to_string(),
                p["command"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want: BTreeSet<(String, String)> = (0..N).map(|i| (title(i), command(i))).collect();
    assert!(
        got == want,
        "-l -J does not list exactly the registered probes"
    );
}

// ---------------------------------------------------------------------------------
// 7. World-writable directories

/// Defect 7a: `-p` pointing to a symlink planted in a sticky world-writable directory:
/// the daemon refuses to start and the symlink's target keeps its content.
#[test]
fn pidfile_symlink_in_a_sticky_directory_is_refused() {
    let _g = serial();
    let sb = Sandbox::new();
    let sticky = sb.dir.path().join("sticky");
    std::fs::create_dir(&sticky).unwrap();
    std::fs::set_permissions(&sticky, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let target = sb.dir.path().join("precious");
    std::fs::write(&target, "root's precious file\n").unwrap();
    let link = sticky.join("jd.pid");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let sock = sb.dir.path().join("jd.sock");
    let mut c = Command::new(JAILDAEMON);
    c.args(["-D", "-F", "-p"])
        .arg(&link)
        .arg("-f")
        .arg(&sock)
        .env("JAILDAEMON_REGISTRY", &sb.registry);
    let b = run_bounded(c, Duration::from_secs(10));
    assert_refused_to_start(&b, "a symlinked pidfile", "symbolic link");
    assert_eq!(
        std::fs::read_to_string(&target).unwrap(),
        "root's precious file\n",
        "the symlink's target was changed"
    );
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(jaildaemon::daemon::client::ping(&sock).is_none());
}

/// Defect 7b: a pidfile in a directory anyone may write to (0777, not sticky), where
/// another user could replace it: refused.
#[test]
fn pidfile_in_a_world_writable_directory_is_refused() {
    let _g = serial();
    let sb = Sandbox::new();
    let open = sb.dir.path().join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    let pidfile = open.join("jd.pid");
    let sock = sb.dir.path().join("jd.sock");
    let mut c = Command::new(JAILDAEMON);
    c.args(["-D", "-F", "-p"])
        .arg(&pidfile)
        .arg("-f")
        .arg(&sock)
        .env("JAILDAEMON_REGISTRY", &sb.registry);
    let b = run_bounded(c, Duration::from_secs(10));
    assert_refused_to_start(&b, "a pidfile in a 0777 directory", "writable by others");
    assert!(
        !pidfile.exists(),
        "a pidfile was created in the open directory"
    );
    assert!(jaildaemon::daemon::client::ping(&sock).is_none());
}

/// Defect 7c: a fake daemon, listening as uid 65534 on a socket in its own directory,
/// captured registered commands. The utility now refuses to talk to a server that is
/// not root, before sending a byte: the fake daemon receives nothing.
#[test]
fn utility_sends_nothing_to_a_fake_daemon_of_another_user() {
    let _g = serial();
    let public = public_dir("jd-sec-fake-");
    let bin = install_hostile_at(public.path());
    let dir = public.path().join("fake");
    std::fs::create_dir(&dir).unwrap();
    std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).unwrap();
    let sock = dir.join("jd.sock");
    let stop = dir.join("stop");
    let log = public.path().join("fake.log");
    let _fake = as_nobody(
        &bin,
        &[
            "fakeserver",
            sock.to_str().unwrap(),
            "60",
            stop.to_str().unwrap(),
        ],
        &log,
    );
    let report = || std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        wait_until(Duration::from_secs(10), || report().contains("LISTENING")),
        "the fake daemon did not start: {}",
        report()
    );
    let attempts: [&[&str]; 3] = [
        &[
            "-c",
            "echo SECRET_COMMAND_7C",
            "-j",
            "anyjail",
            "-t",
            "FAKE_T",
        ],
        &["-l"],
        &["-k", "1"],
    ];
    for (k, args) in attempts.iter().enumerate() {
        let mut c = Command::new(JAILDAEMON);
        c.args(*args).arg("-f").arg(&sock);
        let b = run_bounded(c, Duration::from_secs(15));
        let st = b
            .status
            .unwrap_or_else(|| panic!("jaildaemon {args:?} hung on a fake daemon"));
        assert!(
            !st.success(),
            "jaildaemon {args:?} succeeded against a fake daemon"
        );
        assert!(
            b.stderr.contains("not root"),
            "jaildaemon {args:?}: the error does not say the server is not root: {}",
            b.stderr
        );
        let want = format!("BYTES {} ", k + 1);
        assert!(
            wait_until(Duration::from_secs(6), || report().contains(&want)),
            "the fake daemon did not report connection {}: {}",
            k + 1,
            report()
        );
    }
    std::fs::write(&stop, "stop").unwrap();
    let r = report();
    let bytes: Vec<&str> = r.lines().filter(|l| l.starts_with("BYTES ")).collect();
    assert_eq!(bytes.len(), 3, "{r}");
    assert!(
        bytes.iter().all(|l| l.ends_with(" 0")) && !r.contains("DATA") && !r.contains("SECRET"),
        "the fake daemon received bytes:\n{r}"
    );
}

/// Defect 7d: a user holding a lock on a pidfile it created in a sticky directory
/// stopped the daemon from starting (it waited on the lock). Now the daemon refuses at
/// once, naming the file's owner, and leaves the file alone.
#[test]
fn pidfile_locked_by_another_user_is_refused_without_waiting() {
    let _g = serial();
    let sb = Sandbox::new();
    let public = public_dir("jd-sec-lock-");
    let bin = install_hostile_at(public.path());
    let sticky = public.path().join("sticky");
    std::fs::create_dir(&sticky).unwrap();
    std::fs::set_permissions(&sticky, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let pidfile = sticky.join("jd.pid");
    let stop = public.path().join("stop");
    let log = public.path().join("lock.log");
    let _holder = as_nobody(
        &bin,
        &[
            "holdlock",
            pidfile.to_str().unwrap(),
            "60",
            stop.to_str().unwrap(),
        ],
        &log,
    );
    assert!(
        wait_until(Duration::from_secs(10), || std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("LOCKED")),
        "the lock holder did not start: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let sock = sb.dir.path().join("jd.sock");
    let mut c = Command::new(JAILDAEMON);
    c.args(["-D", "-F", "-p"])
        .arg(&pidfile)
        .arg("-f")
        .arg(&sock)
        .env("JAILDAEMON_REGISTRY", &sb.registry);
    let b = run_bounded(c, Duration::from_secs(10));
    assert_refused_to_start(&b, "a pidfile locked by uid 65534", "owned by uid");
    assert!(
        b.elapsed < Duration::from_secs(5),
        "refusing took {:?}",
        b.elapsed
    );
    assert_eq!(std::fs::read_to_string(&pidfile).unwrap(), "4242\n");
    assert!(jaildaemon::daemon::client::ping(&sock).is_none());
    let _ = std::fs::write(&stop, "stop");
}

// ---------------------------------------------------------------------------------
// 8. Floods

/// Defect 8: a jail firing its probe again and again got a host command each time,
/// with no bound on how many ran at once. With `-R -L 3/60 -m 1` and ten SIGHUPs from
/// inside the jail (each after the probe re-armed): at most 3 commands start (plus one
/// per 20 s of refill), never two at once, and `-l -J` shows the coalesced triggers
/// and the limits.
#[test]
fn sighup_flood_is_rate_limited_serialised_and_coalesced() {
    let _g = serial();
    let d = Guarded::start();
    d.sb.create("flood", &[]);
    let marker = d.file("flood");
    let cmd = format!(
        "echo start >> {m}; sleep 2; echo end >> {m}",
        m = marker.display()
    );
    d.register(&[
        "-c", &cmd, "-j", "flood", "-t", "FLOOD_T", "-R", "-L", "3/60", "-m", "1",
    ]);
    let p = probe_by_title(&d, "FLOOD_T").unwrap();
    assert_eq!(
        (
            p["rate_count"].as_u64(),
            p["rate_secs"].as_u64(),
            p["max_running"].as_u64()
        ),
        (Some(3), Some(60), Some(1)),
        "{p}"
    );

    // Observations: command starts within the bucket, never two commands at once.
    let started = Instant::now();
    let mut max_running_seen = 0u64;
    let mut check = |d: &Daemon| {
        let log = std::fs::read_to_string(&marker).unwrap_or_default();
        let (mut running, mut max, mut starts) = (0i32, 0i32, 0u64);
        for l in log.lines() {
            match l {
                "start" => {
                    running += 1;
                    starts += 1;
                }
                "end" => running -= 1,
                _ => {}
            }
            max = max.max(running);
        }
        assert!(max <= 1, "two commands of the probe ran at once:\n{log}");
        let allowed = 3 + started.elapsed().as_secs() / 20;
        assert!(
            starts <= allowed,
            "{starts} commands started in {:?} with -L 3/60:\n{log}",
            started.elapsed()
        );
        let sleeps = flood_sleeps();
        assert!(sleeps <= 1, "{sleeps} commands of the probe sleep at once");
        if let Some(p) = probe_by_title(d, "FLOOD_T") {
            let r = p["running_commands"].as_u64().unwrap_or(0);
            max_running_seen = max_running_seen.max(r);
            assert!(r <= 1, "-l shows {r} running commands with -m 1: {p}");
        }
        starts
    };
    let mut fired_pid = Value::Null;
    for k in 1..=10 {
        // wait until the probe re-armed (a new process), then a little more, so that
        // the daemon's quick-refire back-off does not delay the respawn
        let mut armed_pid = Value::Null;
        assert!(
            wait_until(Duration::from_secs(15), || {
                check(&d);
                match probe_by_title(&d, "FLOOD_T") {
                    Some(p)
                        if p["state"] == "Armed" && p["pid"].is_i64() && p["pid"] != fired_pid =>
                    {
                        armed_pid = p["pid"].clone();
                        true
                    }
                    _ => false,
                }
            }),
            "the probe did not re-arm before trigger {k}: {:?}",
            probe_by_title(&d, "FLOOD_T")
        );
        let t = Instant::now();
        while t.elapsed() < Duration::from_millis(1050) {
            check(&d);
            std::thread::sleep(Duration::from_millis(100));
        }
        let o = d.trigger("flood", "FLOOD_T");
        assert!(
            o.status.success(),
            "trigger {k}: pkill found no probe: {}",
            text(&o.stderr)
        );
        fired_pid = armed_pid;
    }
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(4) {
        check(&d);
        std::thread::sleep(Duration::from_millis(100));
    }
    let starts = check(&d);
    assert!(starts >= 1, "no command ran at all; log:\n{}", d.log_text());
    let p = probe_by_title(&d, "FLOOD_T").unwrap();
    assert_eq!(p["triggers"], 10, "{p}");
    assert!(
        p["coalesced"].as_u64().unwrap() > 0,
        "no trigger was coalesced: {p}"
    );
    assert_eq!(p["rate_count"], 3, "{p}");
    assert_eq!(p["rate_secs"], 60, "{p}");
    assert_eq!(p["max_running"], 1, "{p}");
    assert!(max_running_seen <= 1);
}

/// Host `sleep 2` processes started as commands of FLOOD_T.
fn flood_sleeps() -> usize {
    let mut n = 0;
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if cmdline(pid).as_deref() != Some("sleep 2") {
            continue;
        }
        let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        if env
            .split(|&b| b == 0)
            .any(|v| v == b"JAILDAEMON_TITLE=FLOOD_T")
            && common::stat_fields(pid).is_some_and(|f| f[0] != "Z")
        {
            n += 1;
        }
    }
    n
}

/// Bad `-L` and `-m` values are refused by the utility (naming the option) and by the
/// daemon (for a client that skips the utility's checks); nothing is registered.
#[test]
fn bad_rate_and_concurrency_values_are_refused() {
    let _g = serial();
    let d = Guarded::start();
    d.sb.create("badval", &[]);
    for (opt, val) in [
        ("-L", "0/0"),
        ("-L", "x"),
        ("-L", "0/60"),
        ("-L", "10/0"),
        ("-L", "10"),
        ("-m", "0"),
        ("-m", "x"),
    ] {
        let o = d.util(&["-c", "true", "-j", "badval", "-t", "BADVAL_T", opt, val]);
        assert!(
            matches!(o.status.code(), Some(64) | Some(1)),
            "{opt} {val}: exit {:?}",
            o.status
        );
        assert!(
            text(&o.stderr).contains(opt),
            "{opt} {val}: the error does not name {opt}: {}",
            text(&o.stderr)
        );
    }
    let mut s = spec("badval", "BADVAL_RAW");
    s.rate = Some(Rate { count: 0, secs: 0 });
    let mut m = spec("badval", "BADVAL_RAW");
    m.max_running = Some(0);
    for (what, s) in [("rate 0/0", s), ("max_running 0", m)] {
        match raw_request(&d.socket, &Request::Register(s)) {
            Response::Error { .. } => {}
            other => panic!("the daemon accepted {what}: {other:?}"),
        }
    }
    assert!(d.probes().is_empty(), "{:?}", d.probes());
    assert!(host_processes_titled("BADVAL_T").is_empty());
    assert!(host_processes_titled("BADVAL_RAW").is_empty());
}

// ---------------------------------------------------------------------------------
// 9. Connection slots

/// Defect 9: idle clients held the daemon's few slots and delayed everyone by ~5 s.
/// With 100 connections open and silent, `-l`, a ping and a registration each answer
/// within 2 s.
#[test]
fn idle_connections_do_not_delay_the_administrator() {
    let _g = serial();
    let d = Guarded::start();
    d.sb.create("idle", &[]);
    d.register(&["-c", "true", "-j", "idle", "-t", "IDLE_T"]);
    let conns: Vec<UnixStream> = (0..100)
        .map(|_| UnixStream::connect(&d.socket).expect("connect"))
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    for k in 0..3 {
        let t = Instant::now();
        let o = d.util(&["-l"]);
        let took = t.elapsed();
        assert!(o.status.success(), "-l: {}", text(&o.stderr));
        assert!(text(&o.stdout).contains("IDLE_T"));
        assert!(
            took < Duration::from_secs(2),
            "-l #{k} took {took:?} with 100 idle clients"
        );
    }
    let t = Instant::now();
    assert!(d.ping());
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "ping took {:?}",
        t.elapsed()
    );
    let t = Instant::now();
    d.register(&["-c", "true", "-j", "idle", "-t", "IDLE_T2"]);
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "registration took {:?}",
        t.elapsed()
    );
    // the idle clients were still connected all along
    for c in &conns {
        c.set_nonblocking(true).unwrap();
        let mut b = [0u8; 1];
        match (&*c).read(&mut b) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            other => panic!("an idle connection was answered or closed early: {other:?}"),
        }
    }
}

// ---------------------------------------------------------------------------------
// 10. Titles

/// Defect 10: a title with a bidirectional override (U+202E) was accepted, so `ps`
/// showed something else than what `pkill -f` matches. Titles with control or bidi
/// characters are refused by the utility and by the daemon; nothing is spawned.
#[test]
fn titles_with_control_or_bidi_characters_are_refused() {
    let _g = serial();
    let d = Guarded::start();
    d.sb.create("titles", &[]);
    let marker = d.file("titles");
    let cmd = format!("echo fired >> {}", marker.display());
    let bad = [
        "evil\u{202e}txt.exe",
        "evil\u{2066}txt",
        "evil\u{200f}txt",
        "evil\x1b[2Jtxt",
        "evil\ntxt",
        "evil\rtxt",
        "evil\ttxt",
        "evil\x7ftxt",
    ];
    for t in bad {
        let o = d.util(&["-c", &cmd, "-j", "titles", "-t", t]);
        assert!(!o.status.success(), "title {t:?} was accepted");
        assert!(
            text(&o.stderr).contains("title"),
            "title {t:?}: the error does not mention the title: {}",
            text(&o.stderr)
        );
        match raw_request(&d.socket, &Request::Register(spec("titles", t))) {
            Response::Error { message } => {
                assert!(message.contains("title"), "title {t:?}: {message}")
            }
            other => panic!("the daemon accepted the title {t:?}: {other:?}"),
        }
    }
    assert!(d.probes().is_empty(), "{:?}", d.probes());
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() {
            if let Some(c) = cmdline(pid) {
                assert!(
                    !c.starts_with("evil"),
                    "process {pid} runs with title {c:?}"
                );
            }
        }
    }
    // printable titles, Unicode included, are fine
    d.register(&["-c", &cmd, "-j", "titles", "-t", "GOOD_TITLE_é_✓"]);
    assert_eq!(d.pgrep("titles", "GOOD_TITLE_").len(), 1);
}
