//! `rcboot`/`rcshutdown` with `depends` and `-j N`, on real jails (the directory
//! backend, busybox roots; no ZFS). The order is observed from marks the jails' own
//! host hooks (`exec_prestart`/`exec_poststart`, `exec_prestop`/`exec_poststop`)
//! append to a file, not from jailctl's output. Needs root.
#![cfg(target_os = "linux")]

mod common;

use std::path::Path;

use common::manager_env::{text, Env, Kind, Setup};

/// Sandboxes of this file: `jd-boot-*` directories, a release in xz.
const SETUP: Setup = Setup {
    dir_prefix: "jd-boot-",
    pool_prefix: "jdb",
    archives: &[("base.txz", "-J")],
};

fn env() -> Env {
    let e = Env::setup(Kind::Dir, &SETUP);
    e.fetch();
    e
}

/// Create a jail whose host hooks append `pre TAG`, `start TAG`, `prestop TAG` and
/// `stop TAG` (each with a timestamp) to `marks`; returns its UUID.
fn jail(e: &Env, marks: &Path, tag: &str, extra: &[&str]) -> String {
    let m = marks.display();
    let mark = |what: &str| format!("echo {what} {tag} $(date +%s.%N) >> {m}");
    let mut args = vec![
        format!("tag={tag}"),
        format!("exec_prestart={}", mark("pre")),
        format!("exec_poststart={}", mark("start")),
        format!("exec_prestop={}", mark("prestop")),
        format!("exec_poststop={}", mark("stop")),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    e.create(&args)
}

/// The marks, as "what tag", in the order they were written.
fn marks(p: &Path) -> Vec<String> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .map(|l| l.split_whitespace().take(2).collect::<Vec<_>>().join(" "))
        .collect()
}

fn pos(m: &[String], mark: &str) -> usize {
    m.iter()
        .position(|l| l == mark)
        .unwrap_or_else(|| panic!("no mark \"{mark}\" in {m:?}"))
}

