//! The lifecycle's undo logic with a recording fake of the host and the jail layer:
//! no root, no mounts, no jails. A real directory backend in a temporary directory.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::host::{Host, JailOps, MountSpec};
use super::runstate::{MountRecord, Phase, RunState};
use super::{CreateOpts, Manager};
use crate::jail::{JailError, JailInfo, JailParam};
use crate::storage::dir::DirBackend;
use crate::sys::tool::{HostCommand, Outcome, ToolError};

/// Every call the manager made, in order, and the one to fail.
#[derive(Default)]
struct World {
    calls: Mutex<Vec<String>>,
    fail: Mutex<Vec<String>>,
    jails: Mutex<BTreeMap<String, i32>>,
    mounted: Mutex<Vec<String>>,
}

impl World {
    /// Record `call`; fail it if it is the one chosen.
    fn call(&self, call: String) -> std::io::Result<()> {
        self.calls.lock().unwrap().push(call.clone());
        if self.fail.lock().unwrap().contains(&call) {
            return Err(std::io::Error::other(format!("injected failure of {call}")));
        }
        Ok(())
    }

    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

struct FakeHost(Arc<World>);
struct FakeJails(Arc<World>);

impl Host for FakeHost {
    fn mount(&self, m: &MountSpec) -> std::io::Result<MountRecord> {
        self.0.call(format!("mount {}", m.what()))?;
        self.0.mounted.lock().unwrap().push(m.what().to_string());
        Ok(MountRecord {
            target: PathBuf::from("/fake").join(m.what()),
            what: m.what().to_string(),
            inside: None,
        })
    }

    fn unmount(&self, m: &MountRecord) -> std::io::Result<()> {
        self.0.call(format!("unmount {}", m.what))?;
        self.0.mounted.lock().unwrap().retain(|w| *w != m.what);
        Ok(())
    }

    fn write_in_root(&self, _: &Path, rel: &Path, _: &[u8], _: u32) -> std::io::Result<bool> {
        self.0.call(format!("write {}", rel.display()))?;
        Ok(true)
    }

    fn run_command(&self, c: &HostCommand, _: &File, _: Duration) -> std::io::Result<Outcome> {
        self.0.call(format!("host {}", c.script))?;
        Ok(Outcome::Success)
    }

    fn run_tool(&self, program: &str, _: &[String]) -> Result<String, ToolError> {
        self.0
            .call(format!("tool {program}"))
            .map_err(|e| ToolError {
                cmd: program.into(),
                msg: e.to_string(),
            })?;
        Ok(String::new())
    }
}

fn jerr(e: std::io::Error) -> JailError {
    JailError::Invalid(e.to_string())
}

impl JailOps for FakeJails {
    fn create(&self, params: &[JailParam]) -> Result<i32, JailError> {
        self.0.call("create".into()).map_err(jerr)?;
        let name = params
            .iter()
            .find(|p| p.name() == "name")
            .map(|p| p.export())
            .unwrap();
        self.0.jails.lock().unwrap().insert(name, 7);
        Ok(7)
    }

    fn jid(&self, name: &str) -> Option<i32> {
        self.0.jails.lock().unwrap().get(name).copied()
    }

    fn limits_prepare(
        &self,
        _name: &str,
        _rec: &mut crate::sys::limits::Applied,
    ) -> Result<(), crate::sys::limits::LimitError> {
        Ok(())
    }

    fn limits_apply(
        &self,
        _name: &str,
        _jid: i32,
        _plan: &crate::sys::limits::Plan,
        _prev: Option<&crate::sys::limits::Applied>,
    ) -> Result<crate::sys::limits::Applied, crate::sys::limits::LimitError> {
        Ok(Default::default())
    }

    fn limits_release(
        &self,
        _rec: &crate::sys::limits::Applied,
    ) -> Result<(), crate::sys::limits::LimitError> {
        Ok(())
    }

    fn remove(&self, name: &str) -> Result<(), JailError> {
        self.0.call("remove".into()).map_err(jerr)?;
        self.0.jails.lock().unwrap().remove(name);
        Ok(())
    }

    fn terminate(&self, _: &str) -> Result<(), JailError> {
        self.0.call("terminate".into()).map_err(jerr)
    }

    fn has_processes(&self, _: &str) -> bool {
        false
    }

    fn list(&self) -> Result<Vec<JailInfo>, JailError> {
        Ok(vec![])
    }

    fn params(&self, _: &str) -> Result<Vec<JailParam>, JailError> {
        Ok(vec![])
    }

    fn run_script(
        &self,
        _: &str,
        script: &str,
        _: &File,
        _: Duration,
    ) -> Result<Outcome, JailError> {
        self.0.call(format!("jail {script}")).map_err(jerr)?;
        Ok(Outcome::Success)
    }

