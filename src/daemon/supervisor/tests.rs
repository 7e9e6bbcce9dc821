//! The supervisor's state machine against the recording fake host ([`super::fake`]).

use std::collections::VecDeque;
use std::sync::Arc;

use super::fake::{Ev, Fake, Life, Script};
use super::*;

const JID: i32 = 5;
const SECOND: Duration = Duration::from_secs(1);
const KILLED: ExitStatus = ExitStatus::Signal(9);

fn supervisor(respawn: Respawn) -> Supervisor {
    Supervisor {
        id: 1,
        spec: ProbeSpec {
            command: "echo fired".into(),
            jail: "www".into(),
            respawn,
            uid: None,
            gid: None,
            title: Some("t".into()),
            rate: None,
            max_running: None,
            wait: false,
        },
        jail: "www".into(),
        arm: Arm {
            jid: JID,
            title: "t".into(),
            uid: None,
            gid: None,
        },
        wait: false,
        wait_first: false,
    }
}

/// A control the test holds the other ends of.
fn control() -> (
    Control,
    mpsc::Sender<oneshot::Sender<()>>,
    watch::Sender<bool>,
) {
    let (cancel_tx, cancel) = mpsc::channel(1);
    let (shutdown_tx, shutdown) = watch::channel(false);
    (Control { cancel, shutdown }, cancel_tx, shutdown_tx)
}

/// Run a supervisor to its end, its first probe living `first`.
async fn run_to_end(fake: &Arc<Fake>, respawn: Respawn, first: Life) -> End {
    let (mut ctl, _cancel, _shutdown) = control();
    let probe = fake.probe(first);
    run(fake, supervisor(respawn), Some(probe), &mut ctl).await
}

/// Run a supervisor on its own task; the test holds its cancel and shutdown ends.
fn spawn_run(
    fake: &Arc<Fake>,
    respawn: Respawn,
    first: Life,
) -> (
    tokio::task::JoinHandle<End>,
    mpsc::Sender<oneshot::Sender<()>>,
    watch::Sender<bool>,
) {
    let (mut ctl, cancel, shutdown) = control();
    let probe = fake.probe(first);
    let f = fake.clone();
    let task =
        tokio::spawn(async move { run(&f, supervisor(respawn), Some(probe), &mut ctl).await });
    (task, cancel, shutdown)
}

fn respawned(ev: &Ev) -> bool {
    matches!(ev, Ev::Note(Note::Respawned { .. }))
}

#[tokio::test]
async fn single_shot_runs_the_command_once_and_ends() {
    let fake = Fake::new(Script {
        commands_end_at_once: true,
        jail: Some(JID),
        ..Script::default()
    });
    let end = run_to_end(&fake, Respawn::Never, Life::Trigger(SECOND)).await;
    assert!(matches!(end, End::Done), "{end:?}");
    assert_eq!(
        fake.log(),
        [
            Ev::Note(Note::Triggered),
            Ev::Command(JID),
            Ev::CommandEnded
        ]
    );
}

#[tokio::test]
async fn single_shot_waits_for_its_command() {
    let fake = Fake::new(Script::default());
    let (task, _cancel, _shutdown) = spawn_run(&fake, Respawn::Never, Life::Trigger(SECOND));
    settle().await;
    assert!(
        !task.is_finished(),
        "a single-shot probe ends with its command"
    );
    fake.finish_commands();
    assert!(matches!(task.await.unwrap(), End::Done));
}

