//! The boot planner and scheduler, without jails.

use super::plan::{parse_depends, plan, BootNode, Next, PlanError, Scheduler};

/// Nodes from `(tag, priority, boot, "dep dep")`.
fn nodes(spec: &[(&str, u8, bool, &str)]) -> Vec<BootNode> {
    spec.iter()
        .map(|(t, p, b, d)| BootNode {
            tag: t.to_string(),
            uuid: format!("uuid-{t}"),
            priority: *p,
            boot: *b,
            depends: parse_depends(d),
        })
        .collect()
}

/// The serial order as tags.
fn serial(n: &[BootNode], shutdown: bool) -> Vec<String> {
    plan(n, shutdown)
        .unwrap()
        .steps
        .iter()
        .map(|s| n[s.node].tag.clone())
        .collect()
}

/// Run the scheduler with `jobs`, finishing launched steps in launch order, `fail`
/// failing; what happened, as "+tag" (launched), "-tag" (skipped because of a tag)
/// and "|" where the scheduler had to wait.
fn run(n: &[BootNode], shutdown: bool, jobs: usize, fail: &[&str]) -> Vec<String> {
    let mut s = Scheduler::new(plan(n, shutdown).unwrap(), jobs);
    let mut running = std::collections::VecDeque::new();
    let mut log = Vec::new();
    loop {
        match s.next() {
            Next::Finished => break,
            Next::Launch(i) => {
                log.push(format!("+{}", n[i].tag));
                running.push_back(i);
            }
            Next::Skip { node, because } => {
                log.push(format!("-{}({})", n[node].tag, n[because].tag))
            }
            Next::Wait => {
                log.push("|".into());
                let i = running.pop_front().expect("something runs while waiting");
                s.finish(i, !fail.contains(&n[i].tag.as_str()));
            }
        }
    }
    log
}

#[test]
fn depends_parses_spaces_commas_and_none() {
    assert_eq!(parse_depends("a b,c , d"), ["a", "b", "c", "d"]);
    assert_eq!(parse_depends("a a"), ["a"]);
    assert!(parse_depends("none").is_empty());
    assert!(parse_depends("  ").is_empty());
}

#[test]
fn without_depends_the_order_is_priority_then_tag_and_shutdown_reverses_it() {
    let n = nodes(&[
        ("c", 30, true, ""),
        ("a", 10, true, ""),
        ("b", 20, true, ""),
        ("b2", 20, true, ""),
        ("x", 1, false, ""),
    ]);
    assert_eq!(serial(&n, false), ["a", "b", "b2", "c"]);
    assert_eq!(serial(&n, true), ["c", "b2", "b", "a"]);
    // -j 1: exactly the serial order
    assert_eq!(
        run(&n, false, 1, &[]),
        ["+a", "|", "+b", "|", "+b2", "|", "+c", "|"]
    );
    // -j 4: one priority at a time, its jails together
    assert_eq!(
        run(&n, false, 4, &[]),
        ["+a", "|", "+b", "+b2", "|", "|", "+c", "|"]
    );
}

#[test]
fn dependencies_start_first_and_stop_last() {
    // web needs db and cache; db needs store; all priority 5
    let n = nodes(&[
        ("web", 5, true, "db,cache"),
        ("db", 5, true, "store"),
        ("cache", 5, true, ""),
        ("store", 5, true, ""),
        ("alone", 5, true, ""),
    ]);
    assert_eq!(serial(&n, false), ["alone", "cache", "store", "db", "web"]);
    assert_eq!(serial(&n, true), ["web", "db", "store", "cache", "alone"]);
    let log = run(&n, false, 8, &[]);
    assert_eq!(log[..3], ["+alone", "+cache", "+store"]);
    let pos = |t: &str| log.iter().position(|l| l == t).unwrap();
    assert!(pos("+db") > pos("+store"));
    assert!(pos("+web") > pos("+db"));
    let log = run(&n, true, 8, &[]);
    assert_eq!(log[..2], ["+web", "+alone"]);
    let pos = |t: &str| log.iter().position(|l| l == t).unwrap();
    assert!(pos("+store") > pos("+db") && pos("+cache") > pos("+web"));
}

