//! What an object's bytes really are, read from its structure and not from
//! its name, its client's MIME type or three magic bytes. `infer` makes the
//! first guess from the head; then the validator of that family parses the
//! format's own structure (image headers, container boxes and chunks, the
//! ZIP central directory, the OLE directory, the PDF's objects) and refuses
//! what does not parse or carries active content.
//!
//! Inspection is sans-IO: [`examine`] looks at the ranges read so far (a
//! [`Window`]) and either decides, asks for one more range, or asks for the
//! whole object to be streamed through a [`pdf::PdfScanner`]. The caller
//! does the reading, so the same code runs over S3 ranged GETs in inspect and
//! over whole files in the tests.

pub mod image;
pub mod media;
pub mod office;
pub mod pdf;
mod window;

#[cfg(any(test, feature = "test-support"))]
pub mod samples;
#[cfg(test)]
mod tests;

pub use window::{Missing, Window};

use crate::domain::Kind;

/// Bytes of the object read first, from offset 0.
pub const HEAD_BYTES: u64 = 64 * 1024;
/// Bytes of the object's end read when a validator asks for the tail.
pub const TAIL_BYTES: u64 = 64 * 1024;
/// At most this many ranged GETs per object (head, tail, one more)...
pub const MAX_READS: usize = 3;
/// ...and at most this many bytes read in all, whatever the object's size.
/// PDF is the one family read whole, as a stream.
pub const MAX_READ_BYTES: u64 = 1024 * 1024;

/// Settings that change what is accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// Office macro projects (`vbaProject.bin`, OLE `VBA` storages, ODF
    /// `Basic/` scripts) are refused unless this is set.
    pub allow_macros: bool,
    /// PDFs larger than this are refused without being scanned.
    pub pdf_scan_max_bytes: u64,
}

impl Default for Rules {
    fn default() -> Self {
        Self { allow_macros: false, pdf_scan_max_bytes: 256 * 1024 * 1024 }
    }
}

/// What the structure showed, for a file that passed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Found {
    pub mime: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub duration_ms: Option<u64>,
    pub page_count: Option<u32>,
}

impl Found {
    pub fn new(mime: &str) -> Self {
        Self { mime: mime.to_string(), ..Self::default() }
    }

    pub fn sized(mime: &str, width: u32, height: u32) -> Self {
        Self { width: Some(width), height: Some(height), ..Self::new(mime) }
    }
}

/// The stable prefix of a refusal's reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalCode {
    /// The first bytes match no file type Sluice knows.
    UnknownContent,
    /// Executables, scripts, markup and plain archives.
    ForbiddenContent,
    /// The structure does not parse as the format's specification says.
    InvalidContent,
    /// Macros, scripts, launch actions or embedded files.
    ActiveContent,
    /// The structure could not be checked within the bounded reads.
    UnverifiableContent,
}

impl RefusalCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UnknownContent => "unknown_content",
            Self::ForbiddenContent => "forbidden_content",
            Self::InvalidContent => "invalid_content",
            Self::ActiveContent => "active_content",
            Self::UnverifiableContent => "unverifiable_content",
        }
    }
}

/// Why a file is refused: a code and words a user can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: RefusalCode,
    /// What the bytes were taken for, when that much was known.
    pub mime: Option<String>,
    pub detail: String,
}

impl Refusal {
    pub fn new(code: RefusalCode, mime: Option<&str>, detail: impl Into<String>) -> Self {
        Self { code, mime: mime.map(str::to_string), detail: detail.into() }
    }

    pub fn invalid(mime: &str, detail: impl Into<String>) -> Self {
        Self::new(RefusalCode::InvalidContent, Some(mime), detail)
    }

    pub fn active(mime: &str, detail: impl Into<String>) -> Self {
        Self::new(RefusalCode::ActiveContent, Some(mime), detail)
    }

    pub fn unverifiable(mime: &str, detail: impl Into<String>) -> Self {
        Self::new(RefusalCode::UnverifiableContent, Some(mime), detail)
    }

    /// `code: detail`, as the verdict's reason.
    pub fn reason(&self) -> String {
        format!("{}: {}", self.code.as_str(), self.detail)
    }
}

/// A validator's answer over the bytes it was given.
pub type Checked = Result<Found, Refusal>;

/// What [`examine`] needs next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The verdict on the structure.
    Done(Checked),
    /// Read this range too (it is within the object) and examine again.
    Read { offset: u64, len: u64 },
    /// Stream the whole object through a [`pdf::PdfScanner`].
    ScanPdf,
}

/// A validator's answer: a verdict on the structure, or a range it lacks.
pub enum Outcome {
    Checked(Checked),
    Need(Missing),
}

impl From<Checked> for Outcome {
    fn from(checked: Checked) -> Self {
        Self::Checked(checked)
    }
}

impl From<Missing> for Outcome {
    fn from(missing: Missing) -> Self {
        Self::Need(missing)
    }
}

