//! `jaildaemon`: see `jaildaemon::cli::jaildaemon`.
fn main() -> std::process::ExitCode {
    eprintln!("jaildaemon: not yet");
    std::process::ExitCode::from(1)
}
