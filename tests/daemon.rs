//! jaildaemon end to end: a real daemon on a real socket, real jails, probes signalled
//! from inside the jail with pkill, host commands seen to run. Needs root.

mod common;

use common::{Daemon, Sandbox, JAILDAEMON};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::time::{Duration, Instant};

fn setup() -> Daemon {
    let d = Daemon::start();
    d.sb.create("www", &[]);
    d
}

fn out_cmd(d: &Daemon, name: &str, line: &str) -> String {
    format!("echo {line} >> {}", d.file(name).display())
}

fn lines(d: &Daemon, name: &str) -> usize {
    d.read(name).lines().count()
}

/// Host pid of the probe with this title, from the daemon's list.
fn probe_pid(d: &Daemon, title: &str) -> i32 {
    let ps = d.probes();
    let p = ps
        .iter()
        .find(|p| p["title"] == title)
        .unwrap_or_else(|| panic!("no probe {title} in {ps:?}"));
    p["pid"].as_i64().expect("armed probe has a pid") as i32
}

#[test]
fn utility_without_daemon_fails() {
    let sb = Sandbox::new();
    let sock = sb.dir.path().join("nobody-here.sock");
    let o = Command::new(JAILDAEMON)
        .args(["-c", "true", "-j", "1", "-f"])
        .arg(&sock)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("no jaildaemon is running") && e.contains("nobody-here.sock"),
        "{e}"
    );
}

#[test]
fn usage_errors_exit_non_zero_with_usage() {
    for args in [
        vec![],
        vec!["-D", "-c", "x", "-j", "1"],
        vec!["-c", "x"],
        vec!["-c", "x", "-j", "1", "-u", "www"],
        vec!["-Z"],
        vec!["-c"],
    ] {
        let o = Command::new(JAILDAEMON).args(&args).output().unwrap();
        assert_eq!(o.status.code(), Some(64), "{args:?}");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("usage: jaildaemon -D"),
            "{args:?}"
        );
    }
}

#[test]
fn probe_is_visible_in_the_jail_and_fires_once() {
    let d = setup();
    let t0 = Instant::now();
    d.register(&[
        "-c",
        &out_cmd(&d, "once", "fired"),
        "-j",
        "www",
        "-t",
        "ONCE_PROBE",
    ]);
    // the utility returns only when the probe runs: it is visible at once
    assert_eq!(d.pgrep("www", "ONCE_PROBE").len(), 1);
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "registration took {:?}",
        t0.elapsed()
    );
    let ps = d.sb.ok(&["jail", "exec", "www", "ps", "-o", "user,args"]);
    assert!(
        ps.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["root", "ONCE_PROBE"]),
        "{ps}"
    );
    assert!(d.trigger("www", "ONCE_PROBE").status.success());
    assert!(
        d.sb.wait_for(5, || lines(&d, "once") == 1),
        "the command did not run; log:\n{}",
        d.log_text()
    );
    // single shot: the probe is gone, a second HUP finds nothing, the command ran once
    assert!(d.sb.wait_for(5, || d.probes().is_empty()));
    assert!(d.pgrep("www", "ONCE_PROBE").is_empty());
    assert_eq!(
        d.trigger("www", "ONCE_PROBE").status.code(),
        Some(1),
        "pkill found a probe after a single shot"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(lines(&d, "once"), 1);
    let log = d.log_text();
    assert!(
        log.contains("probe registered")
            && log.contains("probe triggered")
            && log.contains("command finished"),
        "{log}"
    );
    assert!(
        log.contains("pidfd=true"),
        "the probe is not held by a pidfd: {log}"
    );
}

