//! Records what a result file must say about the software that produced it: the git commit
//! (with `-dirty` when the build had uncommitted changes), the rustc and candle versions.

use std::process::Command;

fn output(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let root_str = root.to_string_lossy().to_string();
    for path in ["optimizers/src", "models/src", "tasks/src", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", root.join(path).display());
    }
    // HEAD and the index as git names them: in a worktree `.git` is a file and they live in
    // the worktree's own git folder (a path that does not exist would rerun this every build).
    for name in ["HEAD", "index"] {
        if let Some(path) = output("git", &["-C", &root_str, "rev-parse", "--path-format=absolute", "--git-path", name])
        {
            if std::path::Path::new(&path).exists() {
                println!("cargo:rerun-if-changed={path}");
            }
        }
    }
    let commit = output("git", &["-C", &root_str, "rev-parse", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let dirty = output("git", &["-C", &root_str, "status", "--porcelain", "--untracked-files=no"])
        .is_some_and(|s| !s.is_empty());
    let commit = if dirty && commit != "unknown" { format!("{commit}-dirty") } else { commit };
    println!("cargo:rustc-env=OPTBENCH_GIT_COMMIT={commit}");

    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let rustc_version = output(&rustc, &["--version"]).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=OPTBENCH_RUSTC_VERSION={rustc_version}");

    let lock = std::fs::read_to_string(root.join("Cargo.lock")).unwrap_or_default();
    let candle = lock
        .split("[[package]]")
        .find(|p| p.contains("name = \"candle-core\""))
        .and_then(|p| p.lines().find_map(|l| l.strip_prefix("version = \"")))
        .map(|v| v.trim_end_matches('"').to_string())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=OPTBENCH_CANDLE_VERSION={candle}");
}
