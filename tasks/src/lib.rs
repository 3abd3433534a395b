//! Data sets, tasks, the experiment runner and the `optbench` command line of the optbench
//! suite. Data flows one way: config -> [`plan`] -> [`runner`] (driving [`task`]s) -> result
//! files -> [`report`].

pub mod commands;
pub mod config;
pub mod data;
pub mod plan;
pub mod report;
pub mod runner;
pub mod schedule;
pub mod task;