#[test]
fn a_dependency_is_pulled_into_the_earliest_priority_needing_it() {
    // app (priority 10) depends on db (priority 50): db starts in wave 10
    let n = nodes(&[
        ("app", 10, true, "db"),
        ("db", 50, true, ""),
        ("mid", 20, true, ""),
        ("first", 1, true, ""),
    ]);
    let p = plan(&n, false).unwrap();
    let waves: Vec<(String, u8)> = p
        .steps
        .iter()
        .map(|s| (n[s.node].tag.clone(), s.wave))
        .collect();
    let want: Vec<(String, u8)> = [("first", 1), ("db", 10), ("app", 10), ("mid", 20)]
        .iter()
        .map(|(t, w)| (t.to_string(), *w))
        .collect();
    assert_eq!(waves, want);
}

#[test]
fn a_dependency_without_boot_is_started_anyway() {
    let n = nodes(&[
        ("app", 5, true, "db"),
        ("db", 5, false, ""),
        ("off", 5, false, ""),
    ]);
    assert_eq!(serial(&n, false), ["db", "app"]);
    assert_eq!(serial(&n, true), ["app", "db"]);
}

#[test]
fn a_cycle_is_an_error_naming_it() {
    let n = nodes(&[
        ("a", 5, true, "b"),
        ("b", 5, false, "c"),
        ("c", 5, false, "a"),
    ]);
    let e = plan(&n, false).unwrap_err();
    assert_eq!(
        e,
        PlanError::Cycle(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
    assert_eq!(e.to_string(), "depends: a cycle: a -> b -> c -> a");
    let n = nodes(&[("s", 5, true, "s")]);
    assert_eq!(
        plan(&n, true).unwrap_err().to_string(),
        "depends: a cycle: s -> s"
    );
    // a cycle among jails rcboot does not start is not looked at
    let n = nodes(&[
        ("a", 5, true, ""),
        ("x", 5, false, "y"),
        ("y", 5, false, "x"),
    ]);
    assert_eq!(serial(&n, false), ["a"]);
}

#[test]
fn an_unknown_tag_is_an_error_naming_it() {
    let n = nodes(&[("a", 5, true, "nosuch")]);
    let e = plan(&n, false).unwrap_err();
    assert_eq!(
        e,
        PlanError::Unknown {
            jail: "a".into(),
            tag: "nosuch".into()
        }
    );
    assert!(e.to_string().contains("\"nosuch\""), "{e}");
}

#[test]
fn a_failure_skips_the_dependants_only() {
    let n = nodes(&[
        ("db", 5, true, ""),
        ("app", 5, true, "db"),
        ("front", 6, true, "app"),
        ("other", 6, true, ""),
    ]);
    let log = run(&n, false, 1, &["db"]);
    assert_eq!(log, ["+db", "|", "-app(db)", "-front(app)", "+other", "|"]);
    // shutdown: a dependant failing to stop keeps what it depends on running
    let log = run(&n, true, 1, &["front"]);
    assert_eq!(
        log,
        ["+other", "|", "+front", "|", "-app(front)", "-db(app)"]
    );
}

#[test]
fn jobs_bound_what_runs_at_once() {
    let spec: Vec<(String, u8, bool, &str)> =
        (0..6).map(|i| (format!("j{i}"), 5, true, "")).collect();
    let spec: Vec<(&str, u8, bool, &str)> = spec
        .iter()
        .map(|(t, p, b, d)| (t.as_str(), *p, *b, *d))
        .collect();
    let n = nodes(&spec);
    let log = run(&n, false, 2, &[]).join(" ");
    assert_eq!(log, "+j0 +j1 | +j2 | +j3 | +j4 | +j5 | |");
}

#[test]
fn depends_is_validated_like_tags() {
    use crate::manager::props::validate;
    assert_eq!(validate("depends", "db, cache").unwrap(), "db, cache");
    assert_eq!(validate("depends", "none").unwrap(), "none");
    assert!(validate("depends", "").is_ok());
    for bad in ["ALL", "a default", "a/b", &"x".repeat(65)] {
        assert!(validate("depends", bad).is_err(), "{bad}");
    }
}
