use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = pogo_node::cmd::Cli::parse();
    match pogo_node::cmd::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", pogo_node::cmd::error_line(&err));
            ExitCode::FAILURE
        }
    }
}
