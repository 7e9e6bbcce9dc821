//! Durable probes (issue 17): a real daemon, real jails. Registrations survive a
//! `kill -9` of the daemon (old probes killed by pid and start time, new ones armed
//! under the same ids, counts kept); declared probes wait for their jail and follow
//! it; SIGHUP reloads the configuration; `-n` names every bad line; titles are unique
//! in a jail; the rc.d script's and the systemd unit's `reload`. Needs root.

mod common;

use common::{stat_fields, Daemon, Sandbox, JAILDAEMON};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// A daemon in a fresh sandbox, not started yet.
fn daemon() -> Daemon {
    let sb = Sandbox::new();
    let socket = sb.dir.path().join("jd.sock");
    let pidfile = sb.dir.path().join("jd.pid");
    let log = sb.dir.path().join("jd.log");
    Daemon {
        sb,
        socket,
        pidfile,
        log,
        child: None,
    }
}

/// Start `d` with extra daemon arguments (`-C FILE`, ...); the log is appended to.
fn start(d: &mut Daemon, extra: &[&str]) {
    let mut args = vec!["-D", "-F"];
    args.extend_from_slice(extra);
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&d.log)
        .unwrap();
    d.child = Some(d.daemon_cmd(&args).stderr(log).spawn().unwrap());
    assert!(
        d.sb.wait_for(10, || d.ping()),
        "the daemon did not come up; log:\n{}",
        d.log_text()
    );
}

fn state_path(d: &Daemon) -> PathBuf {
    d.sb.dir.path().join("state/probes.json")
}

fn state(d: &Daemon) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(state_path(d)).unwrap_or_default())
        .unwrap_or(serde_json::Value::Null)
}

fn probe<'a>(ps: &'a [serde_json::Value], title: &str) -> Option<&'a serde_json::Value> {
    ps.iter().find(|p| p["title"] == title)
}

