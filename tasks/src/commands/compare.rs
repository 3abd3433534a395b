//! `optbench compare A B`: two result folders side by side (see [`crate::report::compare`]).

use std::path::PathBuf;

/// Options of `optbench compare`.
#[derive(Debug, clap::Args)]
pub struct CompareArgs {
    /// The first results folder (A).
    pub a: PathBuf,
    /// The second results folder (B); differences are B - A.
    pub b: PathBuf,
}

pub fn run(args: &CompareArgs) -> anyhow::Result<()> {
    for dir in [&args.a, &args.b] {
        anyhow::ensure!(dir.is_dir(), "{} is not a folder of results", dir.display());
    }
    let comparison = crate::report::compare::compare(&args.a, &args.b);
    for (dir, report) in [(&args.a, &comparison.a), (&args.b, &comparison.b)] {
        anyhow::ensure!(
            !report.rows.is_empty() || !report.unreadable.is_empty(),
            "no result files (seed-*.json) under {}",
            dir.display()
        );
        for u in &report.unreadable {
            eprintln!("warning: unreadable result: {u}");
        }
    }
    for w in &comparison.warnings {
        eprintln!("warning: {w}");
    }
    print!("{}", comparison.markdown(&args.a.display().to_string(), &args.b.display().to_string()));
    Ok(())
}
