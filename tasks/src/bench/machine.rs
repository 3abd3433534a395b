//! The machine a benchmark ran on: CPU model, logical CPUs, the threads candle and rayon use,
//! cache sizes (from `/sys/devices/system/cpu/cpu0/cache/`, per core) and the SIMD flags the
//! GEMM kernels choose between at run time (AVX2/FMA, AVX-512F).

use std::path::Path;

/// What `optbench bench` prints first, and writes into its JSON.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Machine {
    /// `model name` of `/proc/cpuinfo` ("unknown" elsewhere).
    pub cpu_model: String,
    /// Logical CPUs the OS reports (`available_parallelism`).
    pub logical_cpus: usize,
    /// Threads candle's CPU ops use (`RAYON_NUM_THREADS`, else every logical CPU).
    pub threads: usize,
    /// `(level and type, size)` of each cache of cpu0, e.g. `("L1d", "48K")`.
    pub caches: Vec<(String, String)>,
    pub avx2: bool,
    pub fma: bool,
    pub avx512f: bool,
    /// The 1-minute load average when the benchmark started (other jobs on the machine).
    pub load: Option<f64>,
}

impl Machine {
    /// Reads the machine's description.
    pub fn detect() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| {
                l.strip_prefix("model name").and_then(|r| r.split_once(':')).map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_else(|| "unknown".into());
        let load = std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()));
        #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
        let (avx2, fma, avx512f) = (
            std::arch::is_x86_feature_detected!("avx2"),
            std::arch::is_x86_feature_detected!("fma"),
            std::arch::is_x86_feature_detected!("avx512f"),
        );
        #[cfg(not(any(target_arch = "x86", target_arch = "x86_64")))]
        let (avx2, fma, avx512f) = (false, false, false);
        Machine {
            cpu_model,
            logical_cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            threads: candle::utils::get_num_threads(),
            caches: caches(Path::new("/sys/devices/system/cpu/cpu0/cache")),
            avx2,
            fma,
            avx512f,
            load,
        }
    }

    /// One line: `Intel(R) Xeon(R) Processor, 2 threads of 2 logical CPUs, L1d 48K L2 2048K
    /// L3 307200K, AVX2 FMA AVX-512F, load 1.20`.
    pub fn line(&self) -> String {
        let caches: Vec<String> = self.caches.iter().map(|(level, size)| format!("{level} {size}")).collect();
        let mut flags = Vec::new();
        for (on, name) in [(self.avx2, "AVX2"), (self.fma, "FMA"), (self.avx512f, "AVX-512F")] {
            if on {
                flags.push(name);
            }
        }
        if !self.avx512f {
            flags.push("no AVX-512");
        }
        let load = self.load.map(|l| format!(", load {l:.2}")).unwrap_or_default();
        format!(
            "{}, {} threads of {} logical CPUs, {}, {}{load}",
            self.cpu_model,
            self.threads,
            self.logical_cpus,
            if caches.is_empty() { "caches unknown".to_string() } else { caches.join(" ") },
            flags.join(" ")
        )
    }
}

/// The caches under `dir` (`index*/level`, `type`, `size`), L1i left out.
fn caches(dir: &Path) -> Vec<(String, String)> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut found: Vec<(String, String)> = entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("index"))
        .filter_map(|e| {
            let read = |name: &str| std::fs::read_to_string(e.path().join(name)).ok().map(|s| s.trim().to_string());
            let (level, kind, size) = (read("level")?, read("type")?, read("size")?);
            let suffix = match kind.as_str() {
                "Data" => "d",
                "Instruction" => return None,
                _ => "",
            };
            Some((format!("L{level}{suffix}"), size))
        })
        .collect();
    found.sort();
    found
}