fn start_time(pid: i64) -> Option<String> {
    stat_fields(pid as i32).map(|f| f[19].clone())
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

#[test]
fn twenty_probes_survive_kill_9_of_the_daemon() {
    let mut d = daemon();
    start(&mut d, &[]);
    d.sb.create("www", &[]);
    let out = d.file("fired");
    let cmd = format!("echo $JAILDAEMON_TITLE >> {}", out.display());
    let titles: Vec<String> = (0..20).map(|i| format!("DUR{i}Z")).collect();
    for t in &titles {
        d.register(&["-c", &cmd, "-j", "www", "-r", "-t", t]);
    }
    // one trigger before the restart: its count must carry over
    assert!(d.trigger("www", "DUR0Z").status.success());
    assert!(d.sb.wait_for(10, || lines(&out).len() == 1
        && probe(&d.probes(), "DUR0Z").is_some_and(|p| p["state"] == "Armed")));
    let before = d.probes();
    assert_eq!(before.len(), 20);
    let old: Vec<(i64, String)> = before
        .iter()
        .map(|p| {
            let pid = p["pid"].as_i64().expect("armed");
            (pid, start_time(pid).expect("alive"))
        })
        .collect();
    // the state file holds every registration and live identity
    assert!(
        d.sb.wait_for(5, || {
            let s = state(&d);
            s["probes"].as_array().is_some_and(|a| {
                a.len() == 20
                    && a.iter().all(|p| p["process"]["pid"].is_i64())
                    && a.iter().any(|p| p["triggers"] == 1)
            })
        }),
        "{}",
        state(&d)
    );
    let mode = std::fs::metadata(state_path(&d)).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(mode.permissions().mode() & 0o777, 0o600);
    // kill -9: the probes stay behind, orphaned
    let mut c = d.child.take().unwrap();
    c.kill().unwrap();
    c.wait().unwrap();
    assert!(old
        .iter()
        .all(|(pid, st)| start_time(*pid).as_ref() == Some(st)));
    start(&mut d, &[]);
    let after = d.probes();
    assert_eq!(after.len(), 20, "{after:?}");
    // same ids, all armed, new processes; the old ones are gone (by pid and start time)
    let ids = |ps: &[serde_json::Value]| {
        let mut v: Vec<u64> = ps.iter().map(|p| p["id"].as_u64().unwrap()).collect();
        v.sort();
        v
    };
    assert_eq!(ids(&before), ids(&after));
    assert!(after.iter().all(|p| p["state"] == "Armed"), "{after:?}");
    assert!(
        d.sb.wait_for(5, || old
            .iter()
            .all(|(pid, st)| start_time(*pid).as_ref() != Some(st))),
        "a probe of the killed daemon is still alive"
    );
    for t in &titles {
        assert_eq!(d.pgrep("www", t).len(), 1, "{t}: not exactly one process");
    }
    assert_eq!(probe(&after, "DUR0Z").unwrap()["triggers"], 1);
    // HUP on each runs its command once
    for t in &titles {
        assert!(d.trigger("www", t).status.success(), "{t}");
    }
    assert!(
        d.sb.wait_for(15, || lines(&out).len() == 21),
        "{:?}\n{}",
        lines(&out),
        d.log_text()
    );
    std::thread::sleep(Duration::from_millis(300));
    let got = lines(&out);
    assert_eq!(got.len(), 21);
    for t in &titles {
        let n = got.iter().filter(|l| *l == t).count();
        assert_eq!(n, if t == "DUR0Z" { 2 } else { 1 }, "{t}: {got:?}");
    }
    assert!(d
        .sb
        .wait_for(5, || probe(&d.probes(), "DUR0Z").unwrap()["triggers"] == 2));
    assert!(d
        .log_text()
        .contains("killed the probes of the previous instance"));
    d.stop();
}

#[test]
fn a_clean_restart_keeps_registrations_and_a_bad_state_file_is_set_aside() {
    let mut d = daemon();
    start(&mut d, &[]);
    d.sb.create("www", &[]);
    d.register(&["-c", "true", "-j", "www", "-r", "-t", "KEPT_P"]);
    assert!(d.stop().success());
    start(&mut d, &[]);
    assert!(probe(&d.probes(), "KEPT_P").is_some_and(|p| p["state"] == "Armed"));
    assert_eq!(d.pgrep("www", "KEPT_P").len(), 1);
    assert!(d.stop().success());
    // a state file that does not parse: kept aside, the daemon starts empty
    std::fs::write(state_path(&d), "{\"version\": 1, \"probes\": [ garbage").unwrap();
    start(&mut d, &[]);
    assert!(d.probes().is_empty());
    let bad = d.sb.dir.path().join("state/probes.json.bad");
    assert!(std::fs::read_to_string(bad).unwrap().contains("garbage"));
    assert!(d.log_text().contains("the state file is unreadable"));
    // one daemon per state file
    let o = Command::new(JAILDAEMON)
        .args(["-D", "-F", "-p"])
        .arg(d.file("other.pid"))
        .arg("-f")
        .arg(d.file("other.sock"))
        .arg("-s")
        .arg(state_path(&d))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("in use by another jaildaemon"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn conf_entry(jail: &str, title: &str, cmd: &str) -> String {
    format!("[[probe]]\njail = \"{jail}\"\ntitle = \"{title}\"\ncommand = \"{cmd}\"\nmode = \"after-command\"\n\n")
}

#[test]
fn declared_probes_wait_for_their_jail_follow_it_and_reload_on_sighup() {
    let mut d = daemon();
    let out = d.file("fired");
    let cmd = format!("echo $JAILDAEMON_TITLE >> {}", out.display());
    let conf = d.file("jaildaemon.conf");
    d.sb.create("www", &[]);
    std::fs::write(
        &conf,
        conf_entry("later", "LATER_P", &cmd) + &conf_entry("www", "KEEP_B", &cmd),
    )
    .unwrap();
    start(&mut d, &["-C", conf.to_str().unwrap()]);
    let ps = d.probes();
    assert_eq!(probe(&ps, "LATER_P").unwrap()["state"], "WaitingForJail");
    assert_eq!(probe(&ps, "KEEP_B").unwrap()["state"], "Armed");
    let table = String::from_utf8(d.util(&["-l"]).stdout).unwrap();
    assert!(table.contains("waiting-jail"), "{table}");
    // the jail appears: the probe arms, fires, re-arms
    d.sb.create("later", &[]);
    assert!(
        d.sb.wait_for(10, || d.pgrep("later", "LATER_P").len() == 1),
        "{}",
        d.log_text()
    );
    assert!(d.trigger("later", "LATER_P").status.success());
    assert!(d.sb.wait_for(10, || lines(&out) == ["LATER_P"]));
    assert!(d.sb.wait_for(10, || d.pgrep("later", "LATER_P").len() == 1));
    // the jail is removed and created again: the probe follows
    d.sb.ok(&["jail", "remove", "later"]);
    assert!(
        d.sb.wait_for(10, || probe(&d.probes(), "LATER_P")
            .is_some_and(|p| p["state"] == "WaitingForJail")),
        "{:?}\n{}",
        d.probes(),
        d.log_text()
    );
    d.sb.create("later", &[]);
    assert!(
        d.sb.wait_for(10, || d.pgrep("later", "LATER_P").len() == 1),
        "{}",
        d.log_text()
    );
    assert!(d.trigger("later", "LATER_P").status.success());
    assert!(d.sb.wait_for(10, || lines(&out).len() == 2));
    assert_eq!(probe(&d.probes(), "LATER_P").unwrap()["triggers"], 2);
    // edit: LATER_P deleted, NEW_C added, KEEP_B unchanged; SIGHUP
    let keep = probe(&d.probes(), "KEEP_B").unwrap().clone();
    std::fs::write(
        &conf,
        conf_entry("www", "KEEP_B", &cmd) + &conf_entry("www", "NEW_C", &cmd),
    )
    .unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(d.pid()),
        nix::sys::signal::SIGHUP,
    )
    .unwrap();
    assert!(
        d.sb.wait_for(10, || {
            let ps = d.probes();
            probe(&ps, "LATER_P").is_none()
                && probe(&ps, "NEW_C").is_some_and(|p| p["state"] == "Armed")
        }),
        "{:?}\n{}",
        d.probes(),
        d.log_text()
    );
    assert!(d.sb.wait_for(5, || d.pgrep("later", "LATER_P").is_empty()));
    let k = probe(&d.probes(), "KEEP_B").unwrap().clone();
    assert_eq!((&k["id"], &k["pid"]), (&keep["id"], &keep["pid"]));
    assert_eq!(d.pgrep("www", "NEW_C").len(), 1);
    // a reload with an error changes nothing
    std::fs::write(&conf, "[[probe]]\njail = \"www\"\n").unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(d.pid()),
        nix::sys::signal::SIGHUP,
    )
    .unwrap();
    assert!(d.sb.wait_for(5, || d
        .log_text()
        .contains("the probes are left as they are")));
    assert_eq!(d.probes().len(), 2);
    d.stop();
}

#[test]
fn check_names_every_bad_line() {
    let sb = Sandbox::new();
    let conf = sb.dir.path().join("bad.conf");
    std::fs::write(
        &conf,
        "# two errors\n[[probe]]\njail = \"www\"\ntitle = \"A\"\ncommand = \"true\"\nmode = \"sometimes\"\nuid = \"root\"\n",
    )
    .unwrap();
    let o = Command::new(JAILDAEMON)
        .arg("-n")
        .arg("-C")
        .arg(&conf)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("line 6: mode") && err.contains("sometimes"),
        "{err}"
    );
    assert!(err.contains("line 7: uid"), "{err}");
    let good = sb.dir.path().join("good.conf");
    std::fs::write(&good, conf_entry("www", "A", "true")).unwrap();
    let o = Command::new(JAILDAEMON)
        .arg("-n")
        .arg("-C")
        .arg(&good)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("1 probe declared"));
    // commands run as root: a file others may write is refused
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&good, std::fs::Permissions::from_mode(0o666)).unwrap();
    let o = Command::new(JAILDAEMON)
        .arg("-n")
        .arg("-C")
        .arg(&good)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("writable by others"));
    // a daemon refuses to start on a bad file, naming the lines
    let mut d = daemon();
    let o = d
        .daemon_cmd(&["-D", "-F", "-C", conf.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("line 6") && err.contains("line 7"), "{err}");
    d.child = None;
}

