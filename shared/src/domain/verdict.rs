//! The type verdict: what the first bytes of an object say it is, and
//! whether Sluice keeps it. The name and the client's MIME are never trusted.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Kind {
    Image,
    Video,
    Audio,
    Document,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Image => "IMAGE",
            Self::Video => "VIDEO",
            Self::Audio => "AUDIO",
            Self::Document => "DOCUMENT",
        }
    }

    /// The kind a MIME type belongs to, if it is one Sluice can hold at all.
    pub fn of_mime(mime: &str) -> Option<Self> {
        let mime = mime.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
        if mime == "image/svg+xml" {
            // SVG is a script container, not a picture.
            return None;
        }
        if mime.starts_with("image/") {
            Some(Self::Image)
        } else if mime.starts_with("video/") {
            Some(Self::Video)
        } else if mime.starts_with("audio/") {
            Some(Self::Audio)
        } else if DOCUMENT_TYPES.contains(&mime.as_str()) {
            Some(Self::Document)
        } else {
            None
        }
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
        let patterns: Vec<String> = list
            .split(',')
            .map(|p| p.trim().to_ascii_lowercase())
            .filter(|p| !p.is_empty())
            .collect();
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
        Kind::of_mime(&mime).is_some()
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

/// What the bytes turned out to be, as far as the verdict needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detected {
    pub mime: String,
    /// True for executables, scripts, markup and archives: never kept.
    pub dangerous: bool,
}

impl Detected {
    /// Reads the magic numbers in the first bytes of a file.
    pub fn sniff(head: &[u8]) -> Option<Self> {
        let found = infer::get(head)?;
        let mime = found.mime_type().to_string();
        let dangerous = match found.matcher_type() {
            infer::MatcherType::App | infer::MatcherType::Text | infer::MatcherType::Font => true,
            // infer files PDF, RTF and OOXML under Archive/Doc; other archives are rejected.
            infer::MatcherType::Archive => Kind::of_mime(&mime).is_none(),
            _ => false,
        };
        Some(Self { mime, dangerous })
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
}

impl Verdict {
    fn reject(detected: Option<&Detected>, reason: String) -> Self {
        Self {
            accepted: false,
            detected_type: detected.map(|d| d.mime.clone()),
            kind: None,
            reason: Some(reason),
        }
    }

    /// Accept only allowed content whose kind matches the declared type.
    pub fn decide(detected: Option<&Detected>, declared: &str, policy: &TypePolicy) -> Self {
        let Some(found) = detected else {
            return Self::reject(None, "unknown_content: the first bytes match no allowed file type".into());
        };
        if found.dangerous {
            return Self::reject(
                detected,
                format!("forbidden_content: the bytes are {} (executables, scripts, markup and archives are refused)", found.mime),
            );
        }
        if !policy.allows(&found.mime) {
            return Self::reject(detected, format!("type_not_allowed: {} is not in the allowed types", found.mime));
        }
        let kind = Kind::of_mime(&found.mime);
        let declared_kind = Kind::of_mime(declared);
        if kind != declared_kind {
            return Self::reject(
                detected,
                format!("type_mismatch: declared {declared} but the bytes are {}", found.mime),
            );
        }
        Self { accepted: true, detected_type: Some(found.mime.clone()), kind, reason: None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0";
    const JPEG: &[u8] = b"\xFF\xD8\xFF\xE0\0\x10JFIF\0\x01\x01\0\0\x01\0\x01\0\0";
    const ELF: &[u8] = b"\x7FELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x02\0\x3E\0\x01\0\0\0";
    const PE: &[u8] = b"MZ\x90\0\x03\0\0\0\x04\0\0\0\xFF\xFF\0\0";
    const ZIP: &[u8] = b"PK\x03\x04\x14\0\0\0\x08\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x05\0\0\0a.txt";
    const PDF: &[u8] = b"%PDF-1.7\n%\xE2\xE3\xCF\xD3\n";
    const HTML: &[u8] = b"<!DOCTYPE html><html><script>alert(1)</script></html>";

    fn decide(bytes: &[u8], declared: &str) -> Verdict {
        // Real files are longer than their magic numbers (infer needs 53 bytes for ELF).
        let mut padded = bytes.to_vec();
        padded.resize(512, 0);
        Verdict::decide(Detected::sniff(&padded).as_ref(), declared, &TypePolicy::default())
    }

    #[test]
    fn images_declared_as_images_are_accepted() {
        let v = decide(PNG, "image/png");
        assert!(v.accepted);
        assert_eq!(v.kind, Some(Kind::Image));
        assert_eq!(v.detected_type.as_deref(), Some("image/png"));
        // A PNG declared as JPEG is still an image: the detected type is recorded.
        assert!(decide(PNG, "image/jpeg").accepted);
        assert!(decide(JPEG, "image/jpeg").accepted);
    }

    #[test]
    fn pdf_is_a_document() {
        let v = decide(PDF, "application/pdf");
        assert!(v.accepted, "{v:?}");
        assert_eq!(v.kind, Some(Kind::Document));
    }

    #[test]
    fn executables_named_as_images_are_refused() {
        for bytes in [ELF, PE] {
            let v = decide(bytes, "image/jpeg");
            assert!(!v.accepted);
            assert!(v.reason.unwrap().starts_with("forbidden_content"));
        }
    }

    #[test]
    fn archives_markup_and_unknown_bytes_are_refused() {
        assert!(decide(ZIP, "application/pdf").reason.unwrap().starts_with("forbidden_content"));
        assert!(!decide(HTML, "image/png").accepted);
        let v = decide(b"just some text", "image/png");
        assert!(v.reason.unwrap().starts_with("unknown_content"));
    }

    #[test]
    fn kind_must_match_the_declared_type() {
        let v = decide(PNG, "application/pdf");
        assert!(v.reason.unwrap().starts_with("type_mismatch"));
        assert_eq!(v.detected_type.as_deref(), Some("image/png"));
    }

    #[test]
    fn the_policy_narrows_what_is_allowed() {
        let only_pdf = TypePolicy::parse("application/pdf").unwrap();
        let v = Verdict::decide(Detected::sniff(PNG).as_ref(), "image/png", &only_pdf);
        assert!(v.reason.unwrap().starts_with("type_not_allowed"));
        assert!(TypePolicy::parse("").is_err());
        assert!(TypePolicy::parse("*/*").is_err());
        assert!(!TypePolicy::default().allows("image/svg+xml"));
        assert!(!TypePolicy::default().allows("text/html"));
    }
}
