//! Client-supplied file names: kept for display, sanitised for S3 keys.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileName {
    original: String,
    safe: String,
}

pub use sluice_api::limits::MAX_FILE_NAME_BYTES;
/// S3 keys are at most 1024 bytes; the safe segment leaves room for the prefix.
const MAX_SAFE_BYTES: usize = 200;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileNameError {
    #[error("fileName must not be empty")]
    Empty,
    #[error("fileName is {len} bytes; the maximum is {MAX_FILE_NAME_BYTES}")]
    TooLong { len: usize },
}

impl FileName {
    /// Keeps the name the user gave (minus control characters) and derives a
    /// key segment with no path separators, dot segments or non-ASCII bytes,
    /// so a key can never climb out of its `uploads/{user}/{file}/` prefix.
    pub fn parse(raw: &str) -> Result<Self, FileNameError> {
        if raw.len() > MAX_FILE_NAME_BYTES {
            return Err(FileNameError::TooLong { len: raw.len() });
        }
        let original = without_controls(raw).trim().to_string();
        let base = last_component(&original);
        let mut safe = String::with_capacity(base.len());
        for c in base.chars() {
            match c {
                'a'..='z' | 'A'..='Z' | '0'..='9' | '.' | '-' | '_' => safe.push(c),
                _ => {
                    if !safe.ends_with('_') {
                        safe.push('_');
                    }
                }
            }
        }
        let safe = safe.trim_start_matches('.').to_string();
        let mut safe = if safe.trim_matches(['_', '.']).is_empty() {
            if original.is_empty() {
                return Err(FileNameError::Empty);
            }
            "file".to_string()
        } else {
            safe
        };
        if safe.len() > MAX_SAFE_BYTES {
            // Keep the extension: it is what people look at.
            let ext = safe.rfind('.').map(|i| safe[i..].to_string()).filter(|e| e.len() <= 16);
            let ext = ext.unwrap_or_default();
            safe.truncate(MAX_SAFE_BYTES - ext.len());
            safe.push_str(&ext);
        }
        Ok(Self { original, safe })
    }

    pub fn original(&self) -> &str {
        &self.original
    }

    pub fn safe(&self) -> &str {
        &self.safe
    }
}

fn without_controls(raw: &str) -> String {
    raw.chars().filter(|c| !c.is_control()).collect()
}

/// Only the last path component of a name counts, for keys and downloads
/// alike: "../../etc/passwd" is "passwd", "C:\\Users\\ann\\a.png" is "a.png".
fn last_component(name: &str) -> &str {
    name.rsplit(['/', '\\']).next().unwrap_or_default()
}

/// RFC 5987 `attr-char`: everything else in `filename*` is percent-encoded.
const ATTR_CHAR_ESCAPES: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

/// `Content-Disposition` for downloading a file under the name its owner
/// gave it: only the last path component (a download cannot carry a path),
/// an ASCII `filename` for old clients and the exact name as UTF-8 `filename*`.
pub fn content_disposition(original: &str) -> String {
    let base = without_controls(last_component(original));
    let base = match base.trim() {
        "" | "." | ".." => "download",
        name => name,
    };
    let fallback: String =
        base.chars().map(|c| if (c.is_ascii_graphic() || c == ' ') && c != '"' && c != '\\' { c } else { '_' }).collect();
    let exact = percent_encoding::utf8_percent_encode(base, ATTR_CHAR_ESCAPES);
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{exact}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn safe(raw: &str) -> String {
        FileName::parse(raw).unwrap().safe().to_string()
    }

    #[test]
    fn keeps_ordinary_names() {
        assert_eq!(safe("holiday-2026_01.jpg"), "holiday-2026_01.jpg");
    }

    #[test]
    fn path_traversal_cannot_escape() {
        assert_eq!(safe("../../etc/passwd"), "passwd");
        assert_eq!(safe("..\\..\\boot.ini"), "boot.ini");
        assert_eq!(safe("/abs/path/x.pdf"), "x.pdf");
        assert_eq!(safe(".."), "file");
        assert_eq!(safe(".hidden"), "hidden");
    }

    #[test]
    fn control_characters_and_non_ascii_are_replaced() {
        assert_eq!(safe("a\u{0}b\nc.png"), "abc.png");
        assert_eq!(safe("résumé final.pdf"), "r_sum_final.pdf");
        let name = FileName::parse("résumé final.pdf").unwrap();
        assert_eq!(name.original(), "résumé final.pdf");
        assert_eq!(safe("日本語"), "file");
    }

    #[test]
    fn long_names_are_cut_keeping_the_extension() {
        let raw = format!("{}.mp4", "a".repeat(900));
        let s = safe(&raw);
        assert_eq!(s.len(), 200);
        assert!(s.ends_with(".mp4"));
    }

    #[test]
    fn rejects_empty_and_huge() {
        assert_eq!(FileName::parse("  "), Err(FileNameError::Empty));
        assert!(matches!(FileName::parse(&"x".repeat(2000)), Err(FileNameError::TooLong { len: 2000 })));
    }

    #[test]
    fn downloads_carry_the_base_name_exactly_and_an_ascii_fallback() {
        assert_eq!(content_disposition("report.pdf"), "attachment; filename=\"report.pdf\"; filename*=UTF-8''report.pdf");
        assert_eq!(
            content_disposition("../../etc/Résumé \"v2\".pdf"),
            "attachment; filename=\"R_sum_ _v2_.pdf\"; filename*=UTF-8''R%C3%A9sum%C3%A9%20%22v2%22.pdf"
        );
        assert_eq!(content_disposition("C:\\Users\\ann\\photo.png"), "attachment; filename=\"photo.png\"; filename*=UTF-8''photo.png");
        assert_eq!(content_disposition("a\u{0}b\nc.txt"), "attachment; filename=\"abc.txt\"; filename*=UTF-8''abc.txt");
        assert_eq!(content_disposition("../"), "attachment; filename=\"download\"; filename*=UTF-8''download");
        assert_eq!(content_disposition("日本.png"), "attachment; filename=\"__.png\"; filename*=UTF-8''%E6%97%A5%E6%9C%AC.png");
    }
}
