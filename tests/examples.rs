//! The example scripts of `examples/` against real jails and a real daemon. Needs root.

mod common;

use common::{Daemon, JAILCTL, JAILDAEMON};
use std::process::Command;

fn example(d: &Daemon, script: &str, args: &[&str]) -> Command {
    let mut c = Command::new("sh");
    c.arg(format!("{}/examples/{script}", env!("CARGO_MANIFEST_DIR")))
        .args(args)
        .env("JAILCTL", JAILCTL)
        .env("JAILDAEMON", JAILDAEMON)
        .env("JAILDAEMON_SOCKET", &d.socket)
        .env("JAILDAEMON_REGISTRY", &d.sb.registry);
    c
}

fn run_ok(mut c: Command) {
    let o = c.output().unwrap();
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn restart_jail_example_restarts_and_re_arms() {
    let d = Daemon::start();
    d.sb.create("web", &["host.hostname=web.example"]);
    run_ok(example(&d, "restart-jail.sh", &["web"]));
    let first = d.sb.registry.join("1.json");
    let before = std::fs::read_to_string(&first).unwrap();
    d.sb.ok(&[
        "jail",
        "exec",
        "web",
        "sh",
        "-c",
        "echo precious > /tmp/state",
    ]);
    assert!(d.trigger("web", "JAIL_REBOOT").status.success());
    assert!(
        d.sb.wait_for(10, || std::fs::read_to_string(&first)
            .map(|a| a != before)
            .unwrap_or(false)),
        "not restarted; log:\n{}",
        d.log_text()
    );
    assert!(
        d.sb.wait_for(10, || d.pgrep("web", "JAIL_REBOOT").len() == 1),
        "not re-armed; log:\n{}",
        d.log_text()
    );
    assert_eq!(
        d.sb.ok(&["jail", "exec", "web", "hostname"]).trim(),
        "web.example"
    );
}

#[test]
fn snapshot_example_archives_the_jail() {
    let d = Daemon::start();
    d.sb.create("snap", &[]);
    let backups = d.file("backups");
    let mut c = example(&d, "snapshot.sh", &["snap"]);
    c.env("BACKUP_DIR", &backups);
    run_ok(c);
    d.trigger("snap", "ZFS_SNAPSHOT");
    let count = || std::fs::read_dir(&backups).map(|r| r.count()).unwrap_or(0);
    assert!(
        d.sb.wait_for(10, || count() == 1),
        "no archive; log:\n{}",
        d.log_text()
    );
    assert!(
        d.sb.wait_for(10, || d.pgrep("snap", "ZFS_SNAPSHOT").len() == 1),
        "not respawned"
    );
    let archive = std::fs::read_dir(&backups)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let list = Command::new("tar")
        .arg("-tzf")
        .arg(&archive)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&list.stdout).contains("./etc/jail-marker"));
}

#[test]
fn routing_hook_example_runs_the_wrapper() {
    let d = Daemon::start();
    d.sb.create("rt", &[]);
    let wrapper = d.file("update-routing");
    run_ok(example(
        &d,
        "routing-hook.sh",
        &["rt", wrapper.to_str().unwrap()],
    ));
    assert!(wrapper.exists(), "sample wrapper not written");
    d.trigger("rt", "UPDATE_ROUTING");
    assert!(
        d.sb.wait_for(10, || d.log_text().contains("routing update for jail rt")),
        "log:\n{}",
        d.log_text()
    );
}
