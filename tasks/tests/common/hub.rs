//! A stand-in for the Hugging Face Hub on 127.0.0.1: a thread with a `TcpListener` answering
//! the endpoints hf-hub 1.0 calls (`../shared/spec/candle-notes.md`):
//! `GET /api/datasets/{owner}/{name}/revision/{rev}` (the file list), then `HEAD` and `GET`
//! `/datasets/{owner}/{name}/resolve/{rev}/{path}` with `ETag` (the SHA-256, as for LFS files),
//! `X-Repo-Commit` and `Content-Length`, and no `X-Xet-Hash`. It records every request, and can
//! corrupt a file the first time it is sent.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

pub const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

#[derive(Clone)]
pub struct StandInHub {
    pub url: String,
    pub requests: Arc<Mutex<Vec<String>>>,
    corrupt_once: Arc<Mutex<HashSet<String>>>,
}

struct Repo {
    name: String,
    revision: String,
    files: HashMap<String, Vec<u8>>,
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

impl StandInHub {
    /// Serves `files` (repository path, content) of dataset `repo` at `revision`.
    pub fn start(repo: &str, revision: &str, files: Vec<(String, Vec<u8>)>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let hub = StandInHub {
            url,
            requests: Arc::new(Mutex::new(Vec::new())),
            corrupt_once: Arc::new(Mutex::new(HashSet::new())),
        };
        let repo = Arc::new(Repo { name: repo.into(), revision: revision.into(), files: files.into_iter().collect() });
        let state = hub.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (repo, state) = (repo.clone(), state.clone());
                std::thread::spawn(move || {
                    let _ = state.handle(stream, &repo);
                });
            }
        });
        hub
    }

    /// The next download of `path` sends damaged bytes (same length).
    pub fn corrupt_next_download(&self, path: &str) {
        self.corrupt_once.lock().unwrap().insert(path.to_string());
    }

    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }

    fn handle(&self, stream: TcpStream, repo: &Repo) -> std::io::Result<()> {
        let mut reader = BufReader::new(stream.try_clone()?);
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let mut parts = line.split_whitespace();
        let (method, target) = (parts.next().unwrap_or("").to_string(), parts.next().unwrap_or("").to_string());
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header)? == 0 || header == "\r\n" {
                break;
            }
        }
        self.requests.lock().unwrap().push(format!("{method} {target}"));
        let path = target.split('?').next().unwrap_or("");
        let info = format!("/api/datasets/{}/revision/", repo.name);
        let resolve = format!("/datasets/{}/resolve/", repo.name);
        let mut out = stream;
        if method == "GET" && path.starts_with(&info) && decode(&path[info.len()..]) == repo.revision {
            let siblings: Vec<serde_json::Value> =
                repo.files.keys().map(|f| serde_json::json!({ "rfilename": f })).collect();
            let body = serde_json::json!({ "id": repo.name, "sha": COMMIT, "siblings": siblings }).to_string();
            return respond(&mut out, "200 OK", &[("Content-Type", "application/json".into())], body.as_bytes(), true);
        }
        if let Some(rest) = path.strip_prefix(&resolve) {
            let (rev, file) = rest.split_once('/').unwrap_or((rest, ""));
            if decode(rev) == repo.revision || rev == COMMIT {
                if let Some(content) = repo.files.get(&decode(file)) {
                    let headers = [
                        ("ETag", format!("\"{}\"", sha256(content))),
                        ("X-Repo-Commit", COMMIT.to_string()),
                        ("Content-Type", "application/octet-stream".to_string()),
                    ];
                    let mut body = content.clone();
                    if method == "GET" && self.corrupt_once.lock().unwrap().remove(&decode(file)) {
                        let mid = body.len() / 2;
                        body[mid] ^= 0xff;
                    }
                    return respond(&mut out, "200 OK", &headers, &body, method == "GET");
                }
            }
        }
        respond(&mut out, "404 Not Found", &[("X-Error-Code", "EntryNotFound".into())], b"not found", method == "GET")
    }
}

fn respond(
    out: &mut TcpStream,
    status: &str,
    headers: &[(&str, String)],
    body: &[u8],
    send_body: bool,
) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n", body.len());
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    out.write_all(head.as_bytes())?;
    if send_body {
        out.write_all(body)?;
    }
    out.flush()
}
