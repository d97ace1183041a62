//! Timestamps as the API shows them.

/// `2026-11-22T14:00:00Z` for seconds since the epoch.
pub fn rfc3339(epoch_secs: u64) -> String {
    time::OffsetDateTime::from_unix_timestamp(epoch_secs as i64)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}