#[test]
fn bad_jail_is_refused_and_nothing_spawned() {
    let d = setup();
    let o = d.util(&["-c", "true", "-j", "www01", "-t", "NEVER_SPAWNED"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("jail www01 does not exist"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(d.probes().is_empty());
    let host = Command::new("pgrep")
        .args(["-f", "NEVER_SPAWNED"])
        .output()
        .unwrap();
    assert!(host.stdout.is_empty(), "a process was spawned");
}

#[test]
fn jail_by_name_and_by_jid() {
    let d = setup();
    let jid = d.sb.ok(&["jail", "get", "www", "jid"]).trim().to_string();
    d.register(&["-c", "true", "-j", &jid, "-t", "BY_JID"]);
    d.register(&["-c", "true", "-j", "www", "-t", "BY_NAME"]);
    let ps = d.probes();
    assert_eq!(ps.len(), 2);
    for p in &ps {
        assert_eq!(p["jail"], "www");
        assert_eq!(p["jid"].to_string(), jid);
    }
    assert_eq!(d.pgrep("www", "BY_").len(), 2);
}

#[test]
fn probe_is_confined_and_holds_nothing_from_the_host() {
    let d = setup();
    let other = d.sb.another_root("other");
    d.sb.create_named_in("other", &other, &[]);
    let marker = "SECRET_COMMAND_MARKER_4711";
    d.register(&[
        "-c",
        &format!("echo {marker} > /dev/null"),
        "-j",
        "www",
        "-t",
        "CONFINED",
    ]);
    let pid = probe_pid(&d, "CONFINED");
    // its namespaces and root are the jail's
    let init = d.sb.ok(&["jail", "list", "-j", "www", "--json"]);
    assert!(init.contains("www"));
    let entry: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.sb.registry.join("1.json")).unwrap()).unwrap();
    let init_pid = entry["init_pid"].as_i64().unwrap();
    for ns in ["mnt", "pid", "uts", "ipc", "net"] {
        assert_eq!(
            std::fs::read_link(format!("/proc/{pid}/ns/{ns}")).unwrap(),
            std::fs::read_link(format!("/proc/{init_pid}/ns/{ns}")).unwrap(),
            "{ns}"
        );
    }
    let root_listing: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/root"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        root_listing.contains(&"bin".to_string()) && !root_listing.contains(&"usr".to_string()),
        "{root_listing:?}"
    );
    // invisible from another jail
    assert!(d.pgrep("other", "CONFINED").is_empty());
    // no host descriptors: only 0-2, on the jail's /dev/null
    let fds: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let mut sorted = fds.clone();
    sorted.sort();
    assert_eq!(sorted, vec!["0", "1", "2"], "probe descriptors");
    for fd in fds {
        assert_eq!(
            std::fs::read_link(format!("/proc/{pid}/fd/{fd}"))
                .unwrap()
                .to_string_lossy(),
            "/dev/null"
        );
    }
    // own session, no controlling terminal
    let f = common::stat_fields(pid).unwrap();
    assert_eq!(f[3], pid.to_string(), "the probe is not a session leader");
    assert_eq!(f[4], "0", "the probe has a controlling terminal");
    // the command is nowhere: argv, environment, memory
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&cmdline).trim_end_matches('\0'),
        "CONFINED"
    );
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    assert!(!String::from_utf8_lossy(&environ).contains(marker));
    assert!(
        !memory_contains(pid, marker.as_bytes()),
        "the command is in the probe's memory"
    );
}

/// Scan every readable mapping of a process for `needle`.
fn memory_contains(pid: i32, needle: &[u8]) -> bool {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let mut mem = std::fs::File::open(format!("/proc/{pid}/mem")).unwrap();
    use std::io::Seek;
    for l in maps.lines() {
        let mut parts = l.split_whitespace();
        let range = parts.next().unwrap();
        let perms = parts.next().unwrap();
        if !perms.starts_with('r') || l.contains("[vvar]") || l.contains("[vsyscall]") {
            continue;
        }
        let (a, b) = range.split_once('-').unwrap();
        let (a, b) = (
            u64::from_str_radix(a, 16).unwrap(),
            u64::from_str_radix(b, 16).unwrap(),
        );
        let mut buf = vec![0u8; (b - a) as usize];
        if mem.seek(std::io::SeekFrom::Start(a)).is_err() || mem.read_exact(&mut buf).is_err() {
            continue;
        }
        if buf.windows(needle.len()).any(|w| w == needle) {
            return true;
        }
    }
    false
}

