//! `optbench tasks`: every task with its options, defaults, budget and metrics.

use crate::task::{registry, Budget, Goal};

/// Options of `optbench tasks`.
#[derive(Debug, clap::Args)]
pub struct TasksArgs {
    /// Only the tasks whose name contains this.
    pub filter: Option<String>,
}

pub fn run(args: &TasksArgs) {
    for info in registry() {
        if args.filter.as_ref().is_some_and(|f| !info.name.contains(f.as_str())) {
            continue;
        }
        let family = serde_json::to_value(info.family).ok().and_then(|v| v.as_str().map(str::to_string));
        println!("{}  ({})", info.name, family.unwrap_or_default());
        println!("    {}", info.summary);
        let budget = match info.budget {
            Budget::Steps(s) => format!("{s} steps"),
            Budget::Epochs(e) => format!("{e} epochs"),
        };
        let batch = info.batch_size.map(|b| format!(", batch size {b}")).unwrap_or_default();
        let eval = info.eval_every.map_or("every epoch".to_string(), |e| format!("every {e} steps"));
        println!("    budget {budget}{batch}; evaluation {eval}; schedule {}", info.schedule);
        let metrics: Vec<String> = info
            .metrics
            .iter()
            .map(|m| format!("{} ({})", m.name, if m.goal == Goal::Max { "max" } else { "min" }))
            .collect();
        println!("    metrics: {} (the first ranks)", metrics.join(", "));
        if info.optimizers.len() > 1 {
            println!("    optimizers (roles): {}", info.optimizers.join(", "));
        }
        if let Some(clip) = info.clip_norm {
            println!("    gradients clipped to global norm {clip}");
        }
        for o in &info.options {
            let range = o.describe_range();
            let range = if range.is_empty() { String::new() } else { format!(" [{range}]") };
            println!("    option {} = {}{range}: {}", o.name, o.default, o.help);
        }
        println!();
    }
}