#[test]
fn titles_are_unique_per_jail_and_w_waits_for_a_missing_jail() {
    let mut d = daemon();
    start(&mut d, &[]);
    d.sb.create("www", &[]);
    d.sb.create("db", &[]);
    d.register(&["-c", "true", "-j", "www", "-t", "SAME_T"]);
    let first = probe(&d.probes(), "SAME_T").unwrap()["id"].clone();
    let o = d.util(&["-c", "true", "-j", "www", "-t", "SAME_T"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("already has a probe titled SAME_T")
            && err.contains(&format!("probe {first}")),
        "{err}"
    );
    d.register(&["-c", "true", "-j", "db", "-t", "SAME_T"]);
    assert_eq!(d.pgrep("www", "SAME_T").len(), 1);
    assert_eq!(d.pgrep("db", "SAME_T").len(), 1);
    // a missing jail: an error without -w, a waiting registration with it
    let o = d.util(&["-c", "true", "-j", "nothere", "-t", "W_T"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("does not exist"));
    d.register(&["-c", "true", "-j", "nothere", "-w", "-t", "W_T"]);
    assert_eq!(
        probe(&d.probes(), "W_T").unwrap()["state"],
        "WaitingForJail"
    );
    let o = d.util(&["-c", "true", "-j", "nothere", "-w", "-t", "W_T"]);
    assert_eq!(o.status.code(), Some(1), "a waiting title is taken too");
    d.sb.create("nothere", &[]);
    assert!(d.sb.wait_for(10, || d.pgrep("nothere", "W_T").len() == 1));
    d.stop();
}

/// The rc.d script through `sh` with a stub `rc.subr` that does what FreeBSD's does
/// for `reload` (the precmd, then `kill -$sig_reload` of the pidfile's pid) and for
/// `configtest`; the systemd unit's ExecReload run as systemd would.
#[test]
fn rc_d_and_systemd_reload_send_sighup_after_a_check() {
    let mut d = daemon();
    let conf = d.file("jaildaemon.conf");
    d.sb.create("www", &[]);
    std::fs::write(&conf, conf_entry("www", "RC_A", "true")).unwrap();
    start(&mut d, &["-C", conf.to_str().unwrap()]);
    std::fs::write(&d.pidfile, format!("{}\n", d.pid())).unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let stub = d.file("rc.subr");
    std::fs::write(
        &stub,
        r#"load_rc_config() { :; }
run_rc_command() {
    command="$JD_BIN"
    case " $extra_commands " in *" $1 "*) ;; *) echo "no $1 in extra_commands" >&2; return 1;; esac
    case "$1" in
    reload)
        if [ -n "$reload_precmd" ]; then $reload_precmd || return 1; fi
        kill -"${sig_reload:-HUP}" "$(cat "$pidfile")"
        ;;
    configtest) $configtest_cmd ;;
    esac
}
"#,
    )
    .unwrap();
    let script = std::fs::read_to_string(repo.join("rc.d/jaildaemon"))
        .unwrap()
        .replace(". /etc/rc.subr", &format!(". {}", stub.display()));
    let rc = d.file("rc.jaildaemon");
    std::fs::write(&rc, script).unwrap();
    let rc_run = |what: &str| {
        Command::new("sh")
            .arg(&rc)
            .arg(what)
            .env("JD_BIN", JAILDAEMON)
            .env("jaildaemon_pidfile", &d.pidfile)
            .env("jaildaemon_config", &conf)
            .output()
            .unwrap()
    };
    // reload: RC_B appears, RC_A keeps its pid
    let a_pid = probe(&d.probes(), "RC_A").unwrap()["pid"].clone();
    std::fs::write(
        &conf,
        conf_entry("www", "RC_A", "true") + &conf_entry("www", "RC_B", "true"),
    )
    .unwrap();
    let o = rc_run("reload");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        d.sb.wait_for(10, || probe(&d.probes(), "RC_B")
            .is_some_and(|p| p["state"] == "Armed")),
        "{}",
        d.log_text()
    );
    assert_eq!(probe(&d.probes(), "RC_A").unwrap()["pid"], a_pid);
    // a bad file: reload refuses before any signal
    std::fs::write(&conf, "[[probe]]\nbogus = 1\n").unwrap();
    let o = rc_run("reload");
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("line 2"));
    assert!(!rc_run("configtest").status.success());
    // systemd: ExecReload with the unit's paths pointed at this test's files
    let unit = std::fs::read_to_string(repo.join("rc.d/jaildaemon.service")).unwrap();
    let reload = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecReload="))
        .expect("the unit has ExecReload");
    assert!(unit.contains("StateDirectoryMode=0700"));
    let reload = reload
        .replace("/usr/local/sbin/jaildaemon", JAILDAEMON)
        .replace("/etc/jaildaemon.conf", conf.to_str().unwrap())
        .replace("$$", "$");
    let sd = |line: &str| {
        Command::new("sh")
            .arg("-c")
            .arg(format!("eval \"$0\""))
            .arg(line)
            .env("MAINPID", d.pid().to_string())
            .output()
            .unwrap()
    };
    let o = sd(&reload);
    assert!(!o.status.success(), "the unit reloaded a bad file");
    std::fs::write(&conf, conf_entry("www", "RC_A", "true")).unwrap();
    let o = sd(&reload);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        d.sb.wait_for(10, || probe(&d.probes(), "RC_B").is_none()),
        "{}",
        d.log_text()
    );
    assert_eq!(probe(&d.probes(), "RC_A").unwrap()["pid"], a_pid);
    d.stop();
}

