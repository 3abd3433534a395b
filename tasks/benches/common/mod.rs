//! The benchmarks' command-line flags (each bench a thin wrapper over `tasks::bench`).
// Each bench uses some of these (a module compiled into every bench separately).
#![allow(dead_code)]

/// The value after flag `name` on the command line.
pub fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}

/// The value after flag `name`, parsed, or `default`.
pub fn parsed<T: std::str::FromStr>(name: &str, default: T) -> anyhow::Result<T>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    Ok(arg(name).map(|v| v.parse()).transpose()?.unwrap_or(default))
}

/// The device of `--device` (default cpu).
pub fn device() -> anyhow::Result<candle::Device> {
    tasks::runner::execute::open_device(&arg("--device").unwrap_or_else(|| "cpu".into()))
}
