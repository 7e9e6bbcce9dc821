//! The helper's side of the protocol (see the module doc of [`super`]): read the
//! parameters, attach, fork the probe (Linux), hand it over. Run either by an exec'd
//! helper (descriptor 3, FreeBSD) or by a worker the spawner forked (Linux).

#[cfg(target_os = "linux")]
use std::os::fd::AsRawFd;
use std::os::fd::OwnedFd;

use std::time::Duration;

use super::{HelperRequest, ProbeParams, HELPER_TIMEOUT, MAX_MESSAGE, TRIGGER_EXIT};
use crate::jail::handoff::{encode, Handoff};
use crate::sys::unix as sys;

/// Serve one probe on `sock`, the daemon's end of which waits for the handoff.
/// `argv_area` is where the command line of a forked worker is (the title is written
/// there, so that the probe shows it from its first instant); `None` for an exec'd
/// helper, whose argv[0] is already the title.
///
/// Nothing is done for a daemon that has given up (past the request's deadline, or
/// its end of `sock` closed or shut down): checked before the title is shown, before
/// attaching, and before the probe is forked and handed over. The probe's own setup
/// is waited for no later than the deadline.
pub(super) fn serve(sock: OwnedFd, argv_area: Option<sys::ArgvArea>) -> ! {
    sys::block_sighup();
    let fail = |h: Handoff| -> ! {
        let _ = sys::send_with_fds(&sock, &encode(&h), &[]);
        sys::exit_now(1);
    };
    let (params, deadline_ms) = match sys::recv_with_fds(&sock, MAX_MESSAGE, HELPER_TIMEOUT) {
        Ok(Some((bytes, fds))) if fds.is_empty() => match serde_json::from_slice(&bytes) {
            Ok(HelperRequest {
                params,
                deadline_ms,
            }) => (params, deadline_ms),
            Err(e) => fail(Handoff::Failed {
                step: format!("bad parameters: {e}"),
                errno: 0,
            }),
        },
        _ => fail(Handoff::Failed {
            step: "no parameters on descriptor 3".into(),
            errno: 0,
        }),
    };
    // Time left before the daemon gives up; none when it has already (nobody to
    // answer: leave quietly).
    let left = || -> Duration {
        let now = sys::monotonic_ms();
        if now >= deadline_ms || sys::peer_gone(&sock) {
            return Duration::ZERO;
        }
        Duration::from_millis(deadline_ms - now)
    };
    let give_up_if_late = || {
        if left().is_zero() {
            sys::exit_now(1);
        }
    };
    give_up_if_late();
    if let Some(area) = argv_area {
        set_cmdline(area, &params.title).unwrap_or_else(|h| fail(h));
    }
    if let Err(e) = sys::make_untraceable() {
        fail(Handoff::failed("make the probe untraceable", &e));
    }
    if let Err(e) = crate::jail::attach(&params.jid.to_string()) {
        fail(Handoff::Failed {
            step: format!("cannot attach to jail {}: {e}", params.jid),
            errno: 0,
        });
    }
    // Attaching may wait (the registry's lock).
    give_up_if_late();
    #[cfg(target_os = "linux")]
    {
        let (pidfd, report) = match fork_probe(&params, &sock) {
            Ok(x) => x,
            Err(h) => fail(h),
        };
        match wait_report(report, left().min(HELPER_TIMEOUT)) {
            Handoff::Ready if left().is_zero() => {
                // Armed, but nobody waits for it any more.
                let _ = sys::pidfd_kill(&pidfd);
                sys::exit_now(1);
            }
            // A send that fails (the daemon shut its end down meanwhile) leaves the
            // probe to us: killed. One that succeeds is read by the daemon, even past
            // its deadline (then to kill it).
            Handoff::Ready => {
                if let Err(e) =
                    sys::send_with_fds(&sock, &encode(&Handoff::Ready), &[pidfd.as_raw_fd()])
                {
                    let _ = sys::pidfd_kill(&pidfd);
                    fail(Handoff::failed("hand the probe over", &e));
                }
                sys::exit_now(0);
            }
            h => {
                let _ = sys::pidfd_kill(&pidfd);
                fail(h);
            }
        }
    }
    #[cfg(target_os = "freebsd")]
    {
        if let Err(h) = become_probe(&params) {
            fail(h);
        }
        if sys::send_with_fds(&sock, &encode(&Handoff::Ready), &[]).is_err() {
            sys::exit_now(1);
        }
        drop(sock);
        drop(params);
        arm()
    }
}

