//! `optbench bench`: how fast this machine runs the suite. Prints the machine (CPU model,
//! threads, caches, SIMD flags), then
//! - every optimizer's step over one f32 parameter of `--numel` elements beside an Adam-shaped
//!   pass over as many elements (`optimizers::bench`), the two alternating in the same run,
//!   with their ratio and its target (1.25x; AdaShift 2x, Adai 1.5x);
//! - the model steps ([`crate::bench::models`]): MNIST MLP epoch, ResNet-18 CIFAR step,
//!   Transformer step, AWD-LSTM step, WGAN-GP round.
//!
//! With `--torch PYTHON` each benchmark's PyTorch half (`scripts/bench/*.py`) runs alternately
//! with ours (one round of each, `--repeats` rounds) and the ratios are printed: the optimizers
//! against their Python references and PyTorch's fused Adam (which no optimizer's step should be
//! slower than), the models against the same model in PyTorch (targets: MNIST MLP 1.0x, the others
//! 1.2x). These are benchmarks: the targets are printed, never asserted.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use candle::Device;
use serde_json::{json, Value};

use crate::bench::machine::Machine;
use crate::bench::models::{self, LstmBenchConfig, MnistConfig, ResnetConfig, TransformerBenchConfig, WganConfig};
use crate::bench::torch::{run_script, TorchResult};
use crate::bench::{median, seconds, Measured};

/// Options of `optbench bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// `optimizers`, `models`, or one optimizer label (`adam`, `adai`, ...) or model
    /// (`mnist-mlp`, `resnet18`, `transformer`, `lstm`, `wgan`).
    #[arg(long)]
    pub only: Option<String>,
    /// Alternating rounds of each benchmark (ours, then PyTorch's, then ours...).
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
    /// Small sizes that run in seconds (to check that everything runs, not to measure).
    #[arg(long)]
    pub quick: bool,
    /// Elements of the optimizers' parameter (default 11,000,000, a ResNet-18; 65,536 with --quick).
    #[arg(long)]
    pub numel: Option<usize>,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Run the PyTorch halves with this Python interpreter (needs torch) and print ratios.
    #[arg(long, value_name = "PYTHON")]
    pub torch: Option<PathBuf>,
    /// A folder the optimizers' Python references import from (e.g. a checkout of
    /// zeke-xie/adaptive-inertia-adai for `adai_optim`); repeatable.
    #[arg(long, value_name = "DIR")]
    pub torch_reference: Vec<PathBuf>,
    /// A folder holding `mnist/` for the MNIST MLP epoch (without one: random batches of its shape).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Threads for candle, rayon and PyTorch (default: `RAYON_NUM_THREADS`, else every logical CPU).
    #[arg(long)]
    pub threads: Option<usize>,
}

/// The models, in the order they run and print.
pub const MODELS: [&str; 5] = ["mnist-mlp", "resnet18", "transformer", "lstm", "wgan"];

/// Each model's target ratio to PyTorch (issue 15: MNIST MLP 1.0x, ResNet-18 1.2x; the README's
/// 1.2x for the sequence models), and the unit it times.
fn model_target(name: &str) -> (Option<f64>, &'static str) {
    match name {
        "mnist-mlp" => (Some(1.0), "epoch"),
        "resnet18" | "transformer" | "lstm" => (Some(1.2), "step"),
        _ => (None, "round"),
    }
}

/// Our optimizer labels' PyTorch counterparts in `scripts/bench/optim_step.py`.
fn torch_counterpart(label: &str) -> Option<&'static str> {
    Some(match label {
        "sgd-momentum" => "sgd-momentum",
        "adam" => "adam-foreach",
        "adabelief" => "adabelief",
        "adamod" => "adamod",
        "diffgrad" => "diffgrad",
        "adai" => "adai",
        _ => return None,
    })
}

pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    if let Some(n) = args.threads {
        anyhow::ensure!(n > 0, "--threads 0: give at least 1");
        // Before any candle op or rayon pool exists: both read it when they start.
        std::env::set_var("RAYON_NUM_THREADS", n.to_string());
    }
    anyhow::ensure!(args.repeats > 0, "--repeats 0: give at least 1 round");
    let only = args.only.as_deref();
    let labels: Vec<String> = optimizers::bench::bench_specs().into_iter().map(|(l, _, _)| l).collect();
    if let Some(o) = only {
        anyhow::ensure!(
            o == "optimizers" || o == "models" || MODELS.contains(&o) || labels.iter().any(|l| l == o),
            "--only {o}: give optimizers, models, one of the models ({}) or an optimizer label ({})",
            MODELS.join(", "),
            labels.join(", ")
        );
    }
    let machine = Machine::detect();
    println!("machine: {}", machine.line());
    if args.quick {
        println!("--quick: small sizes, to check that everything runs; the times are not the benchmark's");
    }
    let mut report = json!({ "machine": machine, "quick": args.quick, "repeats": args.repeats });
    let want_optimizers =
        matches!(only, None | Some("optimizers")) || only.is_some_and(|o| labels.iter().any(|l| l == o));
    let want = |model: &str| matches!(only, None | Some("models")) || only == Some(model);
    if want_optimizers {
        report["optimizers"] = Value::Array(bench_optimizers(args, &machine)?);
    }
    let models: Vec<&str> = MODELS.into_iter().filter(|m| want(m)).collect();
    if !models.is_empty() {
        report["models"] = Value::Array(bench_models(args, &machine, &models)?);
    }
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing the results to {}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

fn secs(d: &[Duration]) -> Vec<f64> {
    d.iter().map(Duration::as_secs_f64).collect()
}

fn ms(s: f64) -> String {
    format!("{:.3} ms", s * 1e3)
}

fn bench_optimizers(args: &BenchArgs, machine: &Machine) -> anyhow::Result<Vec<Value>> {
    let numel = args.numel.unwrap_or(if args.quick { 65_536 } else { 11_000_000 });
    let per_round = if args.quick { 2 } else { 5 };
    let specs: Vec<_> = optimizers::bench::bench_specs()
        .into_iter()
        .filter(|(label, _, _)| match args.only.as_deref() {
            None | Some("optimizers") => true,
            Some(o) => o == label,
        })
        .collect();
    println!(
        "\noptimizer steps over {numel} f32 elements, {} rounds of {per_round} steps, alternating with an Adam-shaped pass (medians):",
        args.repeats
    );
    let (mut ours, mut shaped) = (vec![Vec::new(); specs.len()], vec![Vec::new(); specs.len()]);
    let mut torch: Vec<TorchResult> = Vec::new();
    for _ in 0..args.repeats {
        for (i, (label, spec, _)) in specs.iter().enumerate() {
            ours[i].extend(secs(
                &optimizers::bench::time_optimizer_step(spec, numel, 1, per_round)
                    .with_context(|| format!("timing {label}"))?,
            ));
            shaped[i].extend(secs(&optimizers::bench::time_adam_shaped_pass(numel, 1, per_round)));
        }
        if let Some(python) = &args.torch {
            let mut a = vec![
                "--numel".to_string(),
                numel.to_string(),
                "--warmup".into(),
                "1".into(),
                "--repeats".into(),
                per_round.to_string(),
                "--threads".into(),
                machine.threads.to_string(),
            ];
            for r in &args.torch_reference {
                a.extend(["--reference".to_string(), r.display().to_string()]);
            }
            for result in run_script(python, "optim_step.py", &a)? {
                match torch.iter_mut().find(|t| t.name == result.name) {
                    Some(t) => t.seconds.extend(result.seconds),
                    None => torch.push(result),
                }
            }
        }
    }
    let torch_median =
        |name: &str| torch.iter().find(|t| t.name == format!("optim:{name}")).map(|t| median(&t.seconds));
    let fused_adam = torch_median("adam-fused");
    let header = if args.torch.is_some() {
        format!(
            "{:<28} {:>12} {:>12} {:>6} {:>6}  {:<5} {:>26} {:>18}",
            "optimizer",
            "optbench",
            "Adam-shaped",
            "ratio",
            "target",
            "fused",
            "pytorch reference (ratio)",
            "/ torch fused Adam"
        )
    } else {
        format!(
            "{:<28} {:>12} {:>12} {:>6} {:>6}  {:<5}",
            "optimizer", "optbench", "Adam-shaped", "ratio", "target", "fused"
        )
    };
    println!("{header}");
    let mut rows = Vec::new();
    for (i, (label, spec, target)) in specs.iter().enumerate() {
        let (o, s) = (median(&ours[i]), median(&shaped[i]));
        let ratio = o / s;
        let fused = optimizers::bench::fused_on_cpu(spec)?;
        let mark = if ratio <= *target { "" } else { " (over)" };
        let mut line = format!(
            "{label:<28} {:>12} {:>12} {:>6.2} {:>6.2}  {:<5}",
            ms(o),
            ms(s),
            ratio,
            target,
            if fused { "yes" } else { "no" }
        );
        let mut row = json!({
            "label": label, "optimizer": spec.name, "numel": numel,
            "optbench_s": ours[i], "adam_shaped_s": shaped[i],
            "optbench_median_s": o, "adam_shaped_median_s": s,
            "ratio": ratio, "target": target, "fused": fused,
        });
        if args.torch.is_some() {
            let reference = torch_counterpart(label).and_then(|t| torch_median(t).map(|m| (t, m)));
            let reference_text = match reference {
                Some((t, m)) => format!("{t} {} ({:.2})", ms(m), o / m),
                None => "-".into(),
            };
            let vs_fused = fused_adam.map(|f| format!("{:.2}", o / f)).unwrap_or_else(|| "-".into());
            line = format!("{line} {reference_text:>26} {vs_fused:>18}");
            if let Some((t, m)) = reference {
                row["torch"] = json!({ "label": t, "median_s": m, "ratio": o / m });
            }
            if let Some(f) = fused_adam {
                row["vs_torch_fused_adam"] = json!(o / f);
            }
        }
        println!("{line}{mark}");
        rows.push(row);
    }
    if let Some(f) = fused_adam {
        println!("pytorch fused Adam: {} a step (target: no optimizer's step slower, ratio <= 1)", ms(f));
    }
    Ok(rows)
}

