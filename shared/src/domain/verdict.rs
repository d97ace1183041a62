//! The type verdict: what inspection of an object's structure found, and
//! whether Sluice keeps it. The name and the client's MIME are never trusted.

use serde::{Deserialize, Serialize};

use crate::inspection::Checked;

pub use sluice_api::status::Kind;

/// The kind a MIME type belongs to, if it is one Sluice can hold at all.
pub fn kind_of_mime(mime: &str) -> Option<Kind> {
    let mime = mime.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    if mime == "image/svg+xml" {
        // SVG is a script container, not a picture.
        return None;
    }
    if mime.starts_with("image/") {
        Some(Kind::Image)
    } else if mime.starts_with("video/") {
        Some(Kind::Video)
    } else if mime.starts_with("audio/") {
        Some(Kind::Audio)
    } else if DOCUMENT_TYPES.contains(&mime.as_str()) {
        Some(Kind::Document)
    } else {
        None
    }
}

/// PDF and office documents, the MIME types `infer` reports for them.
pub const DOCUMENT_TYPES: &[&str] = &[
    "application/pdf",
    "application/msword",
    "application/vnd.ms-excel",
    "application/vnd.ms-powerpoint",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/vnd.oasis.opendocument.text",
    "application/vnd.oasis.opendocument.spreadsheet",
    "application/vnd.oasis.opendocument.presentation",
    "application/rtf",
];

/// Which MIME types are allowed: patterns like `image/*` or exact types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypePolicy {
    patterns: Vec<String>,
}

impl Default for TypePolicy {
    fn default() -> Self {
        let mut patterns: Vec<String> = ["image/*", "audio/*", "video/*"].map(String::from).to_vec();
        patterns.extend(DOCUMENT_TYPES.iter().map(|s| s.to_string()));
        Self { patterns }
    }
}

impl TypePolicy {
    /// A comma-separated list such as `image/*,application/pdf`.
    pub fn parse(list: &str) -> Result<Self, String> {
        let patterns: Vec<String> = list.split(',').map(|p| p.trim().to_ascii_lowercase()).filter(|p| !p.is_empty()).collect();
        if patterns.is_empty() {
            return Err("the list is empty".into());
        }
        if let Some(bad) = patterns.iter().find(|p| !p.contains('/') || p.starts_with('*')) {
            return Err(format!("'{bad}' is not a MIME type or a 'type/*' pattern"));
        }
        Ok(Self { patterns })
    }

    pub fn allows(&self, mime: &str) -> bool {
        let mime = mime.trim().to_ascii_lowercase();
        kind_of_mime(&mime).is_some()
            && self.patterns.iter().any(|p| match p.strip_suffix("/*") {
                Some(top) => mime.split('/').next() == Some(top),
                None => *p == mime,
            })
    }
}

/// The list as ALLOWED_TYPES takes it, for messages.
impl std::fmt::Display for TypePolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.patterns.join(", "))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Verdict {
    pub accepted: bool,
    pub detected_type: Option<String>,
    pub kind: Option<Kind>,
    /// Why the file was refused, in words a user can act on.
    pub reason: Option<String>,
    /// What the structure stated, for an accepted file.
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub duration_ms: Option<u64>,
}

impl Verdict {
    fn reject(detected: Option<&str>, reason: String) -> Self {
        Self {
            accepted: false,
            detected_type: detected.map(str::to_string),
            kind: None,
            reason: Some(reason),
            width: None,
            height: None,
            duration_ms: None,
        }
    }

    /// Accept only content whose structure passed inspection, whose type
    /// is allowed, and whose kind matches the declared type.
    pub fn decide(inspected: &Checked, declared: &str, policy: &TypePolicy) -> Self {
        let found = match inspected {
            Ok(found) => found,
            Err(refusal) => return Self::reject(refusal.mime.as_deref(), refusal.reason()),
        };
        let mime = found.mime.as_str();
        if !policy.allows(mime) {
            return Self::reject(Some(mime), format!("type_not_allowed: {mime} is not in the allowed types"));
        }
        let kind = kind_of_mime(mime);
        if kind != kind_of_mime(declared) {
            return Self::reject(Some(mime), format!("type_mismatch: declared {declared} but the bytes are {mime}"));
        }
        Self {
            accepted: true,
            detected_type: Some(found.mime.clone()),
            kind,
            reason: None,
            width: found.width,
            height: found.height,
            duration_ms: found.duration_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspection::{Rules, examine_bytes, samples};

    fn decide(bytes: &[u8], declared: &str) -> Verdict {
        Verdict::decide(&examine_bytes(bytes, &Rules::default()), declared, &TypePolicy::default())
    }

    const ELF: &[u8] = b"\x7FELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x02\0\x3E\0\x01\0\0\0";
    const PE: &[u8] = b"MZ\x90\0\x03\0\0\0\x04\0\0\0\xFF\xFF\0\0";
    const HTML: &[u8] = b"<!DOCTYPE html><html><script>alert(1)</script></html>";

    fn padded(bytes: &[u8]) -> Vec<u8> {
        // Real files are longer than their magic numbers (infer needs 53 bytes for ELF).
        let mut padded = bytes.to_vec();
        padded.resize(512, 0);
        padded
    }

    #[test]
    fn images_declared_as_images_are_accepted_with_their_size() {
        let v = decide(&samples::png(2000), "image/png");
        assert!(v.accepted, "{v:?}");
        assert_eq!(v.kind, Some(Kind::Image));
        assert_eq!(v.detected_type.as_deref(), Some("image/png"));
        assert_eq!((v.width, v.height), (Some(samples::PNG_WIDTH), Some(samples::PNG_HEIGHT)));
        // A PNG declared as JPEG is still an image: the detected type is recorded.
        assert!(decide(&samples::png(2000), "image/jpeg").accepted);
    }

    #[test]
    fn pdf_is_a_document() {
        let v = decide(&samples::pdf(), "application/pdf");
        assert!(v.accepted, "{v:?}");
        assert_eq!(v.kind, Some(Kind::Document));
    }

    #[test]
    fn executables_named_as_images_are_refused() {
        for bytes in [ELF, PE] {
            let v = decide(&padded(bytes), "image/jpeg");
            assert!(!v.accepted);
            assert!(v.reason.unwrap().starts_with("forbidden_content"));
        }
    }

    #[test]
    fn archives_markup_and_unknown_bytes_are_refused() {
        assert!(decide(&padded(HTML), "image/png").reason.unwrap().starts_with("forbidden_content"));
        let v = decide(b"just some text", "image/png");
        assert!(v.reason.unwrap().starts_with("unknown_content"));
        assert!(decide(b"", "image/png").reason.unwrap().starts_with("invalid_content"));
    }

    #[test]
    fn kind_must_match_the_declared_type() {
        let v = decide(&samples::png(1000), "application/pdf");
        assert!(v.reason.unwrap().starts_with("type_mismatch"));
        assert_eq!(v.detected_type.as_deref(), Some("image/png"));
        assert_eq!(v.width, None, "a refused file records no size");
    }

    #[test]
    fn the_policy_narrows_what_is_allowed() {
        let only_pdf = TypePolicy::parse("application/pdf").unwrap();
        let v = Verdict::decide(&examine_bytes(&samples::png(1000), &Rules::default()), "image/png", &only_pdf);
        assert!(v.reason.unwrap().starts_with("type_not_allowed"));
        assert!(TypePolicy::parse("").is_err());
        assert!(TypePolicy::parse("*/*").is_err());
        assert!(!TypePolicy::default().allows("image/svg+xml"));
        assert!(!TypePolicy::default().allows("text/html"));
    }
}
