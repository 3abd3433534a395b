//! Data sets, tasks, the experiment runner and the `optbench` command line of the optbench
//! suite. Data flows one way: config -> [`plan`] -> [`runner`] (driving [`task`]s) -> result
//! files -> [`report`].

pub mod bench;
pub mod commands;
pub mod config;
pub mod data;
pub mod plan;
pub mod report;
pub mod runner;
pub mod schedule;
pub mod task;
pub mod util;

/// Process-wide settings the `optbench` binary (and the benchmarks) apply before any tensor op.
///
/// candle's CPU thread pool spins 25,000 times before parking a waiting worker; with the batch
/// thread of the classifiers beside it on a small machine, the spinning steals the cores that
/// work needs (an MNIST epoch took 2.1-2.9 s instead of 1.8-2.0 s on 2 cores). A user's own
/// `CANDLE_BARRIER_POOL_SPIN_LIMIT` wins.
///
/// glibc serves allocations above 32 MB (a ResNet-18 activation at batch 128 is 33.5 MB) with
/// fresh `mmap`s and gives them back on free, so every step page-faults and zeroes its
/// activations again: a third of a ResNet-18 step on the CPU. Keeping freed memory in the heap
/// (no `mmap`, no trimming) took the step from 6.9 s to 4.1 s; the process keeps its peak
/// memory, as a training process does anyway.
pub fn init_process() {
    if std::env::var_os("CANDLE_BARRIER_POOL_SPIN_LIMIT").is_none() {
        // Safe: called first thing in `main`, before any other thread exists.
        std::env::set_var("CANDLE_BARRIER_POOL_SPIN_LIMIT", "1000");
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("OPTBENCH_KEEP_MALLOC").is_none() {
        // SAFETY: mallopt only changes allocator parameters; called before other threads.
        unsafe {
            libc::mallopt(libc::M_MMAP_MAX, 0);
            libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
        }
    }
}