/// Our half of model `name` once (its configured steps), and the PyTorch half's arguments.
fn run_model(name: &str, args: &BenchArgs, threads: usize) -> anyhow::Result<(Measured, Vec<String>)> {
    let device = Device::Cpu;
    let q = args.quick;
    let t = threads.to_string();
    let s = |v: &dyn ToString| v.to_string();
    Ok(match name {
        "mnist-mlp" => {
            let config = MnistConfig {
                data_dir: args.data_dir.clone(),
                ..if q { MnistConfig::quick() } else { MnistConfig::default() }
            };
            let m = models::mnist_mlp(&config, &device)?;
            let mut a = vec!["--repeats".into(), "1".into(), "--threads".into(), t, "--no-breakdown".into()];
            if let Some(steps) = config.steps {
                a.extend(["--steps".into(), s(&steps)]);
            }
            // The same data as ours: MNIST when our task loaded it, else random images.
            match &config.data_dir {
                Some(d) if m.note.starts_with("the mnist-mlp task") => {
                    a.extend(["--data-dir".into(), d.display().to_string()])
                }
                _ => a.push("--synthetic".into()),
            }
            (m, a)
        }
        "resnet18" => {
            let c = if q { ResnetConfig::quick() } else { ResnetConfig::default() };
            let a = vec![
                "--steps".into(),
                s(&c.steps),
                "--batch".into(),
                s(&c.batch),
                "--width".into(),
                s(&c.width),
                "--threads".into(),
                t,
            ];
            (models::resnet_step(&c, &device)?, a)
        }
        "transformer" => {
            let c = if q { TransformerBenchConfig::quick() } else { TransformerBenchConfig::default() };
            let a = [
                ("--steps", c.steps),
                ("--sentences", c.sentences),
                ("--len", c.len),
                ("--vocab", c.vocab),
                ("--d", c.d),
                ("--ffn", c.ffn),
                ("--layers", c.layers),
                ("--threads", threads),
            ]
            .iter()
            .flat_map(|(k, v)| [k.to_string(), v.to_string()])
            .collect();
            (models::transformer_step(&c, &device)?, a)
        }
        "lstm" => {
            let c = if q { LstmBenchConfig::quick() } else { LstmBenchConfig::default() };
            let a = [
                ("--steps", c.steps),
                ("--layers", c.layers),
                ("--batch", c.batch),
                ("--bptt", c.bptt),
                ("--emsize", c.emsize),
                ("--nhid", c.nhid),
                ("--vocab", c.vocab),
                ("--threads", threads),
            ]
            .iter()
            .flat_map(|(k, v)| [k.to_string(), v.to_string()])
            .collect();
            (models::lstm_step(&c, &device)?, a)
        }
        "wgan" => {
            let c = if q { WganConfig::quick() } else { WganConfig::default() };
            let a = [("--rounds", c.rounds), ("--batch", c.batch), ("--width", c.width), ("--threads", threads)]
                .iter()
                .flat_map(|(k, v)| [k.to_string(), v.to_string()])
                .collect();
            (models::wgan_round(&c, &device)?, a)
        }
        other => anyhow::bail!("no model benchmark {other}: {}", MODELS.join(", ")),
    })
}