#[test]
fn a_single_shot_that_fired_is_not_armed_again_after_kill_9() {
    let mut d = daemon();
    start(&mut d, &[]);
    d.sb.create("www", &[]);
    d.register(&["-c", "sleep 3", "-j", "www", "-t", "SHOT_S"]);
    d.register(&["-c", "true", "-j", "www", "-t", "SHOT_IDLE"]);
    assert!(d.trigger("www", "SHOT_S").status.success());
    assert!(d.sb.wait_for(5, || state(&d)["probes"]
        .as_array()
        .is_some_and(|a| a.iter().any(|p| p["triggers"] == 1))));
    let mut c = d.child.take().unwrap();
    c.kill().unwrap();
    c.wait().unwrap();
    start(&mut d, &[]);
    let ps = d.probes();
    assert!(probe(&ps, "SHOT_S").is_none(), "{ps:?}");
    assert!(probe(&ps, "SHOT_IDLE").is_some_and(|p| p["state"] == "Armed"));
    assert!(d.pgrep("www", "SHOT_S").is_empty());
    d.stop();
}

/// A daemon on state file `state` that must refuse to start: its stderr.
fn refused_on(d: &Daemon, state: &Path) -> String {
    let o = Command::new(JAILDAEMON)
        .args(["-D", "-F", "-p"])
        .arg(d.file("x.pid"))
        .arg("-f")
        .arg(d.file("x.sock"))
        .arg("-s")
        .arg(state)
        .env("JAILDAEMON_REGISTRY", &d.sb.registry)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains(&state.display().to_string()), "{err}");
    err
}

