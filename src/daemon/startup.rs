//! Start-up, before any thread exists: stray descriptors are closed, a running
//! instance is detected (a ping on the socket, then the pidfile lock), a stale socket
//! is replaced, the socket is bound (mode 0600), and, unless `-F`, the process forks
//! into the background; the parent returns 0 once the child accepts connections. Only
//! then does the async runtime start ([`super::main_loop`]).

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};

use super::{client, io, main_loop, pidfile, probe_capacity, DaemonError, Options};
use crate::sys::unix as sys;

/// Run the daemon until SIGTERM or SIGINT.
pub fn run(opts: &Options) -> Result<(), DaemonError> {
    sys::close_fds_from(3);
    // One descriptor per armed probe: take every descriptor the hard limit allows.
    let (nofile_soft, nofile) = sys::raise_nofile_limit().map_err(io("raising RLIMIT_NOFILE"))?;
    if let Some(pid) = client::ping(&opts.socket) {
        return Err(DaemonError::AlreadyRunning {
            pid,
            socket: opts.socket.clone(),
        });
    }
    if let Some(why) = pidfile::unsafe_dir(
        opts.socket
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new(".")),
    ) {
        return Err(DaemonError::Socket {
            path: opts.socket.clone(),
            source: std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                format!("{why}: refusing to put the socket there"),
            ),
        });
    }
    let mut pidfile = pidfile::Pidfile::open(&opts.pidfile)?;
    match fs::symlink_metadata(&opts.socket) {
        Ok(m) if m.file_type().is_socket() => {
            tracing::info!(socket = %opts.socket.display(), "replacing a stale socket (nobody answers on it)");
            fs::remove_file(&opts.socket).map_err(|source| DaemonError::Socket {
                path: opts.socket.clone(),
                source,
            })?;
        }
        Ok(_) => return Err(DaemonError::NotASocket(opts.socket.clone())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(DaemonError::Socket {
                path: opts.socket.clone(),
                source,
            })
        }
    }
    // The declared probes and the state file (locked: one daemon per state file).
    let declared = super::load_config(opts)?;
    let state = std::sync::Arc::new(super::state::StateFile::open(&opts.state)?);
    let saved = state.load()?;
    let sock_err = |source| DaemonError::Socket {
        path: opts.socket.clone(),
        source,
    };
    // Private (umask 077) from the moment it exists.
    let listener = sys::bind_private_socket(&opts.socket).map_err(sock_err)?;
    fs::set_permissions(&opts.socket, fs::Permissions::from_mode(0o600)).map_err(sock_err)?;
    listener.set_nonblocking(true).map_err(sock_err)?;
    let sock_id = fs::metadata(&opts.socket)
        .map(|m| (m.dev(), m.ino()))
        .map_err(sock_err)?;

    let (ready_r, ready_w) = sys::pipe().map_err(io("pipe"))?;
    if !opts.foreground {
        match sys::fork().map_err(io("fork"))? {
            sys::Forked::Parent(_) => {
                drop(ready_w);
                let mut msg = String::new();
                let _ = fs::File::from(ready_r).read_to_string(&mut msg);
                if msg == "R" {
                    sys::exit_now(0);
                }
                pidfile.close();
                let msg = if msg.is_empty() {
                    "it exited during start-up (see syslog)".to_string()
                } else {
                    msg
                };
                eprintln!("jaildaemon: {}", DaemonError::Child(msg));
                sys::exit_now(1);
            }
            sys::Forked::Child => {
                drop(ready_r);
                let _ = sys::setsid();
                let _ = std::env::set_current_dir("/");
                sys::stdio_to_devnull();
                crate::logging::to_syslog();
            }
        }
    } else {
        drop(ready_r);
    }
    let mut ready = Some(fs::File::from(ready_w));
    let fail = |ready: &mut Option<fs::File>, e: &DaemonError| {
        if let Some(mut r) = ready.take() {
            let _ = r.write_all(e.to_string().as_bytes());
        }
    };
    if let Err(source) = pidfile.write() {
        let e = DaemonError::Pidfile {
            path: opts.pidfile.clone(),
            source,
        };
        fail(&mut ready, &e);
        return Err(e);
    }
    if let Err(e) = sys::become_subreaper() {
        tracing::warn!(error = %e, "could not become a subreaper; probes are still watched through their helper");
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(source) => {
            let e = DaemonError::Io {
                what: "starting the runtime".into(),
                source,
            };
            fail(&mut ready, &e);
            return Err(e);
        }
    };
    let capacity = probe_capacity(nofile);
    tracing::info!(
        nofile,
        capacity,
        "descriptor limit raised to the hard limit"
    );
    let durable = super::Durable {
        state,
        saved,
        declared,
    };
    let res = rt.block_on(main_loop(
        listener,
        &mut ready,
        opts,
        capacity,
        nofile_soft,
        durable,
    ));
    if let Err(e) = &res {
        fail(&mut ready, e);
    }
    // Remove the socket only if it is still ours.
    if fs::metadata(&opts.socket).map(|m| (m.dev(), m.ino())).ok() == Some(sock_id) {
        let _ = fs::remove_file(&opts.socket);
    }
    drop(pidfile);
    tracing::info!("jaildaemon stopped");
    res
}
