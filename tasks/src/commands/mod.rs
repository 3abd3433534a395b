//! One module per `optbench` subcommand; `main.rs` only parses the command line.

pub mod bench;
pub mod check_kernels;
pub mod compare;
pub mod data;
pub mod export;
pub mod optimizers;
pub mod plan;
pub mod plot;
pub mod replay;
pub mod report;
pub mod run;
pub mod slurm;
pub mod status;
pub mod tasks;