#[test]
fn a_state_file_that_is_not_the_daemons_own_is_refused() {
    use std::os::unix::fs::{chown, symlink, PermissionsExt};
    let d = daemon();
    d.sb.create("www", &[]);
    let mode = |p: &Path, m: u32| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m));
    let nobody = 65534;
    let fired = d.file("PLANTED_RAN");
    let plant = format!(
        "{{\"version\":1,\"probes\":[{{\"id\":42,\"spec\":{{\"command\":\"touch {}\",\"jail\":\"www\",\"respawn\":\"AfterCommand\",\"uid\":null,\"gid\":null,\"title\":\"PLANT_T\",\"rate\":null,\"max_running\":null,\"wait\":true}},\"declared\":false,\"triggers\":0,\"last_trigger\":null,\"coalesced\":0,\"process\":null}}]}}",
        fired.display()
    );
    // a sticky world-writable directory with a file planted by nobody
    let sticky = d.file("sticky");
    std::fs::create_dir(&sticky).unwrap();
    mode(&sticky, 0o1777).unwrap();
    let planted = sticky.join("probes.json");
    std::fs::write(&planted, &plant).unwrap();
    chown(&planted, Some(nobody), Some(nobody)).unwrap();
    mode(&planted, 0o600).unwrap();
    let err = refused_on(&d, &planted);
    assert!(err.contains("writable by group or others"), "{err}");
    // a private directory: a symbolic link, a file of nobody, a file others can
    // read, a file with a second link are each refused, naming the file
    let private = d.file("private");
    std::fs::create_dir(&private).unwrap();
    mode(&private, 0o700).unwrap();
    let real = private.join("real.json");
    std::fs::write(&real, &plant).unwrap();
    mode(&real, 0o600).unwrap();
    let link = private.join("link.json");
    symlink(&planted, &link).unwrap();
    assert!(refused_on(&d, &link).contains("symbolic link"));
    chown(&real, Some(nobody), Some(nobody)).unwrap();
    assert!(refused_on(&d, &real).contains("owned by uid 65534"));
    chown(&real, Some(0), Some(0)).unwrap();
    mode(&real, 0o644).unwrap();
    assert!(refused_on(&d, &real).contains("mode 644"));
    mode(&real, 0o600).unwrap();
    std::fs::hard_link(&real, private.join("second")).unwrap();
    assert!(refused_on(&d, &real).contains("2 links"));
    assert!(!fired.exists());
    assert!(d.pgrep("www", "PLANT_T").is_empty());
}

