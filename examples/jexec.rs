//! `jail::exec` from a program that stays on the host, as the manager runs its
//! `exec_start` hooks: the command's output into a log file, in its own process group,
//! killed with everything it started when it overruns a time limit.
//!
//! `cargo run --release --example jexec -- JAIL SECS LOG command [args...]` (as root)
//! prints `exit N` (jexec's code) or `timeout`. A single-threaded program: see the
//! documentation of `jail::exec`.

use std::time::{Duration, Instant};

use jaildaemon::jail::exec::{self, ExecSpec, ExecStatus, ExecStdio};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [jail, secs, log, command @ ..] = args.as_slice() else {
        return Err("usage: jexec JAIL SECS LOG command [args...]".into());
    };
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    let mut spec = ExecSpec::new(jail.as_str(), command.to_vec());
    spec.stdio = ExecStdio::File(log);
    spec.own_process_group = true;
    let mut child = exec::spawn(spec)?;
    let limit = Duration::from_secs(secs.parse()?);
    let start = Instant::now();
    loop {
        match child.try_wait()? {
            Some(ExecStatus::NotStarted { code, message }) => {
                println!("exit {code} ({message})");
                return Ok(());
            }
            Some(st) => {
                println!("exit {}", st.code());
                return Ok(());
            }
            None if start.elapsed() > limit => {
                child.kill_group()?;
                child.wait()?;
                println!("timeout");
                return Ok(());
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}
