//! One lock per run, so that processes sharing a results folder (several `optbench run` on one
//! machine, or Slurm array tasks on a shared file system) never train the same run twice.
//!
//! The lock is an OS file lock (`flock` on Linux, which NFS serves as a byte-range lock) on
//! `seed-<n>.lock` beside the run's result: the kernel releases it when the process dies, so a
//! killed run never leaves its run locked. The file holds the holder's host and process id, for
//! `optbench status`. The holder deletes the file when it is done; a process that locked a file
//! that was deleted meanwhile (its holder finished between the open and the lock) opens it again,
//! so two processes never hold locks on two different files of one run.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// `seed-0.json` -> `seed-0.lock`.
pub fn lock_path(result: &Path) -> PathBuf {
    result.with_extension("lock")
}

/// A held run lock; dropping it deletes the lock file and releases the lock.
#[derive(Debug)]
pub struct RunLock {
    file: File,
    path: PathBuf,
}

/// What trying to lock a run found.
#[derive(Debug)]
pub enum Acquired {
    Locked(RunLock),
    /// Another process holds it; its host and process id when it wrote them.
    Busy(String),
}

impl RunLock {
    /// Tries to lock the run whose result goes to `result`, without waiting for a holder (a
    /// holder that is only looking, such as `optbench status`, is waited out for a moment).
    pub fn try_acquire(result: &Path) -> std::io::Result<Acquired> {
        let path = lock_path(result);
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)?;
        }
        for attempt in 0.. {
            let file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path)?;
            match file.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => {
                    if attempt < 5 {
                        std::thread::sleep(Duration::from_millis(50));
                        continue;
                    }
                    return Ok(Acquired::Busy(holder(&path)));
                }
                Err(TryLockError::Error(e)) => return Err(e),
            }
            if !same_file(&file, &path) {
                // Its holder finished and deleted it between our open and our lock.
                continue;
            }
            let mut lock = RunLock { file, path };
            lock.file.set_len(0)?;
            writeln!(lock.file, "{} {}", hostname(), std::process::id())?;
            return Ok(Acquired::Locked(lock));
        }
        unreachable!("the loop returns")
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // Deleted while still held: whoever opens it next finds another file and tries again.
        let _ = fs::remove_file(&self.path);
        let _ = self.file.unlock();
    }
}

/// Whether a run is locked by a process now (for `optbench status`), and by whom.
pub fn holder_of(result: &Path) -> Option<String> {
    let path = lock_path(result);
    let file = File::open(&path).ok()?;
    match file.try_lock_shared() {
        Ok(()) => {
            let _ = file.unlock();
            None
        }
        Err(TryLockError::WouldBlock) => Some(holder(&path)),
        Err(TryLockError::Error(_)) => None,
    }
}

fn holder(path: &Path) -> String {
    match fs::read_to_string(path) {
        Ok(text) if !text.trim().is_empty() => {
            let mut parts = text.split_whitespace();
            let host = parts.next().unwrap_or("?");
            let pid = parts.next().unwrap_or("?");
            format!("process {pid} on {host}")
        }
        _ => "another process".into(),
    }
}

#[cfg(unix)]
fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(_file: &File, path: &Path) -> bool {
    path.exists()
}

/// This machine's name (`$HOSTNAME`, else `/etc/hostname`, else `localhost`).
pub fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| fs::read_to_string("/etc/hostname").ok().map(|h| h.trim().to_string()).filter(|h| !h.is_empty()))
        .unwrap_or_else(|| "localhost".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_of_a_run_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let result = dir.path().join("a/seed-0.json");
        let Acquired::Locked(first) = RunLock::try_acquire(&result).unwrap() else { panic!("first lock") };
        assert!(lock_path(&result).exists());
        match RunLock::try_acquire(&result).unwrap() {
            Acquired::Busy(who) => assert!(who.contains(&std::process::id().to_string()), "{who}"),
            Acquired::Locked(_) => panic!("locked twice"),
        }
        assert!(holder_of(&result).is_some());
        drop(first);
        assert!(!lock_path(&result).exists());
        assert!(holder_of(&result).is_none());
        assert!(matches!(RunLock::try_acquire(&result).unwrap(), Acquired::Locked(_)));
    }
}
