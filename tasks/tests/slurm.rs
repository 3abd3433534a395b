//! A real single-node Slurm: slurmctld and slurmd started on this machine with a minimal config
//! (no munge: `auth/none`), a sweep submitted as the job array `optbench slurm` writes, and the
//! merged results compared with a local run of the same config. Skipped, with a line saying
//! why, where Slurm is not installed (Debian's `slurm-wlm`; `.ci/run` installs it) or cannot
//! start.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::optbench;

const SWEEP: &str = r#"
name = "array"
seeds = 2
[[tasks]]
name = "toy2d-quadratic"
steps = 3000
eval_every = 1000
[[optimizers]]
name = "adam"
lr = [0.01, 0.003]
[[optimizers]]
name = "adabelief"
lr = 0.01
"#;

/// The Slurm daemons of a test, stopped when dropped.
struct Cluster {
    daemons: Vec<Child>,
    conf: std::path::PathBuf,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for daemon in &mut self.daemons {
            let _ = daemon.kill();
            let _ = daemon.wait();
        }
    }
}

fn found(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn output(program: &str, args: &[&str], conf: &Path) -> Option<String> {
    let out = Command::new(program).args(args).env("SLURM_CONF", conf).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).to_string())
}

/// Starts a one-node cluster in `dir`; `Err` says why it could not.
fn start(dir: &Path) -> Result<Cluster, String> {
    for program in ["slurmctld", "slurmd", "sbatch", "sinfo"] {
        if !found(program) {
            return Err(format!("`{program}` is not installed (Debian: apt-get install slurm-wlm)"));
        }
    }
    if unsafe { libc::geteuid() } != 0 {
        return Err("slurmd needs root here".into());
    }
    let host = Command::new("hostname").arg("-s").output().map_err(|e| format!("hostname: {e}"))?;
    let host = String::from_utf8_lossy(&host.stdout).trim().to_string();
    let port = 20000 + (std::process::id() % 20000) as u16;
    for sub in ["state", "spool"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    let d = dir.display();
    let conf = dir.join("slurm.conf");
    std::fs::write(
        &conf,
        format!(
            "ClusterName=optbench\nSlurmctldHost={host}\nAuthType=auth/none\nCredType=cred/none\n\
             SlurmUser=root\nSlurmdUser=root\nStateSaveLocation={d}/state\nSlurmdSpoolDir={d}/spool\n\
             SlurmctldPidFile={d}/slurmctld.pid\nSlurmdPidFile={d}/slurmd.pid\nSlurmctldPort={port}\n\
             SlurmdPort={}\nProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\n\
             SelectType=select/cons_tres\nSelectTypeParameters=CR_Core\nReturnToService=2\nMpiDefault=none\n\
             JobCompType=jobcomp/none\nAccountingStorageType=accounting_storage/none\n\
             SlurmctldLogFile={d}/slurmctld.log\nSlurmdLogFile={d}/slurmd.log\n\
             NodeName={host} CPUs=2 RealMemory=1000 State=UNKNOWN\n\
             PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP\n",
            port + 1
        ),
    )
    .unwrap();
    let mut cluster = Cluster { daemons: Vec::new(), conf: conf.clone() };
    for daemon in ["slurmctld", "slurmd"] {
        let child = Command::new(daemon)
            .args(["-D", "-f"])
            .arg(&conf)
            .env("SLURM_CONF", &conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("{daemon}: {e}"))?;
        cluster.daemons.push(child);
    }
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        if output("sinfo", &["-h", "-o", "%t"], &conf).is_some_and(|s| s.trim() == "idle") {
            return Ok(cluster);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let log = std::fs::read_to_string(dir.join("slurmctld.log")).unwrap_or_default();
    Err(format!("the node did not become idle within 60 s; slurmctld.log ends: {}", log.lines().last().unwrap_or("")))
}

#[test]
fn a_job_array_covers_the_sweep_and_equals_a_local_run() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = match start(&dir.path().join("slurm")) {
        Ok(cluster) => cluster,
        Err(why) => {
            println!("skipped: no Slurm here: {why}");
            return;
        }
    };
    std::fs::write(dir.path().join("array.toml"), SWEEP).unwrap();
    let (ok, stdout, stderr) = optbench(&["slurm", "array.toml", "--shards", "3", "--cpus-per-task", "1"], dir.path());
    assert!(ok, "{stdout}\n{stderr}");
    assert!(stdout.contains("array: 6 runs in 3 array tasks"), "{stdout}");
    let script = dir.path().join("results/array/slurm/array.sbatch");
    let submitted = Command::new("sbatch")
        .arg("--wait")
        .arg(&script)
        .current_dir(dir.path())
        .env("SLURM_CONF", &cluster.conf)
        .output()
        .unwrap();
    let logs: String = std::fs::read_dir(dir.path().join("results/array/slurm"))
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "out"))
        .map(|e| format!("== {}\n{}", e.path().display(), std::fs::read_to_string(e.path()).unwrap_or_default()))
        .collect();
    assert!(
        submitted.status.success(),
        "sbatch: {}{}\narray logs:\n{logs}",
        String::from_utf8_lossy(&submitted.stdout),
        String::from_utf8_lossy(&submitted.stderr)
    );
    assert_eq!(logs.matches(" Completed in ").count(), 6, "each run once across the array:\n{logs}");
    let (ok, stdout, _) = optbench(&["status", "results/array"], dir.path());
    assert!(ok && stdout.contains("6 runs: 6 done"), "{stdout}");

    let (ok, stdout, stderr) = optbench(&["run", "array.toml", "--out", "local"], dir.path());
    assert!(ok, "{stdout}\n{stderr}");
    let on_slurm = common::results(&dir.path().join("results/array"));
    let local = common::results(&dir.path().join("local/array"));
    assert_eq!(on_slurm.len(), 6);
    assert_eq!(on_slurm.len(), local.len());
    for (a, b) in on_slurm.iter().zip(&local) {
        assert_eq!(a.id, b.id);
        assert_eq!(a.history.metrics, b.history.metrics, "{}", a.id);
        assert_eq!(a.final_metrics, b.final_metrics, "{}", a.id);
        assert_eq!(a.stream, b.stream, "{}: the same loss stream", a.id);
    }
    let (ok, stdout, _) = optbench(&["report", "results/array"], dir.path());
    assert!(ok && stdout.contains("| adabelief |") && stdout.contains("| adam |"), "{stdout}");
}
