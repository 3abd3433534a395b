//! `optbench`: trains models with many optimizers and reports which wins.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tasks::commands;

#[derive(Debug, Parser)]
#[command(name = "optbench", version, about = "A benchmark suite of adaptive optimizers on candle")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Replay golden optimizer trajectories recorded from the reference implementations.
    Replay(commands::replay::ReplayArgs),
    /// List every optimizer with its reference, hyperparameters and defaults.
    Optimizers(commands::optimizers::OptimizersArgs),
}

fn main() -> ExitCode {
    // Die quietly on a closed pipe (`optbench optimizers | head`), like other Unix tools.
    #[cfg(unix)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    let outcome = match &cli.command {
        Command::Replay(args) => Ok(commands::replay::run(args)),
        Command::Optimizers(args) => commands::optimizers::run(args).map(|()| true),
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
