//! The states a file and its upload session are in, and how its bytes
//! travel, as the API and the verdict message write them.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FileStatus {
    Uploading,
    Uploaded,
    Failed,
}

impl FileStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Uploading => "UPLOADING",
            Self::Uploaded => "UPLOADED",
            Self::Failed => "FAILED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "UPLOADING" => Some(Self::Uploading),
            "UPLOADED" => Some(Self::Uploaded),
            "FAILED" => Some(Self::Failed),
            _ => None,
        }
    }

    /// An upload only moves forward: UPLOADING to a final state. A final
    /// state is never replaced by a different one (a redelivered verdict
    /// repeats the same state).
    pub fn can_become(self, next: Self) -> bool {
        matches!((self, next), (Self::Uploading, _)) || self == next
    }
}

/// The upload session's own stage, kept in DynamoDB while bytes move.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SessionStage {
    /// Parts may be recorded.
    Open,
    /// CompleteMultipartUpload has been asked for; no more parts.
    Completing,
    /// The owner cancelled: the multipart upload is aborted, the file FAILED.
    Cancelled,
    /// Nobody finished it in time: the sweeper aborted it, the file FAILED.
    Expired,
}

impl SessionStage {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "OPEN",
            Self::Completing => "COMPLETING",
            Self::Cancelled => "CANCELLED",
            Self::Expired => "EXPIRED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "OPEN" => Some(Self::Open),
            "COMPLETING" => Some(Self::Completing),
            "CANCELLED" => Some(Self::Cancelled),
            "EXPIRED" => Some(Self::Expired),
            _ => None,
        }
    }

    /// What the file is, seen from its session: uploading until cancelled.
    pub fn file_status(self) -> FileStatus {
        match self {
            Self::Open | Self::Completing => FileStatus::Uploading,
            Self::Cancelled | Self::Expired => FileStatus::Failed,
        }
    }

    /// Why the file failed, when the session alone says it did.
    pub fn failure_reason(self) -> Option<&'static str> {
        match self {
            Self::Cancelled => Some("cancelled"),
            Self::Expired => Some("expired"),
            Self::Open | Self::Completing => None,
        }
    }
}

/// How the bytes travel: one presigned PUT, presigned parts of a multipart
/// upload that Sluice planned, or parts the client cut itself through the
/// Companion-compatible routes Uppy calls (`/s3/multipart…`); for those the
/// parts S3 holds are the truth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UploadMode {
    Single,
    Multipart,
    Companion,
}

impl UploadMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Single => "single",
            Self::Multipart => "multipart",
            Self::Companion => "companion",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "single" => Some(Self::Single),
            "multipart" => Some(Self::Multipart),
            "companion" => Some(Self::Companion),
            _ => None,
        }
    }
}

/// What a kept file is, by its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "IMAGE" => Some(Self::Image),
            "VIDEO" => Some(Self::Video),
            "AUDIO" => Some(Self::Audio),
            "DOCUMENT" => Some(Self::Document),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uploads_only_move_forward() {
        use FileStatus::*;
        assert!(Uploading.can_become(Uploaded));
        assert!(Uploading.can_become(Failed));
        assert!(Uploaded.can_become(Uploaded));
        assert!(!Uploaded.can_become(Failed));
        assert!(!Failed.can_become(Uploaded));
        assert!(!Uploaded.can_become(Uploading));
    }

    #[test]
    fn the_text_forms_round_trip_and_match_serde() {
        for s in [FileStatus::Uploading, FileStatus::Uploaded, FileStatus::Failed] {
            assert_eq!(FileStatus::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        assert_eq!(FileStatus::parse("uploaded"), None);
        for s in [SessionStage::Open, SessionStage::Completing, SessionStage::Cancelled, SessionStage::Expired] {
            assert_eq!(SessionStage::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        for m in [UploadMode::Single, UploadMode::Multipart, UploadMode::Companion] {
            assert_eq!(UploadMode::parse(m.as_str()), Some(m));
            assert_eq!(serde_json::to_value(m).unwrap(), m.as_str());
        }
        for k in [Kind::Image, Kind::Video, Kind::Audio, Kind::Document] {
            assert_eq!(Kind::parse(k.as_str()), Some(k));
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
        }
    }

    #[test]
    fn a_cancelled_session_is_a_failed_file() {
        assert_eq!(SessionStage::Open.file_status(), FileStatus::Uploading);
        assert_eq!(SessionStage::Completing.file_status(), FileStatus::Uploading);
        assert_eq!(SessionStage::Cancelled.file_status(), FileStatus::Failed);
        assert_eq!(SessionStage::Cancelled.failure_reason(), Some("cancelled"));
        assert_eq!(SessionStage::Open.failure_reason(), None);
        assert_eq!(SessionStage::Expired.file_status(), FileStatus::Failed);
        assert_eq!(SessionStage::Expired.failure_reason(), Some("expired"));
    }
}