    fn exec(
        &self,
        _: &str,
        _: Option<&str>,
        _: Option<&str>,
        cmd: &[String],
    ) -> Result<i32, JailError> {
        self.0
            .call(format!("exec {}", cmd.join(" ")))
            .map_err(jerr)?;
        Ok(0)
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    m: Manager,
    w: Arc<World>,
    uuid: String,
}

/// A thin jail of release R with two fstab lines, a resolver and every start hook.
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("db");
    std::fs::create_dir_all(root.join("releases/R/root/etc")).unwrap();
    let w = Arc::new(World::default());
    let m = Manager::with(
        Box::new(DirBackend::new(&root)),
        dir.path().join("run"),
        Box::new(FakeHost(w.clone())),
        Box::new(FakeJails(w.clone())),
    );
    let props = [
        ("tag", "t"),
        ("exec_prestart", "pre"),
        ("exec_start", "start"),
        ("exec_poststart", "post"),
        ("exec_prestop", "prestop"),
        ("exec_stop", "stop"),
        ("exec_poststop", "poststop"),
        ("resolver", "nameserver 192.0.2.1"),
    ];
    let uuid = m
        .create(&CreateOpts {
            release: Some("R".into()),
            props: props
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        })
        .unwrap()
        .remove(0);
    let jdir = root.join("jails").join(&uuid);
    std::fs::write(
        jdir.join("fstab"),
        format!(
            "/ /mnt/a nullfs ro 0 0\n/ {}/mnt/b nullfs ro 0 0\n",
            jdir.join("root").display()
        ),
    )
    .unwrap();
    Fixture {
        _dir: dir,
        m,
        w,
        uuid,
    }
}

/// What a successful start does, in order.
const START: [&str; 8] = [
    "mount release R",
    "host pre",
    "mount fstab line 1",
    "mount fstab line 2",
    "write etc/resolv.conf",
    "create",
    "jail start",
    "host post",
];

#[test]
fn start_does_its_steps_in_order() {
    let f = fixture();
    assert_eq!(f.m.start("t", false).unwrap(), 7);
    assert_eq!(f.w.calls(), START);
    let st = f.m.read_state(&f.uuid);
    assert_eq!(st.jid, Some(7));
    assert_eq!(st.phase, None);
    assert_eq!(st.mounts.len(), 3);
    assert_ne!(f.m.resolve("t").unwrap().get("last_started"), "none");
}

#[test]
fn a_failing_start_step_undoes_every_earlier_one_in_reverse() {
    for (i, failing) in START.iter().enumerate() {
        let f = fixture();
        *f.w.fail.lock().unwrap() = vec![failing.to_string()];
        let e = f.m.start("t", false).unwrap_err().to_string();
        assert!(e.contains("injected failure"), "[{failing}] {e}");
        let calls = f.w.calls();
        assert_eq!(
            calls[..=i],
            START[..=i],
            "[{failing}] the steps before it ran"
        );
        // The undo: the kernel jail if it was made, then the mounts made, last first.
        let mut undo = Vec::new();
        if START[..i].contains(&"create") {
            undo.push("remove".to_string());
        }
        for done in START[..i].iter().rev() {
            if let Some(what) = done.strip_prefix("mount ") {
                undo.push(format!("unmount {what}"));
            }
        }
        assert_eq!(calls[i + 1..], undo, "[{failing}] undo");
        assert!(f.w.mounted.lock().unwrap().is_empty(), "[{failing}]");
        assert!(f.w.jails.lock().unwrap().is_empty(), "[{failing}]");
        assert_eq!(f.m.read_state(&f.uuid), RunState::default(), "[{failing}]");
        assert_eq!(f.m.resolve("t").unwrap().get("last_started"), "none");
    }
}

#[test]
fn a_failing_undo_keeps_both_errors_and_what_is_left_recorded() {
    let f = fixture();
    *f.w.fail.lock().unwrap() = vec!["create".into(), "unmount fstab line 1".into()];
    let e = f.m.start("t", false).unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, super::ManagerError::Cleanup { .. }), "{text}");
    assert!(text.contains("injected failure of create"), "{text}");
    assert!(
        text.contains("undoing it failed too") && text.contains("fstab line 1"),
        "{text}"
    );
    // the undo stopped at the mount it could not remove: it and what lies below it
    // stay recorded, for the next stop
    let left = f.m.read_state(&f.uuid);
    assert_eq!(left.mounts, vec![rec("release R"), rec("fstab line 1")]);
    f.w.fail.lock().unwrap().clear();
    assert!(!f.m.stop("t").unwrap());
    assert_eq!(f.m.read_state(&f.uuid), RunState::default());
    assert!(f.w.mounted.lock().unwrap().is_empty());
}