#[test]
fn kill_9_during_a_restore_loses_no_registration() {
    let mut d = daemon();
    start(&mut d, &[]);
    d.sb.create("www", &[]);
    let n = 80;
    for i in 0..n {
        d.register(&["-c", "true", "-j", "www", "-r", "-t", &format!("MANY{i}Z")]);
    }
    let ids = |s: &serde_json::Value| -> Vec<u64> {
        let mut v: Vec<u64> = s["probes"]
            .as_array()
            .map(|a| a.iter().filter_map(|p| p["id"].as_u64()).collect())
            .unwrap_or_default();
        v.sort();
        v
    };
    let mut want: Vec<u64> = d
        .probes()
        .iter()
        .map(|p| p["id"].as_u64().unwrap())
        .collect();
    want.sort();
    assert_eq!(want.len(), n);
    assert!(
        d.sb.wait_for(5, || ids(&state(&d)) == want),
        "{}",
        state(&d)
    );
    let mut c = d.child.take().unwrap();
    c.kill().unwrap();
    c.wait().unwrap();
    // restarts killed (-9) at several moments of their restore
    for ms in [50, 200, 400, 700, 1000, 1500] {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&d.log)
            .unwrap();
        let mut c = d.daemon_cmd(&["-D", "-F"]).stderr(log).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(ms));
        c.kill().unwrap();
        c.wait().unwrap();
        assert_eq!(ids(&state(&d)), want, "after a kill at {ms} ms");
    }
    start(&mut d, &[]);
    assert!(
        d.sb.wait_for(30, || {
            let ps = d.probes();
            ps.len() == n && ps.iter().all(|p| p["state"] == "Armed")
        }),
        "{:?}",
        d.probes()
    );
    let mut got: Vec<u64> = d
        .probes()
        .iter()
        .map(|p| p["id"].as_u64().unwrap())
        .collect();
    got.sort();
    assert_eq!(got, want);
    assert!(d.sb.wait_for(5, || ids(&state(&d)) == want));
    d.stop();
}

#[test]
fn a_waiting_probe_names_its_jail_not_a_jid() {
    let mut d = daemon();
    start(&mut d, &[]);
    let o = d.util(&["-c", "true", "-j", "1", "-w", "-t", "NUM_T"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("by name, not by jid"), "{err}");
    assert!(d.probes().is_empty());
    let conf = d.file("num.conf");
    std::fs::write(&conf, conf_entry("7", "NUM_T", "true")).unwrap();
    let o = Command::new(JAILDAEMON)
        .arg("-n")
        .arg("-C")
        .arg(&conf)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("line 2") && err.contains("is a jid"), "{err}");
    d.stop();
}

fn hup(d: &Daemon) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(d.pid()),
        nix::sys::signal::SIGHUP,
    )
    .unwrap();
}

