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
    /// Run the experiments of config files (skips runs already done).
    Run(commands::run::RunArgs),
    /// Where every run of a sweep stands: done, running (locked), failed, missing.
    Status(commands::status::StatusArgs),
    /// Write an sbatch job-array script that runs a sweep on Slurm, one shard per array task.
    Slurm(commands::slurm::SlurmArgs),
    /// Print the runs a config expands into, with their ids; run nothing.
    Plan(commands::plan::PlanArgs),
    /// List every task with its options, defaults and metrics.
    Tasks(commands::tasks::TasksArgs),
    /// Tables (markdown and CSV) of a results folder.
    Report(commands::report::ReportArgs),
    /// Two results folders side by side: per task and optimizer, the difference of means.
    Compare(commands::compare::CompareArgs),
    /// SVG plots of a results folder.
    Plot(commands::plot::PlotArgs),
    /// Every evaluation of every run in long format (CSV and parquet), for pandas or polars.
    Export(commands::export::ExportArgs),
    /// Data sets: list them, fetch them into the caches, verify the caches.
    Data(commands::data::DataArgs),
    /// List every optimizer with its reference, hyperparameters and defaults.
    Optimizers(commands::optimizers::OptimizersArgs),
    /// Replay golden optimizer trajectories recorded from the reference implementations.
    Replay(commands::replay::ReplayArgs),
    /// Time every optimizer's step and the model steps on this machine (with --torch: beside PyTorch).
    Bench(commands::bench::BenchArgs),
}

fn main() -> ExitCode {
    // Die quietly on a closed pipe (`optbench optimizers | head`), like other Unix tools.
    #[cfg(unix)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    tasks::init_process();
    let cli = Cli::parse();
    let outcome = match &cli.command {
        Command::Run(args) => commands::run::run(args),
        Command::Status(args) => commands::status::run(args),
        Command::Slurm(args) => commands::slurm::run(args).map(|()| true),
        Command::Plan(args) => commands::plan::run(args).map(|()| true),
        Command::Tasks(args) => {
            commands::tasks::run(args);
            Ok(true)
        }
        Command::Report(args) => commands::report::run(args).map(|()| true),
        Command::Compare(args) => commands::compare::run(args).map(|()| true),
        Command::Plot(args) => commands::plot::run(args).map(|()| true),
        Command::Export(args) => commands::export::run(args).map(|()| true),
        Command::Data(args) => commands::data::run(args),
        Command::Optimizers(args) => commands::optimizers::run(args).map(|()| true),
        Command::Replay(args) => Ok(commands::replay::run(args)),
        Command::Bench(args) => commands::bench::run(args).map(|()| true),
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
