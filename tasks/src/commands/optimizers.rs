//! `optbench optimizers`: every optimizer name with its reference, hyperparameters and
//! defaults.

use optimizers::{HyperValue, REGISTRY};

/// Options of `optbench optimizers`.
#[derive(Debug, clap::Args)]
pub struct OptimizersArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Instead of the list: check each optimizer's fused kernels against its tensor path on
    /// `--device` (max differences per optimizer, flags and type); fails when one differs.
    #[arg(long)]
    pub check_kernels: bool,
    /// The device of `--check-kernels`: cpu, cuda, cuda:N.
    #[arg(long, default_value = "cpu", requires = "check_kernels")]
    pub device: String,
}

pub fn run(args: &OptimizersArgs) -> anyhow::Result<()> {
    if args.check_kernels {
        anyhow::ensure!(
            super::check_kernels::run(&args.device)?,
            "fused kernels differ from the tensor path on {}",
            args.device
        );
        return Ok(());
    }
    if args.json {
        let list: Vec<serde_json::Value> = REGISTRY
            .iter()
            .map(|info| {
                let hyper: serde_json::Map<String, serde_json::Value> = info
                    .hyperparameters()
                    .into_iter()
                    .map(|(k, v)| (k, v.map_or(serde_json::Value::String("required".into()), |v| json(&v))))
                    .collect();
                serde_json::json!({
                    "name": info.name,
                    "summary": info.summary,
                    "reference": info.reference,
                    "hyperparameters": hyper,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    for info in REGISTRY {
        println!("{:<10} {}", info.name, info.summary);
        println!("{:<10} reference: {}", "", info.reference);
        let hyper: Vec<String> = info
            .hyperparameters()
            .into_iter()
            .map(|(k, v)| match v {
                Some(v) => format!("{k} = {}", show(&v)),
                None => format!("{k} (required)"),
            })
            .collect();
        println!("{:<10} {}\n", "", hyper.join(", "));
    }
    Ok(())
}

fn show(value: &HyperValue) -> String {
    match value {
        HyperValue::Str(s) => format!("\"{s}\""),
        HyperValue::Float(x) if *x != 0.0 && (x.abs() < 1e-3 || x.abs() >= 1e4) => format!("{x:e}"),
        other => other.to_string(),
    }
}

fn json(value: &HyperValue) -> serde_json::Value {
    serde_json::to_value(value).expect("hyperparameter values serialise")
}