#[test]
fn a_reload_replaces_a_changed_probe_and_never_holds_up_sigterm() {
    let mut d = daemon();
    let out = d.file("fired");
    let conf = d.file("jaildaemon.conf");
    d.sb.create("www", &[]);
    std::fs::write(&conf, conf_entry("www", "CHG_T", "true")).unwrap();
    start(&mut d, &["-C", conf.to_str().unwrap()]);
    let old = probe(&d.probes(), "CHG_T").unwrap().clone();
    assert_eq!(old["state"], "Armed");
    // the command changes, and 40 new probes: the changed one is replaced (same
    // title, a new registration), the new ones armed
    let cmd = format!("echo changed >> {}", out.display());
    let mut text = conf_entry("www", "CHG_T", &cmd);
    for i in 0..40 {
        text += &conf_entry("www", &format!("BULK{i}Z"), "true");
    }
    std::fs::write(&conf, &text).unwrap();
    hup(&d);
    assert!(
        d.sb.wait_for(20, || {
            let ps = d.probes();
            ps.len() == 41
                && ps.iter().all(|p| p["state"] == "Armed")
                && probe(&ps, "CHG_T").is_some_and(|p| p["id"] != old["id"])
        }),
        "{:?}\n{}",
        d.probes(),
        d.log_text()
    );
    assert_eq!(d.pgrep("www", "CHG_T").len(), 1);
    assert!(d.trigger("www", "CHG_T").status.success());
    assert!(d.sb.wait_for(10, || lines(&out) == ["changed"]));
    // a big reload, then SIGTERM at once: the daemon stops without waiting for it
    for i in 0..150 {
        text += &conf_entry("www", &format!("MORE{i}Z"), "true");
    }
    std::fs::write(&conf, &text).unwrap();
    hup(&d);
    std::thread::sleep(Duration::from_millis(100));
    let t = std::time::Instant::now();
    assert!(d.stop().success());
    let took = t.elapsed();
    let log = d.log_text();
    let at = |s: &str| log.rfind(s);
    assert!(at("shutting down").is_some(), "{log}");
    assert_eq!(
        log.matches("configuration applied").count(),
        2,
        "the second reload must not finish before the shutdown ({took:?}):\n{log}"
    );
    assert!(took < Duration::from_secs(15), "{took:?}");
    assert!(
        d.sb.wait_for(10, || d.pgrep("www", "MORE").is_empty()
            && d.pgrep("www", "BULK").is_empty()),
        "probes left behind"
    );
}

#[test]
fn state_writes_are_coalesced_and_the_last_change_is_written() {
    use std::os::unix::fs::MetadataExt;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let mut d = daemon();
    start(&mut d, &[]);
    d.sb.create("www", &[]);
    let titles: Vec<String> = (0..20).map(|i| format!("CO{i}Z")).collect();
    for t in &titles {
        d.register(&["-c", "true", "-j", "www", "-r", "-t", t]);
    }
    std::thread::sleep(Duration::from_millis(500));
    // every write replaces the file (a new inode): watch them while 20 probes fire
    let (path, stop) = (state_path(&d), Arc::new(AtomicBool::new(false)));
    let watcher = {
        let (path, stop) = (path.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut seen = std::collections::BTreeSet::new();
            while !stop.load(Ordering::SeqCst) {
                if let Ok(m) = std::fs::metadata(&path) {
                    seen.insert(m.ino());
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            seen.len()
        })
    };
    let t = std::time::Instant::now();
    for t in &titles {
        assert!(d.trigger("www", t).status.success());
    }
    assert!(d.sb.wait_for(20, || d
        .probes()
        .iter()
        .all(|p| p["triggers"] == 1 && p["state"] == "Armed")));
    // the last change reaches the file
    assert!(
        d.sb.wait_for(5, || state(&d)["probes"].as_array().is_some_and(|a| a
            .iter()
            .all(|p| p["triggers"] == 1 && p["process"]["pid"].is_i64()))),
        "{}",
        state(&d)
    );
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::SeqCst);
    let writes = watcher.join().unwrap();
    let took = t.elapsed();
    // 40 changes (20 triggers, 20 respawns): at most one write per 200 ms
    let most = (took.as_millis() / 200) as usize + 2;
    assert!(writes <= most, "{writes} writes in {took:?}");
    d.stop();
}