fn rec(what: &str) -> MountRecord {
    MountRecord {
        target: PathBuf::from("/fake").join(what),
        what: what.into(),
        inside: None,
    }
}

#[test]
fn stop_undoes_exactly_what_the_run_state_recorded() {
    let f = fixture();
    let kname = super::kernel_name(&f.uuid);
    f.w.jails.lock().unwrap().insert(kname, 7);
    let st = RunState {
        mounts: vec![rec("release R"), rec("fstab line 2")],
        jid: Some(7),
        phase: None,
        boot: None,
        net: vec![],
        limits: None,
    };
    f.m.write_state(&f.uuid, &st).unwrap();
    assert!(f.m.stop("t").unwrap());
    assert_eq!(
        f.w.calls(),
        [
            "host prestop",
            "jail stop",
            "terminate",
            "remove",
            "host poststop",
            "unmount fstab line 2",
            "unmount release R",
        ]
    );
    assert_eq!(f.m.read_state(&f.uuid), RunState::default());
    // stopped again: nothing to do, nothing undone twice
    assert!(!f.m.stop("t").unwrap());
    assert_eq!(f.w.calls().len(), 7);
}

#[test]
fn a_failing_stop_hook_does_not_stop_the_stop() {
    let f = fixture();
    f.w.jails
        .lock()
        .unwrap()
        .insert(super::kernel_name(&f.uuid), 7);
    *f.w.fail.lock().unwrap() = vec!["jail stop".into()];
    assert!(f.m.stop("t").unwrap());
    assert!(f.w.calls().contains(&"remove".to_string()));
    assert!(f.w.jails.lock().unwrap().is_empty());
}

#[test]
fn an_interrupted_start_is_finished_by_stopping() {
    let f = fixture();
    f.w.jails
        .lock()
        .unwrap()
        .insert(super::kernel_name(&f.uuid), 7);
    let st = RunState {
        mounts: vec![rec("release R")],
        jid: Some(7),
        phase: Some(Phase::Starting),
        boot: None,
        net: vec![],
        limits: None,
    };
    f.m.write_state(&f.uuid, &st).unwrap();
    assert_eq!(f.m.phase(&f.uuid), Some(("starting".into(), true)));
    assert_eq!(f.m.start("t", false).unwrap(), 7);
    let calls = f.w.calls();
    assert_eq!(calls[..2], ["remove", "unmount release R"]);
    assert_eq!(calls[2..], START);
}

#[test]
fn templates_and_boot_order() {
    let f = fixture();
    f.m.set(&[("istemplate".into(), "yes".into())], "t")
        .unwrap();
    let e = f.m.start("t", false).unwrap_err().to_string();
    assert!(e.contains("start -f"), "{e}");
    assert!(f.w.calls().is_empty());
    for (tag, prio) in [("b", "5"), ("a", "5"), ("c", "1")] {
        f.m.create(&CreateOpts {
            empty: true,
            props: vec![
                ("tag".into(), tag.into()),
                ("boot".into(), "on".into()),
                ("priority".into(), prio.into()),
            ],
            ..Default::default()
        })
        .unwrap();
    }
    let order: Vec<String> =
        f.m.boot_order()
            .unwrap()
            .iter()
            .map(|j| j.tag().to_string())
            .collect();
    assert_eq!(order, ["c", "a", "b"]);
}

#[test]
fn the_tag_index_never_names_the_wrong_jail() {
    let f = fixture();
    let other =
        f.m.create(&CreateOpts {
            empty: true,
            props: vec![("tag".into(), "u".into())],
            ..Default::default()
        })
        .unwrap()
        .remove(0);
    assert_eq!(f.m.index_get("t").as_deref(), Some(f.uuid.as_str()));
    // a wrong entry (as a crash or a hand edit could leave) is checked, not believed
    f.m.index_put("t", &other).unwrap();
    assert_eq!(f.m.resolve("t").unwrap().uuid, f.uuid);
    assert_ne!(f.m.index_get("t").as_deref(), Some(other.as_str()));
    // an entry whose jail is gone: a full scan answers
    f.m.index_put("ghost", &super::new_uuid()).unwrap();
    assert!(matches!(
        f.m.resolve("ghost"),
        Err(super::ManagerError::NotFound(_))
    ));
    // a scan adds what the index lacks
    f.m.index_drop("u");
    f.m.jails().unwrap();
    assert_eq!(f.m.index_get("u").as_deref(), Some(other.as_str()));
    // uniqueness does not trust the index: a tag it lacks is still taken
    f.m.index_drop("u");
    let e =
        f.m.create(&CreateOpts {
            empty: true,
            props: vec![("tag".into(), "u".into())],
            ..Default::default()
        })
        .unwrap_err();
    assert!(matches!(e, super::ManagerError::TagInUse { .. }), "{e}");
}
