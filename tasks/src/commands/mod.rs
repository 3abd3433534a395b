//! One module per `optbench` subcommand; `main.rs` only parses the command line.

pub mod optimizers;
pub mod replay;