#[cfg(target_os = "linux")]
fn set_cmdline(area: sys::ArgvArea, title: &str) -> Result<(), Handoff> {
    sys::set_cmdline(area, title).map_err(|e| Handoff::failed("show the probe's title", &e))
}

#[cfg(not(target_os = "linux"))]
fn set_cmdline(_area: sys::ArgvArea, _title: &str) -> Result<(), Handoff> {
    Ok(())
}

/// The probe's own setup after attach: session, credentials, title.
fn become_probe(params: &ProbeParams) -> Result<(), Handoff> {
    sys::probe_signals();
    sys::setsid().map_err(|e| Handoff::failed("setsid", &e))?;
    let gid = params.gid.unwrap_or(0);
    let uid = params.uid.unwrap_or(0);
    sys::drop_privileges(uid, gid, &[])
        .map_err(|e| Handoff::failed(format!("cannot set uid {uid} gid {gid}"), &e))?;
    // A credential change resets dumpability to fs.suid_dumpable: set it again.
    sys::make_untraceable().map_err(|e| Handoff::failed("make the probe untraceable", &e))?;
    sys::set_title(&params.title);
    Ok(())
}

/// Close everything from the host and wait for the trigger.
fn arm() -> ! {
    sys::close_fds_from(0);
    sys::stdio_to_devnull();
    sys::wait_for_sighup_from_process();
    sys::exit_now(TRIGGER_EXIT);
}

/// Fork the probe inside the jail. Returns its pidfd and the read end of its report
/// pipe.
#[cfg(target_os = "linux")]
fn fork_probe(params: &ProbeParams, sock: &OwnedFd) -> Result<(OwnedFd, OwnedFd), Handoff> {
    let (r, w) = sys::pipe().map_err(|e| Handoff::failed("pipe", &e))?;
    // The helper is single-threaded: fork is fine here.
    match sys::fork() {
        Err(e) => Err(Handoff::failed("fork into the jail", &e)),
        Ok(sys::Forked::Child) => {
            // The handoff channel must not live in a process the jail can see.
            sys::close_fd(sock.as_raw_fd());
            sys::close_fd(r.as_raw_fd());
            let report = |h: &Handoff| {
                let _ = sys::write_all_fd(w.as_raw_fd(), &encode(h));
            };
            // A helper killed by the daemon's timeout takes the half-made probe with
            // it. Asked for before and after the credential change, which clears it.
            sys::die_with_parent();
            let setup = become_probe(params).map(|()| {
                sys::die_with_parent();
            });
            match setup {
                Ok(()) => {
                    sys::live_on_parent_death();
                    report(&Handoff::Ready);
                    arm()
                }
                Err(h) => {
                    report(&h);
                    sys::exit_now(1)
                }
            }
        }
        Ok(sys::Forked::Parent(pid)) => {
            drop(w);
            // Our unreaped child: its pid cannot name anything else.
            let fd = sys::pidfd_open(pid).map_err(|e| {
                let _ = sys::kill_now(pid);
                Handoff::failed("pidfd_open of the probe", &e)
            })?;
            Ok((fd, r))
        }
    }
}

/// The probe's report, or a failure when it says nothing within `wait`.
#[cfg(target_os = "linux")]
fn wait_report(r: OwnedFd, wait: Duration) -> Handoff {
    match sys::read_with_timeout(&r, MAX_MESSAGE, wait) {
        Ok(Some(bytes)) if !bytes.is_empty() => {
            serde_json::from_slice(&bytes).unwrap_or(Handoff::Failed {
                step: "the probe sent an unreadable report".into(),
                errno: 0,
            })
        }
        Ok(Some(_)) => Handoff::Failed {
            step: "the probe ended during setup".into(),
            errno: 0,
        },
        Ok(None) => Handoff::Failed {
            step: format!(
                "the probe did not finish setting up within {} s (stopped from inside the jail?)",
                wait.as_secs_f32().round()
            ),
            errno: nix::errno::Errno::ETIMEDOUT as i32,
        },
        Err(e) => Handoff::failed("reading the probe's report", &e),
    }
}
