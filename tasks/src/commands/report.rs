//! `optbench report`: the claims and tables of a results folder (markdown, CSV, LaTeX).

use std::path::PathBuf;

/// Options of `optbench report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// A results folder (an experiment's, or the whole `results/`).
    pub dir: PathBuf,
}

pub fn run(args: &ReportArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.dir.is_dir(), "{} is not a folder of results", args.dir.display());
    let report = crate::report::build(&args.dir);
    anyhow::ensure!(
        !report.rows.is_empty() || !report.unreadable.is_empty(),
        "no result files (seed-*.json) under {}",
        args.dir.display()
    );
    print!("{}", report.markdown());
    for warning in report.data_warnings() {
        eprintln!("warning: {warning}");
    }
    let (md, csv) = report.write(&args.dir)?;
    let tex = crate::report::tex_path(&args.dir);
    println!("\nwritten: {}, {} and {}", md.display(), csv.display(), tex.display());
    Ok(())
}
