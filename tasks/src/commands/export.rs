//! `optbench export`: every evaluation of every run under a results folder, in long format
//! (CSV and parquet), for pandas or polars.

use std::path::PathBuf;

use crate::report::export::{self, Format};

/// Options of `optbench export`.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// A results folder (an experiment's, or the whole `results/`).
    pub dir: PathBuf,
    /// The file to write, its extension set by the format (default: DIR/evaluations).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// csv, parquet or both.
    #[arg(long, value_enum, default_value_t = Format::Both)]
    pub format: Format,
}

pub fn run(args: &ExportArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.dir.is_dir(), "{} is not a folder of results", args.dir.display());
    let out = args.out.clone().unwrap_or_else(|| args.dir.join("evaluations"));
    let (files, rows) = export::export(&args.dir, &out, args.format)?;
    for f in files {
        println!("{} ({rows} rows)", f.display());
    }
    Ok(())
}