/// Let the spawned supervisor run until it blocks.
async fn settle() {
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn respawn_after_command_waits_for_the_command() {
    let fake = Fake::new(Script {
        lives: [Life::Dies(SECOND, KILLED)].into(),
        jail: Some(JID),
        ..Script::default()
    });
    let (task, _cancel, _shutdown) =
        spawn_run(&fake, Respawn::AfterCommand, Life::Trigger(2 * SECOND));
    settle().await;
    assert_eq!(fake.log(), [Ev::Note(Note::Triggered), Ev::Command(JID)]);
    assert!(!task.is_finished());
    fake.finish_commands();
    let end = task.await.unwrap();
    assert!(matches!(end, End::Lost(KILLED)), "{end:?}");
    let log = fake.log();
    assert_eq!(
        log[..5],
        [
            Ev::Note(Note::Triggered),
            Ev::Command(JID),
            Ev::CommandEnded,
            Ev::Sleep(Duration::ZERO),
            Ev::Spawn(JID),
        ]
    );
    assert!(respawned(&log[5]), "{log:?}");
    assert_eq!(log.len(), 6);
}

#[tokio::test]
async fn respawn_immediately_does_not_wait_for_the_command() {
    let fake = Fake::new(Script {
        lives: [Life::Dies(SECOND, KILLED)].into(),
        jail: Some(JID),
        ..Script::default()
    });
    let end = run_to_end(&fake, Respawn::Immediately, Life::Trigger(2 * SECOND)).await;
    assert!(matches!(end, End::Lost(KILLED)), "{end:?}");
    let log = fake.log();
    assert_eq!(
        log[..4],
        [
            Ev::Note(Note::Triggered),
            Ev::Command(JID),
            Ev::Sleep(Duration::ZERO),
            Ev::Spawn(JID),
        ]
    );
    assert!(respawned(&log[4]));
    assert!(
        !log.contains(&Ev::CommandEnded),
        "respawned while the command still runs"
    );
}

#[tokio::test]
async fn quick_fires_back_off_up_to_the_cap_and_a_steady_probe_resets() {
    let quick = Life::Trigger(Duration::ZERO);
    let mut lives: VecDeque<Life> = std::iter::repeat_n(quick, 10).collect();
    lives.extend([Life::Trigger(2 * SECOND), quick, Life::Dies(SECOND, KILLED)]);
    let fake = Fake::new(Script {
        lives,
        jail: Some(JID),
        commands_end_at_once: true,
        ..Script::default()
    });
    let end = run_to_end(&fake, Respawn::Immediately, quick).await;
    assert!(matches!(end, End::Lost(KILLED)), "{end:?}");
    let ms = |m| Duration::from_millis(m);
    assert_eq!(
        fake.sleeps(),
        [
            ms(100),
            ms(200),
            ms(400),
            ms(800),
            ms(1600),
            ms(3200),
            ms(6400),
            ms(12800),
            ms(25600),
            BACKOFF_MAX,
            BACKOFF_MAX,
            Duration::ZERO,
            BACKOFF_MIN,
        ]
    );
}

#[tokio::test]
async fn failed_respawns_are_retried_then_succeed() {
    let fake = Fake::new(Script {
        lives: [Life::Dies(SECOND, KILLED)].into(),
        spawn_fails: [true, true].into(),
        jail: Some(JID),
        commands_end_at_once: true,
        ..Script::default()
    });
    let end = run_to_end(&fake, Respawn::AfterCommand, Life::Trigger(2 * SECOND)).await;
    assert!(matches!(end, End::Lost(KILLED)), "{end:?}");
    let log = fake.log();
    assert_eq!(
        log[3..9],
        [
            Ev::Sleep(Duration::ZERO),
            Ev::SpawnFailed(JID),
            Ev::Sleep(REARM_POLL),
            Ev::SpawnFailed(JID),
            Ev::Sleep(REARM_POLL),
            Ev::Spawn(JID),
        ]
    );
    assert!(respawned(&log[9]));
}

#[tokio::test]
async fn three_failed_respawns_drop_the_probe() {
    let fake = Fake::new(Script {
        spawn_fails: [true, true, true, false].into(),
        jail: Some(JID),
        commands_end_at_once: true,
        ..Script::default()
    });
    let end = run_to_end(&fake, Respawn::AfterCommand, Life::Trigger(2 * SECOND)).await;
    assert!(matches!(end, End::RespawnFailed), "{end:?}");
    let log = fake.log();
    assert_eq!(
        log.iter()
            .filter(|e| matches!(e, Ev::SpawnFailed(_)))
            .count(),
        RESPAWN_TRIES as usize
    );
    assert!(!log.iter().any(|e| matches!(e, Ev::Spawn(_))));
}

#[tokio::test]
async fn a_recreated_jail_is_found_by_name_with_its_new_jid() {
    let fake = Fake::new(Script {
        lives: [Life::Dies(SECOND, KILLED)].into(),
        lookups: [None, None].into(),
        jail: Some(7),
        commands_end_at_once: true,
        ..Script::default()
    });
    let end = run_to_end(&fake, Respawn::AfterCommand, Life::Trigger(2 * SECOND)).await;
    assert!(matches!(end, End::Lost(KILLED)), "{end:?}");
    let log = fake.log();
    assert_eq!(
        log[3..],
        [
            Ev::Sleep(Duration::ZERO),
            Ev::Note(Note::WaitingForJail),
            Ev::Sleep(REARM_POLL),
            Ev::Note(Note::WaitingForJail),
            Ev::Sleep(REARM_POLL),
            Ev::Spawn(7),
            Ev::Note(Note::Respawned { jid: 7, pid: 101 }),
        ]
    );
}

#[tokio::test]
async fn a_jail_that_stays_gone_ends_the_probe() {
    let fake = Fake::new(Script {
        jail: None,
        commands_end_at_once: true,
        ..Script::default()
    });
    let end = run_to_end(&fake, Respawn::Immediately, Life::Trigger(2 * SECOND)).await;
    assert!(matches!(end, End::JailGone), "{end:?}");
    let log = fake.log();
    assert!(!log.iter().any(|e| matches!(e, Ev::Spawn(_))));
    assert!(log.contains(&Ev::Note(Note::WaitingForJail)));
    // Looked for over the whole grace period, then gave up.
    let waited: Duration = fake.sleeps().iter().sum();
    assert!(waited >= JAIL_RETURN_GRACE, "{waited:?}");
    assert!(waited < JAIL_RETURN_GRACE + 2 * REARM_POLL, "{waited:?}");
}

#[tokio::test]
async fn a_probe_that_ends_without_a_trigger_is_lost() {
    for st in [KILLED, ExitStatus::Code(0), ExitStatus::Code(1)] {
        for respawn in [Respawn::Never, Respawn::AfterCommand, Respawn::Immediately] {
            let fake = Fake::new(Script {
                jail: Some(JID),
                commands_end_at_once: true,
                ..Script::default()
            });
            let end = run_to_end(&fake, respawn, Life::Dies(SECOND, st)).await;
            assert!(matches!(end, End::Lost(s) if s == st), "{end:?}");
            assert_eq!(fake.log(), Vec::<Ev>::new(), "no command, no respawn");
        }
    }
}

#[tokio::test]
async fn removal_and_shutdown_kill_the_armed_probe() {
    let fake = Fake::new(Script::default());
    let (task, cancel, _shutdown) = spawn_run(&fake, Respawn::AfterCommand, Life::Forever);
    let (ack, _acked) = oneshot::channel();
    cancel.send(ack).await.unwrap();
    assert!(matches!(task.await.unwrap(), End::Removed(Some(_))));
    assert_eq!(fake.log(), [Ev::Kill]);

    let fake = Fake::new(Script::default());
    let (task, _cancel, shutdown) = spawn_run(&fake, Respawn::Immediately, Life::Forever);
    shutdown.send(true).unwrap();
    assert!(matches!(task.await.unwrap(), End::Shutdown));
    assert_eq!(fake.log(), [Ev::Kill]);
}

#[test]
fn backoff_grows_from_the_minimum_and_is_capped() {
    let quick = Duration::from_millis(10);
    assert_eq!(next_backoff(Duration::ZERO, quick), BACKOFF_MIN);
    assert_eq!(next_backoff(BACKOFF_MIN, quick), 2 * BACKOFF_MIN);
    assert_eq!(next_backoff(BACKOFF_MAX, quick), BACKOFF_MAX);
    assert_eq!(next_backoff(BACKOFF_MAX, SHORT_LIFE), Duration::ZERO);
}

#[tokio::test]
async fn a_waiting_probe_waits_past_the_grace_and_follows_its_jail() {
    let mut lookups: VecDeque<Option<i32>> = std::iter::repeat_n(None, 150).collect();
    // the jail appears (jid 9); the probe dies with it; it comes back as jid 11
    lookups.extend([Some(9), None, None]);
    let fake = Fake::new(Script {
        lives: [Life::Dies(SECOND, KILLED), Life::Trigger(SECOND)].into(),
        lookups,
        jail: Some(11),
        commands_end_at_once: true,
        ..Script::default()
    });
    let (mut ctl, _cancel, _shutdown) = control();
    let mut sup = supervisor(Respawn::Never);
    sup.wait = true;
    let end = run(&fake, sup, None, &mut ctl).await;
    assert!(matches!(end, End::Done), "{end:?}");
    let log = fake.log();
    let spawns: Vec<_> = log.iter().filter(|e| matches!(e, Ev::Spawn(_))).collect();
    assert_eq!(spawns, [&Ev::Spawn(9), &Ev::Spawn(11)]);
    assert!(
        log.contains(&Ev::Sleep(WAIT_POLL)),
        "no slow poll past the grace"
    );
    let waited: Duration = fake.sleeps().iter().sum();
    assert!(waited > JAIL_RETURN_GRACE, "{waited:?}");
    assert_eq!(log.iter().filter(|e| **e == Ev::Command(11)).count(), 1);
}

#[tokio::test]
async fn a_waiting_probe_killed_in_a_jail_that_stays_is_lost() {
    let fake = Fake::new(Script {
        jail: Some(JID),
        ..Script::default()
    });
    let (mut ctl, _cancel, _shutdown) = control();
    let mut sup = supervisor(Respawn::AfterCommand);
    sup.wait = true;
    let probe = fake.probe(Life::Dies(SECOND, KILLED));
    let end = run(&fake, sup, Some(probe), &mut ctl).await;
    assert!(matches!(end, End::Lost(KILLED)), "{end:?}");
    assert!(!fake.log().iter().any(|e| matches!(e, Ev::Spawn(_))));
}

#[tokio::test]
async fn a_restored_probe_waits_and_retries_at_first_then_has_the_grace_again() {
    // restored without -w: its jail is missing past the grace, then its setups fail
    // four times (retried, not dropped); once armed and fired, a jail that stays
    // gone ends it after the grace, as without -w
    let mut lookups: VecDeque<Option<i32>> = std::iter::repeat_n(None, 150).collect();
    lookups.extend(std::iter::repeat_n(Some(9), 5));
    let fake = Fake::new(Script {
        lives: [Life::Trigger(SECOND)].into(),
        spawn_fails: [true, true, true, true, false].into(),
        lookups,
        jail: None,
        commands_end_at_once: true,
    });
    let (mut ctl, _cancel, _shutdown) = control();
    let mut sup = supervisor(Respawn::Immediately);
    sup.wait_first = true;
    let end = run(&fake, sup, None, &mut ctl).await;
    assert!(matches!(end, End::JailGone), "{end:?}");
    let log = fake.log();
    let failed = log
        .iter()
        .filter(|e| matches!(e, Ev::SpawnFailed(9)))
        .count();
    assert_eq!(failed, 4);
    assert_eq!(log.iter().filter(|e| **e == Ev::Spawn(9)).count(), 1);
    assert_eq!(log.iter().filter(|e| **e == Ev::Command(9)).count(), 1);
}