#[test]
fn uid_gid_drop_decides_who_may_trigger() {
    let d = setup();
    d.register(&[
        "-c",
        &out_cmd(&d, "user", "fired"),
        "-j",
        "www",
        "-u",
        "1001",
        "-g",
        "1001",
        "-t",
        "USER_PROBE",
        "-r",
    ]);
    d.register(&[
        "-c",
        &out_cmd(&d, "root", "fired"),
        "-j",
        "www",
        "-t",
        "ROOT_PROBE",
    ]);
    let pid = probe_pid(&d, "USER_PROBE");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |k: &str| {
        status
            .lines()
            .find(|l| l.starts_with(k))
            .unwrap()
            .split_whitespace()
            .skip(1)
            .collect::<Vec<_>>()
    };
    assert_eq!(field("Uid:"), vec!["1001"; 4]);
    assert_eq!(field("Gid:"), vec!["1001"; 4]);
    assert!(
        field("Groups:").is_empty(),
        "supplementary groups kept: {:?}",
        field("Groups:")
    );
    // another user of the jail may not signal it; its own uid may
    let o = d.sb.run(&[
        "jail",
        "exec",
        "-u",
        "other",
        "www",
        "pkill",
        "-HUP",
        "-f",
        "USER_PROBE",
    ]);
    assert!(!o.status.success());
    let o = d.sb.run(&[
        "jail",
        "exec",
        "-u",
        "user",
        "www",
        "pkill",
        "-HUP",
        "-f",
        "ROOT_PROBE",
    ]);
    assert!(!o.status.success(), "a user signalled a root probe");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(lines(&d, "user") + lines(&d, "root"), 0);
    assert!(d
        .sb
        .run(&[
            "jail",
            "exec",
            "-u",
            "user",
            "www",
            "pkill",
            "-HUP",
            "-f",
            "USER_PROBE"
        ])
        .status
        .success());
    assert!(d.sb.wait_for(5, || lines(&d, "user") == 1));
    assert_eq!(lines(&d, "root"), 0);
}

#[test]
fn command_runs_on_the_host_with_shell_syntax_and_environment() {
    let d = setup();
    let out = d.file("ctx");
    let cmd = format!(
        "cd /tmp && {{ pwd; echo \"$JAILDAEMON_JAIL:$JAILDAEMON_JID:$JAILDAEMON_TITLE:$JAILDAEMON_PROBE_ID\"; hostname; test -e /etc/jail-marker && echo jail-fs || echo host-fs; id -u; cat /proc/self/fdinfo/0 >/dev/null && readlink /proc/self/fd/0; }} > {} 2>&1",
        out.display()
    );
    d.register(&["-c", &cmd, "-j", "www", "-t", "CTX_PROBE"]);
    assert!(d.trigger("www", "CTX_PROBE").status.success());
    assert!(
        d.sb.wait_for(5, || d.read("ctx").lines().count() >= 6),
        "{}",
        d.read("ctx")
    );
    let text = d.read("ctx");
    let l: Vec<&str> = text.lines().collect();
    assert_eq!(l[0], "/tmp");
    assert_eq!(l[1], "www:1:CTX_PROBE:1");
    assert_eq!(l[2], nix::unistd::gethostname().unwrap().to_string_lossy());
    assert_eq!(l[3], "host-fs");
    assert_eq!(l[4], "0");
    assert_eq!(l[5], "/dev/null");
    // output is captured into the log
    let d2 = &d;
    d2.register(&[
        "-c",
        "echo HELLO_FROM_COMMAND; echo OOPS_ON_STDERR >&2",
        "-j",
        "www",
        "-t",
        "LOG_PROBE",
    ]);
    d2.trigger("www", "LOG_PROBE");
    assert!(
        d2.sb
            .wait_for(5, || d2.log_text().contains("HELLO_FROM_COMMAND")
                && d2.log_text().contains("OOPS_ON_STDERR")),
        "{}",
        d2.log_text()
    );
}

