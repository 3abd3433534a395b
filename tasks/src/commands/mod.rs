//! One module per `optbench` subcommand; `main.rs` only parses the command line.

pub mod compare;
pub mod data;
pub mod optimizers;
pub mod plan;
pub mod plot;
pub mod replay;
pub mod report;
pub mod run;
pub mod slurm;
pub mod status;
pub mod tasks;