/// The PyTorch half of each model.
fn torch_script(name: &str) -> &'static str {
    match name {
        "mnist-mlp" => "mnist_mlp.py",
        "resnet18" => "resnet18_step.py",
        "transformer" => "transformer_step.py",
        "lstm" => "lstm_step.py",
        _ => "wgan_round.py",
    }
}

fn bench_models(args: &BenchArgs, machine: &Machine, names: &[&str]) -> anyhow::Result<Vec<Value>> {
    println!(
        "\nmodel steps, {} rounds{} (medians):",
        args.repeats,
        if args.torch.is_some() { ", each ours then PyTorch's" } else { "" }
    );
    let mut rows = Vec::new();
    for name in names {
        let (target, unit) = model_target(name);
        let mut ours = Measured::default();
        let mut torch: Option<TorchResult> = None;
        for _ in 0..args.repeats {
            let (m, torch_args) = run_model(name, args, machine.threads)?;
            ours.extend(m);
            if let Some(python) = &args.torch {
                let result = run_script(python, torch_script(name), &torch_args)?
                    .into_iter()
                    .next()
                    .ok_or_else(|| anyhow::anyhow!("{} printed no result", torch_script(name)))?;
                match &mut torch {
                    Some(t) => t.seconds.extend(result.seconds),
                    None => torch = Some(result),
                }
            }
        }
        let o = ours.median();
        let mut line = format!("{name:<12} optbench {:>10} a {unit}", seconds(o));
        let mut row = json!({
            "name": name, "unit": unit, "optbench_s": ours.seconds, "optbench_median_s": o,
            "parts": ours.parts.iter().map(|(k, v)| (k.clone(), json!(median(v)))).collect::<serde_json::Map<_, _>>(),
            "note": ours.note, "target": target,
        });
        if let Some(t) = &torch {
            let p = median(&t.seconds);
            let ratio = o / p;
            let target_text = match target {
                Some(x) if ratio <= x => format!("target {x:.1}, met"),
                Some(x) => format!("target {x:.1}, NOT met"),
                None => "no target".into(),
            };
            line = format!("{line}   pytorch {:>10}   ratio {ratio:.2} ({target_text})", seconds(p));
            row["torch"] = json!({ "seconds": t.seconds, "median_s": p, "note": t.note, "version": t.torch });
            row["ratio"] = json!(ratio);
        }
        println!("{line}");
        if !ours.parts.is_empty() {
            println!("{:<12} optbench {}", "", ours.parts_summary());
        }
        println!("{:<12} {}", "", ours.note);
        rows.push(row);
    }
    Ok(rows)
}
