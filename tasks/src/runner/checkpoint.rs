//! Mid-run checkpoints: everything a killed run needs to continue exactly where it was, in
//! one file beside its result (`seed-<n>.ckpt`), written atomically at evaluations and removed
//! when the run ends.
//!
//! The file is a magic line, the length of a JSON header (8 bytes, little-endian), the header,
//! then the tensors as safetensors. The header holds the run's fingerprint, the step, the
//! runner's own state (history, loss sums, the length of the loss stream), the task's and each
//! optimizer's scalars, and the SHA-256 of the tensor bytes: a damaged or truncated file, or
//! one from another setup, is never restored.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use candle::{Device, Tensor};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::record::History;

const MAGIC: &[u8] = b"optbench-checkpoint/1\n";

/// `seed-0.json` -> `seed-0.ckpt`.
pub fn checkpoint_path(result: &Path) -> PathBuf {
    result.with_extension("ckpt")
}

/// Where the runner's loop was.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoopState {
    /// Steps done.
    pub step: u64,
    pub history: History,
    /// The sums of each loss since the last evaluation, and how many steps they cover.
    pub loss_sums: Vec<(String, f64)>,
    pub loss_count: u64,
    /// Bytes of the loss stream written so far (a resumed run cuts the stream back to this).
    pub stream_len: u64,
    /// Seconds of training before the checkpoint.
    pub elapsed_s: f64,
}

/// The header of a checkpoint file.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Header {
    /// The run's fingerprint: a checkpoint of another setup is not resumed.
    pub fingerprint: String,
    /// The SHA-256 of each data set the run trained on: a checkpoint made on other data is not
    /// resumed.
    #[serde(default)]
    pub data: BTreeMap<String, String>,
    pub runner: LoopState,
    /// The task's scalars (`TaskState::meta`).
    pub task: serde_json::Value,
    /// Each optimizer's scalars (`OptimizerState::meta`), by role.
    pub optimizers: BTreeMap<String, serde_json::Value>,
    /// SHA-256 of the safetensors bytes that follow.
    pub tensors_sha256: String,
}

/// A whole checkpoint: the header and the tensors (`task.<name>`, `opt.<role>.<name>`).
pub struct Checkpoint {
    pub header: Header,
    pub tensors: BTreeMap<String, Tensor>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Checkpoint {
    /// The file's bytes (the tensors are copied to the host).
    pub fn to_bytes(&mut self) -> anyhow::Result<Vec<u8>> {
        let host: BTreeMap<&String, Tensor> = self
            .tensors
            .iter()
            .map(|(k, t)| Ok((k, t.to_device(&Device::Cpu)?.contiguous()?)))
            .collect::<candle::Result<_>>()?;
        let tensors = safetensors::serialize(host.iter().map(|(k, t)| (k.as_str(), t)), None)?;
        self.header.tensors_sha256 = hex(&Sha256::digest(&tensors));
        let header = serde_json::to_vec(&self.header)?;
        let mut out = Vec::with_capacity(MAGIC.len() + 8 + header.len() + tensors.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(header.len() as u64).to_le_bytes());
        out.extend_from_slice(&header);
        out.extend_from_slice(&tensors);
        Ok(out)
    }

    /// Reads a checkpoint; any damage is an error that says what is wrong.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let bytes = std::fs::read(path)?;
        let rest = bytes.strip_prefix(MAGIC).ok_or_else(|| anyhow::anyhow!("not an optbench checkpoint"))?;
        anyhow::ensure!(rest.len() >= 8, "truncated (no header)");
        let len = u64::from_le_bytes(rest[..8].try_into().expect("8 bytes")) as usize;
        anyhow::ensure!(rest.len() >= 8 + len, "truncated (header of {len} bytes, {} left)", rest.len() - 8);
        let header: Header =
            serde_json::from_slice(&rest[8..8 + len]).map_err(|e| anyhow::anyhow!("bad header: {e}"))?;
        let tensors = &rest[8 + len..];
        let sha = hex(&Sha256::digest(tensors));
        anyhow::ensure!(sha == header.tensors_sha256, "the tensors do not match their checksum (damaged or truncated)");
        let tensors = candle::safetensors::load_buffer(tensors, &Device::Cpu)?.into_iter().collect();
        Ok(Self { header, tensors })
    }

    /// The tensors under `prefix.`, with the prefix taken off.
    pub fn take(&mut self, prefix: &str) -> BTreeMap<String, Tensor> {
        let prefix = format!("{prefix}.");
        let keys: Vec<String> = self.tensors.keys().filter(|k| k.starts_with(&prefix)).cloned().collect();
        keys.into_iter()
            .map(|k| {
                let t = self.tensors.remove(&k).expect("listed");
                (k[prefix.len()..].to_string(), t)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Checkpoint {
        let header = Header {
            fingerprint: "f".into(),
            data: [("mnist".to_string(), "ab".repeat(32))].into(),
            runner: LoopState {
                step: 3,
                history: History::default(),
                loss_sums: vec![("loss".into(), 0.1 + 0.2)],
                loss_count: 3,
                stream_len: 42,
                elapsed_s: 1.5,
            },
            task: serde_json::json!({"x": 1}),
            optimizers: BTreeMap::new(),
            tensors_sha256: String::new(),
        };
        let t = Tensor::new(&[1.0f32, 2.0, 3.0], &Device::Cpu).unwrap();
        Checkpoint { header, tensors: [("task.w".to_string(), t)].into() }
    }

    #[test]
    fn round_trip_and_damage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seed-0.ckpt");
        let bytes = sample().to_bytes().unwrap();
        std::fs::write(&path, &bytes).unwrap();
        let mut back = Checkpoint::load(&path).unwrap();
        assert_eq!(back.header.runner, sample().header.runner);
        assert_eq!(back.take("task")["w"].to_vec1::<f32>().unwrap(), [1.0, 2.0, 3.0]);
        // A flipped byte in the tensors, a truncated file, another file.
        let mut flipped = bytes.clone();
        *flipped.last_mut().unwrap() ^= 1;
        std::fs::write(&path, &flipped).unwrap();
        assert!(Checkpoint::load(&path).err().unwrap().to_string().contains("checksum"));
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        assert!(Checkpoint::load(&path).is_err());
        std::fs::write(&path, b"{}").unwrap();
        assert!(Checkpoint::load(&path).err().unwrap().to_string().contains("not an optbench checkpoint"));
    }

    #[test]
    fn beside_the_result() {
        assert_eq!(checkpoint_path(Path::new("a/seed-1.json")), Path::new("a/seed-1.ckpt"));
    }
}