/// Decides what the bytes read so far show, or asks for more. The window
/// always starts with the object's head (up to [`HEAD_BYTES`]).
pub fn examine(window: &Window, rules: &Rules) -> Step {
    let head = window.head();
    if window.size() == 0 {
        return Step::Done(Err(Refusal::new(RefusalCode::InvalidContent, None, "the file is empty")));
    }
    // Signatures infer misses: TIFFs whose bytes 8-9 read like CR2's test,
    // and MPEG audio frames with CRC or of MPEG 2.5, without an ID3 tag.
    let own_guess = if head.starts_with(b"II*\0") || head.starts_with(b"MM\0*") {
        Some(if head.get(8..10) == Some(b"CR") { "image/x-canon-cr2" } else { "image/tiff" })
    } else if media::starts_with_mpeg_frames(head) {
        Some("audio/mpeg")
    } else {
        None
    };
    let guess = infer::get(head);
    let Some(mime) = own_guess.or(guess.as_ref().map(|g| g.mime_type())) else {
        return Step::Done(Err(Refusal::new(RefusalCode::UnknownContent, None, "the first bytes match no allowed file type")));
    };
    let outcome = match mime {
        "image/png" => image::png(window),
        "image/jpeg" => image::jpeg(window),
        "image/gif" => image::gif(window),
        "image/webp" => image::webp(window),
        "image/bmp" => image::bmp(window),
        "image/tiff" | "image/x-canon-cr2" => image::tiff(window, mime),
        "image/heif" | "image/avif" | "video/mp4" | "video/x-m4v" | "video/quicktime" | "audio/m4a" => media::bmff(window, mime),
        "video/x-matroska" | "video/webm" => media::matroska(window, mime),
        "audio/x-wav" | "video/x-msvideo" => media::riff(window, mime),
        "audio/ogg" | "audio/opus" => media::ogg(window, mime),
        "audio/x-flac" => media::flac(window),
        "audio/mpeg" => media::mp3(window),
        "application/zip"
        | "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
        | "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        | "application/vnd.openxmlformats-officedocument.presentationml.presentation"
        | "application/vnd.oasis.opendocument.text"
        | "application/vnd.oasis.opendocument.spreadsheet"
        | "application/vnd.oasis.opendocument.presentation" => office::zip_package(window, rules),
        "application/msword" | "application/vnd.ms-excel" | "application/vnd.ms-powerpoint" | "application/x-ole-storage" => {
            office::ole(window, rules)
        }
        "application/pdf" => {
            if window.size() > rules.pdf_scan_max_bytes {
                Outcome::Checked(Err(Refusal::unverifiable(
                    mime,
                    format!(
                        "the PDF is {} bytes; PDFs over {} bytes (PDF_SCAN_MAX_BYTES) are not scanned",
                        window.size(),
                        rules.pdf_scan_max_bytes
                    ),
                )))
            } else {
                return Step::ScanPdf;
            }
        }
        _ => match (guess.map_or(infer::MatcherType::Custom, |g| g.matcher_type()), crate::domain::verdict::kind_of_mime(mime)) {
            (infer::MatcherType::App | infer::MatcherType::Text | infer::MatcherType::Font, _)
            | (infer::MatcherType::Archive | infer::MatcherType::Book, None) => Outcome::Checked(Err(forbidden(mime))),
            (_, Some(Kind::Image)) => image::other(window, mime),
            (_, None) => Outcome::Checked(Err(forbidden(mime))),
            (_, Some(_)) => {
                Outcome::Checked(Err(Refusal::unverifiable(mime, format!("Sluice cannot check the structure of {mime} files"))))
            }
        },
    };
    match outcome {
        Outcome::Checked(checked) => Step::Done(checked),
        Outcome::Need(missing) => window.plan_read(missing, mime),
    }
}

pub(crate) fn forbidden(mime: &str) -> Refusal {
    Refusal::new(
        RefusalCode::ForbiddenContent,
        Some(mime),
        format!("the bytes are {mime} (executables, scripts, markup and archives are refused)"),
    )
}

/// Examines a whole file held in memory, PDF scan included: what the tests
/// and the bench use. Inspect reads ranges instead.
pub fn examine_bytes(bytes: &[u8], rules: &Rules) -> Checked {
    let window = Window::whole(bytes);
    match examine(&window, rules) {
        Step::Done(checked) => checked,
        Step::ScanPdf => scan_pdf_bytes(bytes),
        // A whole file has every range; a validator asking for one anyway
        // is a bug, answered as unverifiable rather than a panic.
        Step::Read { offset, len } => {
            Err(Refusal::new(RefusalCode::UnverifiableContent, None, format!("bytes {offset}..+{len} were asked for again")))
        }
    }
}

/// Scans a PDF held in memory.
pub fn scan_pdf_bytes(bytes: &[u8]) -> Checked {
    let mut scanner = pdf::PdfScanner::new(bytes.len() as u64);
    for chunk in bytes.chunks(64 * 1024) {
        scanner.feed(chunk);
    }
    scanner.finish()
}

/// Big-endian and little-endian integers at an offset of a slice that the
/// caller has checked is long enough.
pub(crate) fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}
pub(crate) fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}
pub(crate) fn be64(b: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(b[at..at + 8].try_into().unwrap())
}
pub(crate) fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
pub(crate) fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}
pub(crate) fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}