#[test]
fn term_kill_int_trigger_nothing_and_never_respawn() {
    let d = setup();
    for (sig, title) in [
        ("TERM", "SIG_TERM_P"),
        ("KILL", "SIG_KILL_P"),
        ("INT", "SIG_INT_P"),
    ] {
        d.register(&[
            "-c",
            &out_cmd(&d, "sig", sig),
            "-j",
            "www",
            "-t",
            title,
            "-r",
        ]);
        assert!(d
            .sb
            .run(&[
                "jail",
                "exec",
                "www",
                "pkill",
                &format!("-{sig}"),
                "-f",
                title
            ])
            .status
            .success());
        assert!(
            d.sb.wait_for(5, || !d.probes().iter().any(|p| p["title"] == title)),
            "{sig}: probe still registered"
        );
    }
    std::thread::sleep(Duration::from_millis(500));
    assert!(d.pgrep("www", "SIG_").is_empty(), "a probe respawned");
    assert_eq!(d.read("sig"), "", "a command ran");
    assert!(d.log_text().contains("probe lost"), "{}", d.log_text());
}

#[test]
fn respawn_after_command_waits_for_it() {
    let d = setup();
    let cmd = format!("sleep 1.5; echo done >> {}", d.file("r").display());
    d.register(&["-c", &cmd, "-j", "www", "-t", "R_WAIT", "-r"]);
    d.trigger("www", "R_WAIT");
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        d.pgrep("www", "R_WAIT").is_empty(),
        "a probe exists while the -r command runs"
    );
    assert_eq!(d.probes()[0]["state"], "Running");
    assert!(
        d.sb.wait_for(5, || d.pgrep("www", "R_WAIT").len() == 1),
        "no respawn after the command"
    );
    assert_eq!(lines(&d, "r"), 1);
    // and it fires again
    std::thread::sleep(Duration::from_millis(1100));
    d.trigger("www", "R_WAIT");
    assert!(d.sb.wait_for(6, || lines(&d, "r") == 2));
    assert_eq!(d.probes()[0]["triggers"], 2);
    // a failing command still respawns
    d.register(&["-c", "exit 3", "-j", "www", "-t", "R_FAIL", "-r"]);
    std::thread::sleep(Duration::from_millis(1100));
    d.trigger("www", "R_FAIL");
    assert!(d.sb.wait_for(5, || d.log_text().contains("command failed")));
    assert!(
        d.sb.wait_for(5, || d.pgrep("www", "R_FAIL").len() == 1),
        "no respawn after a failed command"
    );
}

#[test]
fn respawn_immediately_lets_commands_overlap() {
    let d = setup();
    let f = d.file("overlap");
    let cmd = format!("echo start >> {0}; sleep 2; echo end >> {0}", f.display());
    d.register(&["-c", &cmd, "-j", "www", "-t", "R_NOW", "-R"]);
    d.trigger("www", "R_NOW");
    assert!(
        d.sb.wait_for(2, || d.pgrep("www", "R_NOW").len() == 1),
        "no immediate respawn"
    );
    std::thread::sleep(Duration::from_millis(1100));
    d.trigger("www", "R_NOW");
    assert!(d
        .sb
        .wait_for(2, || d.read("overlap").matches("start").count() == 2));
    assert_eq!(
        d.read("overlap").matches("end").count(),
        0,
        "commands did not overlap: {}",
        d.read("overlap")
    );
    assert!(d
        .sb
        .wait_for(5, || d.read("overlap").matches("end").count() == 2));
}

#[test]
fn removing_the_jail_loses_the_probe_without_running_anything() {
    let d = setup();
    d.register(&[
        "-c",
        &out_cmd(&d, "gone", "ran"),
        "-j",
        "www",
        "-t",
        "GONE_P",
        "-r",
    ]);
    d.sb.ok(&["jail", "remove", "www"]);
    assert!(
        d.sb.wait_for(5, || d.probes().is_empty()),
        "{:?}",
        d.probes()
    );
    assert_eq!(d.read("gone"), "");
    assert!(d.log_text().contains("probe lost"));
}

