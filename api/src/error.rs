//! Every error the API answers: `{"error":{"code":"snake_case","message":...}}`
//! with the status its code owns.

use serde::{Deserialize, Serialize};

/// The error body. Clients read `code` as text, so a code added later still
/// parses; `ErrorCode::parse` tells the known ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
    /// With `missing_parts`: the part numbers S3 does not hold as listed
    /// (signed: a client's list may hold any number).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing_parts: Option<Vec<i64>>,
    /// With `too_many_attempts`: seconds to wait, as in Retry-After.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

macro_rules! error_codes {
    ($($variant:ident = $code:literal, $status:literal;)+) => {
        /// Each error code and the HTTP status it is answered with.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $($variant,)+
        }

        impl ErrorCode {
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $code,)+
                }
            }

            pub fn status(self) -> u16 {
                match self {
                    $(Self::$variant => $status,)+
                }
            }

            pub fn parse(code: &str) -> Option<Self> {
                match code {
                    $($code => Some(Self::$variant),)+
                    _ => None,
                }
            }
        }
    };
}

// The last four are answered in API Gateway's place by the local router
// (`make dev`); API Gateway answers those cases itself in AWS.
error_codes! {
    InvalidBody = "invalid_body", 400;
    InvalidQuery = "invalid_query", 400;
    InvalidEmail = "invalid_email", 400;
    InvalidPassword = "invalid_password", 400;
    InvalidName = "invalid_name", 400;
    InvalidSize = "invalid_size", 400;
    InvalidFileName = "invalid_file_name", 400;
    InvalidMode = "invalid_mode", 400;
    InvalidChecksum = "invalid_checksum", 400;
    InvalidParts = "invalid_parts", 400;
    InvalidPartNumber = "invalid_part_number", 400;
    DuplicatePart = "duplicate_part", 400;
    PartSizeMismatch = "part_size_mismatch", 400;
    InvalidEtag = "invalid_etag", 400;
    InvalidCursor = "invalid_cursor", 400;
    Unauthorized = "unauthorized", 401;
    CrossSiteRequest = "cross_site_request", 403;
    NotFound = "not_found", 404;
    EmailTaken = "email_taken", 409;
    UploadNotOpen = "upload_not_open", 409;
    NotMultipart = "not_multipart", 409;
    MissingParts = "missing_parts", 409;
    UploadCancelled = "upload_cancelled", 409;
    UploadCompleting = "upload_completing", 409;
    CompleteRefused = "complete_refused", 409;
    NotDownloadable = "not_downloadable", 409;
    NotCompanion = "not_companion", 409;
    SizeMismatch = "size_mismatch", 409;
    FileTooLarge = "file_too_large", 413;
    QuotaExceeded = "quota_exceeded", 413;
    UnsupportedType = "unsupported_type", 415;
    UnsupportedMediaType = "unsupported_media_type", 415;
    TooManyAttempts = "too_many_attempts", 429;
    ServiceUnavailable = "service_unavailable", 503;
    InvalidRequest = "invalid_request", 400;
    RouteNotFound = "route_not_found", 404;
    BodyTooLarge = "body_too_large", 413;
    FunctionError = "function_error", 502;
}

impl ErrorCode {
    /// Answered by the local router where API Gateway would answer itself;
    /// no function answers these, so openapi.yaml does not list them.
    pub fn is_gateway(self) -> bool {
        matches!(self, Self::InvalidRequest | Self::RouteNotFound | Self::BodyTooLarge | Self::FunctionError)
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ErrorBody {
    /// The code, if it is one this contract knows.
    pub fn code(&self) -> Option<ErrorCode> {
        ErrorCode::parse(&self.error.code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_snake_case_unique_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for &code in ErrorCode::ALL {
            assert!(code.as_str().bytes().all(|b| b.is_ascii_lowercase() || b == b'_'), "{code}");
            assert!(seen.insert(code.as_str()), "{code} twice");
            assert_eq!(ErrorCode::parse(code.as_str()), Some(code));
            assert!((400..600).contains(&code.status()), "{code}");
        }
        assert_eq!(ErrorCode::parse("no_such_code"), None);
    }

    #[test]
    fn the_body_carries_only_the_fields_it_has() {
        let body =
            ErrorBody { error: ErrorDetail { code: "not_found".into(), message: "gone".into(), missing_parts: None, retry_after: None } };
        assert_eq!(serde_json::to_string(&body).unwrap(), r#"{"error":{"code":"not_found","message":"gone"}}"#);
        let with: ErrorBody = serde_json::from_str(r#"{"error":{"code":"missing_parts","message":"m","missingParts":[2,3]}}"#).unwrap();
        assert_eq!(with.error.missing_parts, Some(vec![2, 3]));
        assert_eq!(with.code(), Some(ErrorCode::MissingParts));
    }
}
