//! File states and the transitions between them.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
}

impl SessionStage {
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
    fn statuses_round_trip_as_text() {
        for s in [FileStatus::Uploading, FileStatus::Uploaded, FileStatus::Failed] {
            assert_eq!(FileStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(FileStatus::parse("uploaded"), None);
        for s in [SessionStage::Open, SessionStage::Completing, SessionStage::Cancelled, SessionStage::Expired] {
            assert_eq!(SessionStage::parse(s.as_str()), Some(s));
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