#[test]
fn restarting_the_jail_by_name_re_arms_the_probe() {
    let d = setup();
    let path = d.sb.root.display().to_string();
    // The ezjail-restart case: the command removes the jail and creates it again.
    let cmd = format!(
        "{ctl} jail remove www && {ctl} jail create name=www path={path} persist host.hostname=reborn >/dev/null && echo restarted >> {out}",
        ctl = common::JAILCTL,
        out = d.file("restart").display()
    );
    d.register(&["-c", &cmd, "-j", "www", "-t", "RESTART_P", "-r"]);
    let first_init = std::fs::read_to_string(d.sb.registry.join("1.json")).unwrap();
    d.trigger("www", "RESTART_P");
    assert!(
        d.sb.wait_for(10, || lines(&d, "restart") == 1),
        "log:\n{}",
        d.log_text()
    );
    assert!(
        d.sb.wait_for(10, || d.pgrep("www", "RESTART_P").len() == 1),
        "not re-armed; log:\n{}",
        d.log_text()
    );
    assert_eq!(
        d.sb.ok(&["jail", "exec", "www", "hostname"]).trim(),
        "reborn"
    );
    let jid = d.sb.ok(&["jail", "get", "www", "jid"]).trim().to_string();
    assert_ne!(
        std::fs::read_to_string(d.sb.registry.join(format!("{jid}.json"))).unwrap(),
        first_init,
        "it is a new jail"
    );
    assert_eq!(d.probes()[0]["jid"].to_string(), jid);
    // and it fires in the new jail
    std::thread::sleep(Duration::from_millis(1100));
    d.trigger("www", "RESTART_P");
    assert!(d.sb.wait_for(10, || lines(&d, "restart") == 2));
}

