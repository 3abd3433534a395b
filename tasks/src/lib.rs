//! Data sets, tasks, the experiment runner and the `optbench` command line of the optbench
//! suite.

pub mod commands;