#[test]
fn dependencies_start_first_stop_last_and_run_in_parallel() {
    let e = env();
    let f = e.dir.path().join("marks");
    let slow = "exec_start=sleep 1";
    let db = jail(&e, &f, "db", &["boot=on", "priority=10", slow]);
    jail(
        &e,
        &f,
        "app",
        &["boot=on", "priority=10", "depends=db", slow],
    );
    jail(
        &e,
        &f,
        "web",
        &["boot=on", "priority=10", "depends=app,cache"],
    );
    // boot off, and a later priority: started anyway, in web's priority, as iocage does
    let cache = jail(&e, &f, "cache", &["priority=50", slow]);
    jail(&e, &f, "solo", &["boot=on", "priority=10", slow]);
    jail(&e, &f, "late", &["boot=on", "priority=20"]);
    let out = e.ok(&["rcboot", "-j", "4"]);
    let m = marks(&f);
    for (dep, dependant) in [("db", "app"), ("app", "web"), ("cache", "web")] {
        assert!(
            pos(&m, &format!("start {dep}")) < pos(&m, &format!("pre {dependant}")),
            "{dependant} started before its dependency {dep} had: {m:?}"
        );
    }
    // db, cache and solo have no dependency: they start together
    let first_start = m.iter().position(|l| l.starts_with("start ")).unwrap();
    for t in ["db", "cache", "solo"] {
        assert!(
            pos(&m, &format!("pre {t}")) < first_start,
            "{t} waited: {m:?}"
        );
    }
    // priority 20 after every jail of priority 10 (and the dependency pulled into it)
    for t in ["db", "app", "web", "cache", "solo"] {
        assert!(
            pos(&m, &format!("start {t}")) < pos(&m, "pre late"),
            "{m:?}"
        );
    }
    assert_eq!(out.lines().count(), 6, "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("started (jid ") && l.ends_with(&format!(": db ({db})"))),
        "{out}"
    );
    assert!(out.contains(&format!(": cache ({cache})")), "{out}");
    assert_eq!(e.kernel_jails().len(), 6);

    std::fs::remove_file(&f).unwrap();
    let out = e.ok(&["rcshutdown", "-j", "4"]);
    let m = marks(&f);
    for (dep, dependant) in [("db", "app"), ("app", "web"), ("cache", "web")] {
        assert!(
            pos(&m, &format!("stop {dependant}")) < pos(&m, &format!("prestop {dep}")),
            "{dep} stopped before its dependant {dependant}: {m:?}"
        );
    }
    for t in ["db", "app", "web", "cache", "solo"] {
        assert!(
            pos(&m, "stop late") < pos(&m, &format!("prestop {t}")),
            "{m:?}"
        );
    }
    assert_eq!(
        out.lines().filter(|l| l.starts_with("stopped: ")).count(),
        6,
        "{out}"
    );
    assert!(e.kernel_jails().is_empty());
}

#[test]
fn serial_j1_keeps_the_priority_then_tag_order() {
    let e = env();
    let f = e.dir.path().join("marks");
    for (tag, prio, boot) in [
        ("c", "30", "on"),
        ("a", "10", "on"),
        ("b", "20", "on"),
        ("b2", "20", "on"),
        ("x", "1", "off"),
    ] {
        jail(
            &e,
            &f,
            tag,
            &[&format!("priority={prio}"), &format!("boot={boot}")],
        );
    }
    let out = e.ok(&["rcboot", "-j", "1"]);
    let tags: Vec<&str> = out
        .lines()
        .map(|l| l.split(": ").nth(1).unwrap().split(' ').next().unwrap())
        .collect();
    assert_eq!(tags, ["a", "b", "b2", "c"]);
    e.ok(&["rcshutdown", "-j", "1"]);
    let m: Vec<String> = marks(&f)
        .into_iter()
        .filter(|l| l.starts_with("start ") || l.starts_with("stop "))
        .collect();
    assert_eq!(
        m,
        ["start a", "start b", "start b2", "start c", "stop c", "stop b2", "stop b", "stop a"]
    );
    // the default (parallel) run starts the same jails, priorities in order
    std::fs::remove_file(&f).unwrap();
    e.ok(&["rcboot"]);
    let m = marks(&f);
    assert!(pos(&m, "start a") < pos(&m, "pre b") && pos(&m, "start a") < pos(&m, "pre b2"));
    assert!(pos(&m, "start b") < pos(&m, "pre c") && pos(&m, "start b2") < pos(&m, "pre c"));
    assert!(!m.iter().any(|l| l.ends_with(" x")), "{m:?}");
    e.ok(&["rcshutdown"]);
    assert!(e.kernel_jails().is_empty());
}

#[test]
fn a_cycle_or_an_unknown_tag_is_refused_before_anything_starts() {
    let e = env();
    let f = e.dir.path().join("marks");
    jail(&e, &f, "a", &["boot=on", "depends=b"]);
    jail(&e, &f, "b", &["depends=c"]);
    jail(&e, &f, "c", &["depends=a"]);
    jail(&e, &f, "d", &["boot=on"]);
    let err = e.fails(&["rcboot"]);
    assert!(err.contains("a -> b -> c -> a"), "{err}");
    let err = e.fails(&["rcshutdown"]);
    assert!(err.contains("a -> b -> c -> a"), "{err}");
    assert!(e.kernel_jails().is_empty());
    assert!(marks(&f).is_empty());
    e.ok(&["set", "depends=none", "c"]);
    e.ok(&["set", "depends=nosuch", "d"]);
    let err = e.fails(&["rcboot"]);
    assert!(err.contains("\"nosuch\""), "{err}");
    assert!(e.kernel_jails().is_empty());
    // and a depends value is checked like tags
    let err = e.fails(&["set", "depends=ALL", "d"]);
    assert!(err.contains("depends"), "{err}");
}

#[test]
fn a_failing_dependency_skips_its_dependants_only() {
    let e = env();
    let f = e.dir.path().join("marks");
    let db = jail(
        &e,
        &f,
        "db",
        &["boot=on", "priority=10", "exec_start=/bin/false"],
    );
    let app = jail(&e, &f, "app", &["boot=on", "priority=10", "depends=db"]);
    jail(&e, &f, "front", &["boot=on", "priority=50", "depends=app"]);
    jail(&e, &f, "other", &["boot=on", "priority=10"]);
    let o = e.run(&["rcboot", "-j", "2"]);
    assert_eq!(o.status.code(), Some(1));
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    assert!(err.contains("exec_start") && err.contains(&db), "{err}");
    assert!(
        err.contains(&format!(
            "app ({app}): not started: it depends on db ({db}), which did not start"
        )),
        "{err}"
    );
    assert!(
        err.contains("front (") && err.contains("depends on app ("),
        "{err}"
    );
    assert!(out.contains(": other ("), "{out}");
    assert!(!out.contains(": app (") && !out.contains(": db ("), "{out}");
    let m = marks(&f);
    assert!(
        !m.iter().any(|l| l == "pre app" || l == "pre front"),
        "{m:?}"
    );
    assert_eq!(e.kernel_jails().len(), 1, "{:?}", e.kernel_jails());
    e.ok(&["rcshutdown"]);
    assert!(e.kernel_jails().is_empty());
}