#[test]
fn a_second_probe_with_one_title_is_refused_and_the_first_runs_once() {
    // issue 17: titles are unique in a jail, so `pkill -f TITLE` fires one probe
    let d = setup();
    d.register(&["-c", &out_cmd(&d, "twin", "a"), "-j", "www", "-t", "TWIN"]);
    let o = d.util(&["-c", &out_cmd(&d, "twin", "b"), "-j", "www", "-t", "TWIN"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("already has a probe titled TWIN"));
    assert_eq!(d.pgrep("www", "TWIN").len(), 1);
    d.trigger("www", "TWIN");
    assert!(d.sb.wait_for(5, || lines(&d, "twin") == 1));
    std::thread::sleep(Duration::from_millis(300));
    let l: Vec<String> = d.read("twin").lines().map(String::from).collect();
    assert_eq!(l, vec!["a"]);
}

#[test]
fn sighup_to_the_daemon_triggers_nothing() {
    let d = setup();
    d.register(&["-c", &out_cmd(&d, "hup", "ran"), "-j", "www", "-t", "HUP_D"]);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(d.pid()),
        nix::sys::signal::SIGHUP,
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert!(d.ping(), "the daemon died of SIGHUP");
    assert_eq!(d.read("hup"), "");
    assert_eq!(d.pgrep("www", "HUP_D").len(), 1);
    // issue 17: SIGHUP reloads the configuration, and still runs no command
    assert!(d.log_text().contains("SIGHUP: reloading the configuration"));
    // a terminal hangup inside the jail: a shell on a pty whose master goes away
    let mut term = Command::new("script")
        .args([
            "-qec",
            &format!("{} jail exec www sh -c 'sleep 30'", common::JAILCTL),
            "/dev/null",
        ])
        .env("JAILDAEMON_REGISTRY", &d.sb.registry)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    assert!(
        d.sb.wait_for(5, || !d.pgrep("www", "sleep 30").is_empty()),
        "no terminal session in the jail"
    );
    term.kill().unwrap();
    term.wait().unwrap();
    assert!(
        d.sb.wait_for(5, || d.pgrep("www", "sleep 30").is_empty()),
        "the terminal was not hung up"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(d.read("hup"), "", "a terminal hangup triggered the probe");
    assert_eq!(d.pgrep("www", "HUP_D").len(), 1);
}

#[test]
fn second_daemon_refused_and_stale_socket_recovered() {
    let mut d = Daemon::start();
    // same socket: refused, the live socket untouched
    let o = d.daemon_cmd(&["-D", "-F"]).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("another jaildaemon"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(d.ping());
    // other socket, same pidfile: refused by the pidfile lock
    let o = Command::new(JAILDAEMON)
        .args(["-D", "-F", "-p"])
        .arg(&d.pidfile)
        .arg("-f")
        .arg(d.file("other.sock"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("locked"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!d.file("other.sock").exists());
    // a killed daemon leaves its socket; the next one replaces it
    let mut c = d.child.take().unwrap();
    c.kill().unwrap();
    c.wait().unwrap();
    assert!(d.socket.exists());
    assert!(!d.ping());
    d.spawn();
    assert!(d.ping());
    // a path that is not a socket is never replaced
    let not_sock = d.file("plain-file");
    std::fs::write(&not_sock, "keep me").unwrap();
    let o = Command::new(JAILDAEMON)
        .args(["-D", "-F", "-p"])
        .arg(d.file("p2.pid"))
        .arg("-f")
        .arg(&not_sock)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(std::fs::read_to_string(&not_sock).unwrap(), "keep me");
}

#[test]
fn non_root_is_refused() {
    let d = setup();
    use std::os::unix::process::CommandExt;
    // the socket is 0600: a user cannot even connect
    let mode = std::fs::metadata(&d.socket).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(mode.permissions().mode() & 0o777, 0o600);
    let o = Command::new(JAILDAEMON)
        .args(["-c", "true", "-j", "www", "-f"])
        .arg(&d.socket)
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("permission denied"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // even through an opened-up socket, the peer credential check refuses
    std::fs::set_permissions(d.sb.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&d.socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let o = Command::new(JAILDAEMON)
        .args(["-c", "true", "-j", "www", "-t", "NOT_ROOT", "-f"])
        .arg(&d.socket)
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("only root") && e.contains("65534"), "{e}");
    assert!(d.probes().is_empty());
}

fn raw(d: &Daemon, bytes: &[u8]) -> Vec<u8> {
    let mut s = UnixStream::connect(&d.socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.write_all(bytes);
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

#[test]
fn garbage_oversized_and_truncated_frames_are_survived() {
    let d = setup();
    let err_of = |resp: &[u8]| -> String {
        assert!(resp.len() > 4, "no answer");
        let v: serde_json::Value = serde_json::from_slice(&resp[4..]).unwrap();
        v["body"]["Error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let mut garbage = 17u32.to_be_bytes().to_vec();
    garbage.extend_from_slice(b"this is not json!");
    assert!(err_of(&raw(&d, &garbage)).contains("malformed"));
    assert!(err_of(&raw(&d, &u32::MAX.to_be_bytes())).contains("larger"));
    let wrong_version = br#"{"version":999,"body":"Ping"}"#;
    let mut f = (wrong_version.len() as u32).to_be_bytes().to_vec();
    f.extend_from_slice(wrong_version);
    assert!(err_of(&raw(&d, &f)).contains("version 999"));
    let unknown = br#"{"version":2,"body":{"Spawn":{"cmd":"reboot"}}}"#;
    let mut f = (unknown.len() as u32).to_be_bytes().to_vec();
    f.extend_from_slice(unknown);
    assert!(err_of(&raw(&d, &f)).contains("malformed"));
    // truncated frames and silent clients get nothing and harm nothing
    assert!(raw(&d, &[0, 0]).is_empty());
    assert!(raw(&d, &[0, 0, 1, 0, b'{', b'"']).is_empty());
    assert!(raw(&d, &[]).is_empty());
    let mut junk = 0u64;
    for i in 0..200u32 {
        junk = junk
            .wrapping_mul(6364136223846793005)
            .wrapping_add(i as u64 + 1442695040888963407);
        let _ = raw(&d, &junk.to_le_bytes());
    }
    assert!(d.ping(), "the daemon died");
    assert!(d.probes().is_empty(), "garbage spawned a probe");
    d.register(&["-c", "true", "-j", "www", "-t", "AFTER_GARBAGE"]);
    assert_eq!(d.pgrep("www", "AFTER_GARBAGE").len(), 1);
}

#[test]
fn sigterm_terminates_probes_and_cleans_up() {
    let mut d = setup();
    d.register(&["-c", "true", "-j", "www", "-t", "TERM_ALL_1", "-r"]);
    d.register(&["-c", "true", "-j", "www", "-t", "TERM_ALL_2"]);
    assert_eq!(d.pgrep("www", "TERM_ALL").len(), 2);
    let st = d.stop();
    assert_eq!(st.code(), Some(0));
    assert!(!d.socket.exists(), "socket left behind");
    assert!(!d.pidfile.exists(), "pidfile left behind");
    assert!(
        d.pgrep("www", "TERM_ALL").is_empty(),
        "probes survived the daemon"
    );
}

#[test]
fn detached_daemon_writes_pidfile_and_returns_once_ready() {
    let sb = Sandbox::new();
    let sock = sb.dir.path().join("bg.sock");
    let pidf = sb.dir.path().join("bg.pid");
    let o = Command::new(JAILDAEMON)
        .args(["-D", "-p"])
        .arg(&pidf)
        .arg("-f")
        .arg(&sock)
        .arg("-s")
        .arg(sb.dir.path().join("state/probes.json"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // ready when -D returns
    let pid = jaildaemon::daemon::client::ping(&sock).expect("the detached daemon answers at once");
    assert_eq!(
        std::fs::read_to_string(&pidf).unwrap().trim(),
        pid.to_string()
    );
    let f = common::stat_fields(pid as i32).unwrap();
    assert_eq!(f[3], pid.to_string(), "not a session leader");
    assert_eq!(f[4], "0", "the daemon has a terminal");
    assert_eq!(
        std::fs::read_link(format!("/proc/{pid}/cwd"))
            .unwrap()
            .to_string_lossy(),
        "/"
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::SIGTERM,
    )
    .unwrap();
    assert!(sb.wait_for(5, || !sock.exists() && !pidf.exists()));
}

#[test]
fn fifty_trigger_cycles_leave_no_zombies_or_descriptor_growth() {
    let d = setup();
    let f = d.file("cycles");
    d.register(&[
        "-c",
        &format!("echo x >> {}", f.display()),
        "-j",
        "www",
        "-t",
        "CYCLE_P",
        "-r",
        // a leak test, not a rate-limit test: let every trigger run its command
        "-L",
        "1000/1",
    ]);
    let fds = |pid: i32| {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .count()
    };
    let rss = |pid: i32| {
        let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        s.lines()
            .find(|l| l.starts_with("VmRSS:"))
            .unwrap()
            .split_whitespace()
            .nth(1)
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    // warm up
    for i in 1..=5 {
        d.trigger("www", "CYCLE_P");
        assert!(d.sb.wait_for(5, || lines(&d, "cycles") == i
            && d.pgrep("www", "CYCLE_P").len() == 1));
    }
    let (fd0, rss0) = (fds(d.pid()), rss(d.pid()));
    for i in 6..=55 {
        // probes that fire faster than once a second are respawned with a back-off
        std::thread::sleep(Duration::from_millis(1000));
        d.trigger("www", "CYCLE_P");
        assert!(
            d.sb.wait_for(10, || lines(&d, "cycles") == i
                && d.pgrep("www", "CYCLE_P").len() == 1),
            "cycle {i}"
        );
    }
    let (fd1, rss1) = (fds(d.pid()), rss(d.pid()));
    assert!(fd1 <= fd0 + 2, "descriptors grew from {fd0} to {fd1}");
    assert!(rss1 < rss0 + 4096, "RSS grew from {rss0} kB to {rss1} kB");
    let zombies: Vec<Vec<String>> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(common::stat_fields)
        .filter(|f| f[0] == "Z" && f[1] == d.pid().to_string())
        .collect();
    assert!(zombies.is_empty(), "zombies of the daemon: {zombies:?}");
    assert_eq!(d.probes()[0]["triggers"], 55);
}

#[test]
fn long_commands_and_titles_are_intact_or_rejected() {
    let d = setup();
    let payload: String = (0..3000)
        .map(|i| format!("{:x}", i % 16))
        .collect::<String>()
        .repeat(9); // 27000 chars
    let cmd = format!("printf %s {payload} > {}", d.file("long").display());
    d.register(&["-c", &cmd, "-j", "www", "-t", "LONG_CMD"]);
    d.trigger("www", "LONG_CMD");
    assert!(d.sb.wait_for(5, || d.read("long").len() == payload.len()));
    assert_eq!(d.read("long"), payload);
    // too long: rejected before anything is sent
    let o = d.util(&["-c", &"x".repeat(40_000), "-j", "www"]);
    assert_eq!(o.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&o.stderr).contains("at most 32768"));
    // a long title is shown whole
    let title = format!("LONG_TITLE_{}", "t".repeat(1000));
    d.register(&["-c", "true", "-j", "www", "-t", &title]);
    let pid = probe_pid(&d, &title);
    assert_eq!(
        String::from_utf8(std::fs::read(format!("/proc/{pid}/cmdline")).unwrap())
            .unwrap()
            .trim_end_matches('\0'),
        title
    );
    assert_eq!(d.pgrep("www", &title).len(), 1);
    let o = d.util(&["-c", "true", "-j", "www", "-t", &"t".repeat(1100)]);
    assert_eq!(o.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&o.stderr).contains("title"));
}

#[test]
fn list_and_remove_probes() {
    let d = setup();
    d.register(&[
        "-c", "echo a", "-j", "www", "-t", "LIST_A", "-r", "-u", "80",
    ]);
    d.register(&["-c", "echo b", "-j", "www", "-t", "LIST_B", "-R"]);
    let table = String::from_utf8(d.util(&["-l"]).stdout).unwrap();
    assert!(table.starts_with("  ID JAIL"), "{table}");
    assert!(
        table.contains("LIST_A")
            && table.contains("-r")
            && table.contains("armed")
            && table.contains("echo a"),
        "{table}"
    );
    let ps = d.probes();
    assert_eq!(ps.len(), 2);
    let a = ps.iter().find(|p| p["title"] == "LIST_A").unwrap();
    assert_eq!(a["uid"], 80);
    assert_eq!(a["respawn"], "AfterCommand");
    assert_eq!(a["triggers"], 0);
    let id = a["id"].to_string();
    let o = d.util(&["-k", &id]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        d.pgrep("www", "LIST_A").is_empty(),
        "removed probe still runs"
    );
    assert_eq!(d.probes().len(), 1);
    let o = d.util(&["-k", "999"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no probe with id 999"));
}

#[test]
fn commands_leaving_background_children_pin_no_thread_of_the_daemon() {
    // A command whose background child keeps the output pipe open must not keep a
    // daemon thread (or descriptor) busy: 40 of them, then a registration still
    // works at once and the daemon's thread count stays small.
    let d = setup();
    let f = d.file("bg");
    for i in 0..40 {
        d.register(&[
            "-c",
            &format!("sleep 300 & echo {i} >> {}", f.display()),
            "-j",
            "www",
            "-t",
            &format!("BG_CHILD_{i}"),
        ]);
    }
    for i in 0..40 {
        d.trigger("www", &format!("BG_CHILD_{i}$"));
    }
    assert!(
        d.sb.wait_for(20, || lines(&d, "bg") == 40),
        "not every command ran"
    );
    std::thread::sleep(Duration::from_millis(1500));
    let threads: usize = std::fs::read_to_string(format!("/proc/{}/status", d.pid()))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap();
    assert!(
        threads < 20,
        "the daemon holds {threads} threads for finished commands"
    );
    let t = std::time::Instant::now();
    d.register(&["-c", "true", "-j", "www", "-t", "AFTER_BG"]);
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "registration took {:?}",
        t.elapsed()
    );
    let _ = std::process::Command::new("pkill")
        .args(["-f", "^sleep 300$"])
        .status();
}
