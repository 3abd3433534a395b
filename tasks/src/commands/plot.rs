//! `optbench plot`: SVG plots of a results folder (toy2d paths over contours, metric curves).

use std::path::PathBuf;

/// Options of `optbench plot`.
#[derive(Debug, clap::Args)]
pub struct PlotArgs {
    /// A results folder.
    pub dir: PathBuf,
    /// Where to write the SVG files (default: DIR/plots).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn run(args: &PlotArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.dir.is_dir(), "{} is not a folder of results", args.dir.display());
    let out = args.out.clone().unwrap_or_else(|| args.dir.join("plots"));
    let files = crate::report::plot::plot_all(&args.dir, &out)?;
    anyhow::ensure!(!files.is_empty(), "no result files (seed-*.json) under {}", args.dir.display());
    for f in files {
        println!("{}", f.display());
    }
    Ok(())
}
