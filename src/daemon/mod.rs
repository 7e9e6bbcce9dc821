//! The jaildaemon daemon (`jaildaemon -D`).
//!
//! Start-up happens before any thread exists: stray descriptors are closed, a running
//! instance is detected (a ping on the socket, then the pidfile lock), a stale socket
//! is replaced, the socket is bound (mode 0600), and, unless `-F`, the process forks
//! into the background; the parent returns 0 once the child accepts connections. Only
//! then does the async runtime start. The daemon is a subreaper: it reaps every probe
//! and command itself ([`reaper`]).

pub mod client;
pub mod pidfile;
pub mod probes;
pub mod reaper;
pub mod server;

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

use crate::sys::unix as sys;

/// Default socket of the original jaildaemon.
pub const DEFAULT_SOCKET: &str = "/var/run/jaildaemon.pipe";
/// Default pidfile of the original jaildaemon.
pub const DEFAULT_PIDFILE: &str = "/var/run/jaildaemon.pid";

#[derive(Debug, Clone)]
pub struct Options {
    pub socket: PathBuf,
    pub pidfile: PathBuf,
    /// `-F`: stay in the foreground, log to stderr.
    pub foreground: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("another jaildaemon (pid {pid}) is running on {}", socket.display())]
    AlreadyRunning { pid: u32, socket: PathBuf },
    #[error("pidfile {} is locked by another jaildaemon{}", path.display(), pid.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    PidfileLocked { path: PathBuf, pid: Option<i32> },
    #[error("pidfile {}: {source}", path.display())]
    Pidfile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} exists and is not a socket; refusing to replace it", .0.display())]
    NotASocket(PathBuf),
    #[error("socket {}: {source}", path.display())]
    Socket {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("the daemon failed to start: {0}")]
    Child(String),
}

fn io(what: &str) -> impl FnOnce(std::io::Error) -> DaemonError + '_ {
    move |source| DaemonError::Io {
        what: what.to_string(),
        source,
    }
}

/// The path the daemon execs as the probe helper: its own binary.
fn own_exe() -> PathBuf {
    if cfg!(target_os = "linux") {
        PathBuf::from("/proc/self/exe")
    } else {
        std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/usr/local/sbin/jaildaemon"))
    }
}

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
    let sock_err = |source| DaemonError::Socket {
        path: opts.socket.clone(),
        source,
    };
    let listener = {
        // A umask of 077 (through nix, no unsafe) keeps the socket private from the moment it exists.
        let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
        let l = std::os::unix::net::UnixListener::bind(&opts.socket);
        nix::sys::stat::umask(old);
        l.map_err(sock_err)?
    };
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
    let res = rt.block_on(main_loop(listener, &mut ready, opts, capacity, nofile_soft));
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

/// Probes the daemon can hold with `nofile` descriptors: one pidfd each, less a
/// reserve for connections, commands' pipes and the runtime (at least a quarter of
/// the limit is left for probes).
pub fn probe_capacity(nofile: u64) -> usize {
    nofile
        .saturating_sub(server::MAX_CONNECTIONS as u64 + 256)
        .max(nofile / 4) as usize
}

async fn main_loop(
    listener: std::os::unix::net::UnixListener,
    ready: &mut Option<fs::File>,
    opts: &Options,
    capacity: usize,
    nofile_soft: u64,
) -> Result<(), DaemonError> {
    let reaper = Arc::new(reaper::Reaper::default());
    let mut sigchld = signal(SignalKind::child()).map_err(io("SIGCHLD handler"))?;
    let mut sigterm = signal(SignalKind::terminate()).map_err(io("SIGTERM handler"))?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(io("SIGINT handler"))?;
    let mut sighup = signal(SignalKind::hangup()).map_err(io("SIGHUP handler"))?;
    let listener = tokio::net::UnixListener::from_std(listener).map_err(io("socket"))?;
    let mgr = probes::Manager::new(reaper.clone(), own_exe(), capacity, nofile_soft);
    let r2 = reaper.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = sigchld.recv() => {}
                _ = tick.tick() => {}
            }
            r2.reap();
        }
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let server = tokio::spawn(server::serve(listener, mgr.clone(), stop_rx));
    if let Some(mut r) = ready.take() {
        let _ = r.write_all(b"R");
    }
    tracing::info!(pid = std::process::id(), socket = %opts.socket.display(), pidfile = %opts.pidfile.display(), "jaildaemon ready");
    let why = loop {
        tokio::select! {
            _ = sigterm.recv() => break "SIGTERM",
            _ = sigint.recv() => break "SIGINT",
            _ = sighup.recv() => tracing::info!("SIGHUP to the daemon ignored: it never runs a command"),
        }
    };
    tracing::info!(signal = why, "shutting down: terminating every probe");
    let _ = stop_tx.send(true);
    mgr.shutdown().await;
    let _ = server.await;
    reaper.reap();
    Ok(())
}
