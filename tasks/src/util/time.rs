//! Timestamps for result files and cache manifests.

/// Now, as RFC 3339 UTC with seconds (`2026-12-01T10:10:48Z`).
pub fn timestamp() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc_seconds() {
        let t = timestamp();
        assert_eq!(t.len(), 20, "{t}");
        assert!(t.starts_with("20") && t.ends_with('Z') && &t[10..11] == "T", "{t}");
        let epoch = std::time::UNIX_EPOCH + std::time::Duration::from_secs(951_782_400 + 86_399);
        assert_eq!(humantime::format_rfc3339_seconds(epoch).to_string(), "2000-02-29T23:59:59Z");
    }
}
