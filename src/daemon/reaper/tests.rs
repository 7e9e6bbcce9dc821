//! The reaper's check-and-signal on tracked children, without root and without
//! waitpid(-1) (other tests of this binary have children of their own).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::*;

/// Track `pid` as `spawn_tracked` does, without spawning.
fn track(r: &Arc<Reaper>, pid: i32) -> (Tracked, oneshot::Receiver<ExitStatus>) {
    let mut inner = r.lock();
    let (tx, rx) = oneshot::channel();
    inner.waiting.insert(pid, tx);
    let ticket = inner.children.spawned(pid);
    drop(inner);
    let t = Tracked {
        reaper: r.clone(),
        pid,
        ticket,
    };
    (t, rx)
}

/// Ask for a signal through the reaper, recording instead of sending.
fn request(t: &Tracked, sent: &Mutex<Vec<(i32, c_int)>>) {
    t.reaper
        .signal_tracked(t.pid, t.ticket, 9, |pid, sig| {
            sent.lock().unwrap().push((pid, sig));
            Ok(())
        })
        .unwrap();
}

#[test]
fn reaped_then_kill_requested_sends_nothing() {
    let r = Arc::new(Reaper::default());
    let (t, mut rx) = track(&r, 4242);
    r.lock().record(4242, ExitStatus::Code(97));
    assert_eq!(rx.try_recv().unwrap(), ExitStatus::Code(97));
    let sent = Mutex::new(Vec::new());
    request(&t, &sent);
    assert!(sent.lock().unwrap().is_empty());
}

#[test]
fn kill_before_reaping_is_sent_and_after_is_not() {
    let r = Arc::new(Reaper::default());
    let (t, rx) = track(&r, 4243);
    let sent = Mutex::new(Vec::new());
    request(&t, &sent);
    assert_eq!(*sent.lock().unwrap(), vec![(4243, 9)]);
    // The waiter stopped waiting: the status is kept as not seen; still no signal.
    drop(rx);
    r.lock().record(4243, ExitStatus::Signal(9));
    assert_eq!(
        r.lock().children.state(4243, t.ticket),
        Some(super::super::children::ChildState::Exited(
            ExitStatus::Signal(9)
        ))
    );
    request(&t, &sent);
    assert_eq!(sent.lock().unwrap().len(), 1);
}

#[test]
fn a_kill_during_reaping_waits_for_it_then_sends_nothing() {
    let r = Arc::new(Reaper::default());
    let (t, _rx) = track(&r, 4244);
    let t = Arc::new(t);
    let sent = Arc::new(Mutex::new(Vec::new()));
    // The reaper is reaping (it holds its lock across waitpid and the record).
    let reaping = r.lock();
    let killer = {
        let (t, sent) = (t.clone(), sent.clone());
        std::thread::spawn(move || request(&t, &sent))
    };
    std::thread::sleep(Duration::from_millis(50));
    assert!(
        sent.lock().unwrap().is_empty(),
        "the kill waited for the reap"
    );
    let mut reaping = reaping;
    reaping.record(4244, ExitStatus::Code(0));
    drop(reaping);
    killer.join().unwrap();
    assert!(sent.lock().unwrap().is_empty());
}

#[test]
fn dropping_the_reference_forgets_the_child() {
    let r = Arc::new(Reaper::default());
    let (old, _rx) = track(&r, 4245);
    r.lock().record(4245, ExitStatus::Code(97));
    // The pid is reused by a new child of ours while the old reference is held.
    let (new, _rx2) = track(&r, 4245);
    let sent = Mutex::new(Vec::new());
    request(&old, &sent);
    assert!(sent.lock().unwrap().is_empty());
    drop(old);
    request(&new, &sent);
    assert_eq!(*sent.lock().unwrap(), vec![(4245, 9)]);
    drop(new);
    assert!(r.lock().children.is_empty());
}

/// Not a test of its own: the child process of `a_real_child_is_killed_once`.
#[test]
fn sleeper() {
    if std::env::var_os("JAILDAEMON_TEST_SLEEPER").is_some() {
        std::thread::sleep(Duration::from_secs(30));
    }
}

#[test]
fn a_real_child_is_killed_through_its_gate_once() {
    let r = Arc::new(Reaper::default());
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "daemon::reaper::tests::sleeper",
        "--test-threads=1",
    ])
    .env("JAILDAEMON_TEST_SLEEPER", "1")
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null());
    let (p, mut rx) = r.spawn_tracked(&mut cmd).unwrap();
    assert!(!p.has_pidfd());
    p.kill().unwrap();
    // Reap this very pid (never waitpid(-1) here) and record it as the reaper does.
    let st = sys::wait_child(p.pid, true).unwrap().unwrap();
    assert_eq!(st, ExitStatus::Signal(9));
    r.lock().record(p.pid, st);
    assert_eq!(rx.try_recv().unwrap(), ExitStatus::Signal(9));
    // Reaped: a second kill sends nothing (the pid may be someone else's now).
    p.kill().unwrap();
    drop(p);
    assert!(r.lock().children.is_empty());
}
