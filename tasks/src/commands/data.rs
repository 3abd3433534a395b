//! `optbench data`: list the data sets and where they are, fetch them into the caches,
//! verify the caches.

use std::path::PathBuf;

use crate::data::{self, catalog, hub::Hub, DataSettings};

/// Options of `optbench data`.
#[derive(Debug, clap::Args)]
pub struct DataArgs {
    #[command(subcommand)]
    pub command: DataCommand,
    /// Folder with local copies of data sets; may be repeated.
    #[arg(long, global = true)]
    pub data_dir: Vec<PathBuf>,
    /// Never use the network (also OPTBENCH_OFFLINE=1 or HF_HUB_OFFLINE=1).
    #[arg(long, global = true)]
    pub offline: bool,
}

#[derive(Debug, clap::Subcommand)]
pub enum DataCommand {
    /// Every data set: its Hub source, size, and whether it is cached or found locally.
    List,
    /// Download data sets into the Hugging Face cache and decode image data sets into the
    /// optbench cache, so that later runs need no network (`all` for every data set).
    Fetch {
        #[arg(required = true)]
        names: Vec<String>,
        /// Ask the Hub again even when the files are cached, and check them.
        #[arg(long)]
        refresh: bool,
    },
    /// Check the cached files against their checksums (Hub ETags, decoded-cache manifests).
    Verify { names: Vec<String> },
}

fn chosen(names: &[String]) -> anyhow::Result<Vec<&'static catalog::DatasetSpec>> {
    if names.is_empty() || names.iter().any(|n| n == "all") {
        return Ok(catalog::DATASETS.iter().collect());
    }
    names
        .iter()
        .map(|n| {
            catalog::find(n).ok_or_else(|| {
                anyhow::anyhow!("unknown data set `{n}`; valid data sets: {}", catalog::names().join(", "))
            })
        })
        .collect()
}

fn human(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{:.1} GB", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.1} MB", b as f64 / (1u64 << 20) as f64),
        b => format!("{:.1} kB", b as f64 / 1024.0),
    }
}

pub fn run(args: &DataArgs) -> anyhow::Result<bool> {
    let settings = DataSettings::for_cli(args.data_dir.clone(), args.offline);
    match &args.command {
        DataCommand::List => {
            let hub = Hub::new(&settings).map_err(anyhow::Error::msg)?;
            let decoded = settings.decoded_cache();
            println!(
                "Hugging Face cache: {}\noptbench cache:     {}\n",
                hub.cache_dir().display(),
                decoded.dir.display()
            );
            for spec in catalog::DATASETS {
                println!("{:<14} {}", spec.name, spec.summary);
                println!("{:<14} Hub: {} ({}), {}", "", spec.repo, spec.revision, spec.size);
                let in_hub = hub.cached(spec).is_some();
                let entries = decoded.entries(Some(spec.name));
                let decoded_state = match entries.first() {
                    Some((path, m)) => {
                        format!("decoded ({}, {})", human(m.bytes), path.with_extension("safetensors").display())
                    }
                    None => "not decoded".into(),
                };
                // Offline, only local files are "ready" (the Hub's cached ones are not read here).
                let local = match data::locate(spec, &DataSettings { offline: true, ..settings.clone() }, false) {
                    Ok(data::Located::Ready(source)) => format!("local: {}", source.describe()),
                    _ => format!("no local copy (looked for <data-dir>/{}/)", spec.folder),
                };
                let cached = if in_hub { "in the Hugging Face cache" } else { "not in the Hugging Face cache" };
                let decoded_part = if matches!(spec.content, catalog::Content::Images { .. }) {
                    format!("; {decoded_state}")
                } else {
                    String::new()
                };
                println!("{:<14} {cached}{decoded_part}; {local}\n", "");
            }
            Ok(true)
        }
        DataCommand::Fetch { names, refresh } => {
            let mut ok = true;
            for spec in chosen(names)? {
                let started = std::time::Instant::now();
                // Images fill the decoded cache (`load_images` finds and checks the files
                // itself); --refresh asks the Hub first.
                let outcome = if matches!(spec.content, catalog::Content::Images { .. }) {
                    let refreshed =
                        if *refresh { data::find_source(spec.name, &settings, true).map(drop) } else { Ok(()) };
                    refreshed.and_then(|()| data::load_images(spec.name, &settings)).and_then(|d| {
                        match d.record.source {
                            // Fetching means having the sources: a cache standing in is not that.
                            data::Origin::DecodedCache { .. } => Err(data::DataError(format!(
                                "not fetched: its sources cannot be reached (offline); only {} is there",
                                d.record.source.describe()
                            ))),
                            _ => Ok(format!(
                                "{} train / {} test images from {}, sha256 {}",
                                d.train.count,
                                d.test.count,
                                d.source,
                                d.record.short_hash()
                            )),
                        }
                    })
                } else {
                    data::find_source(spec.name, &settings, *refresh)
                        .and_then(|source| Ok(format!("{}, sha256 {}", source.describe(), &source.key(spec)?[..12])))
                };
                match outcome {
                    Ok(what) => println!("{}: ok in {:.1}s: {what}", spec.name, started.elapsed().as_secs_f64()),
                    Err(e) => {
                        ok = false;
                        eprintln!("{}: {e}\n", spec.name);
                    }
                }
            }
            Ok(ok)
        }
        DataCommand::Verify { names } => {
            let hub = Hub::new(&settings).map_err(anyhow::Error::msg)?;
            let decoded = settings.decoded_cache();
            let (mut good, mut bad, mut orphans) = (0, 0, 0);
            for spec in chosen(names)? {
                let before = good + bad + orphans;
                for (path, check) in data::hub::verify_cached(&hub, spec) {
                    match check {
                        Ok(()) => {
                            good += 1;
                            println!("ok       {}", path.display());
                        }
                        Err(e) => {
                            bad += 1;
                            println!("CORRUPT  {e}");
                        }
                    }
                }
                for (path, manifest) in decoded.entries(Some(spec.name)) {
                    match decoded.verify(&path, &manifest) {
                        Ok(()) => {
                            good += 1;
                            println!("ok       {}", path.with_extension("safetensors").display());
                        }
                        Err(e) => {
                            bad += 1;
                            println!("CORRUPT  {e}");
                        }
                    }
                }
                for path in decoded.orphans(Some(spec.name)) {
                    orphans += 1;
                    println!(
                        "NO MANIFEST  {}: its manifest ({}) is missing or unreadable, so it cannot be checked and is \
                         never used; delete it (`optbench data fetch {}` decodes the data set again)",
                        path.display(),
                        path.with_extension("json").display(),
                        spec.name
                    );
                }
                if good + bad + orphans == before && !names.is_empty() {
                    println!(
                        "{:<8} {}: nothing cached (`optbench data fetch {}` fills the caches)",
                        "", spec.name, spec.name
                    );
                }
            }
            println!("{good} files ok, {bad} corrupt, {orphans} without a manifest");
            if bad > 0 {
                println!("corrupt files are replaced the next time the data set loads (or run `optbench data fetch NAME --refresh`)");
            }
            Ok(bad == 0 && orphans == 0)
        }
    }
}
