//! Building the verdict messages of `sluice_api::messages`: inspect's
//! judgement is built in `functions/inspect`; this is the one constructor
//! of the verdict of an upload that ends without its bytes judged.

pub use sluice_api::messages::VerdictMessage;

use crate::domain::FileStatus;
use crate::sessions::UploadSession;

/// The FAILED verdict of an upload that will never complete (`reason`:
/// `cancelled`, `expired`): what the session knew, no bytes judged.
pub fn closed_verdict(session: &UploadSession, bucket: &str, reason: &str) -> VerdictMessage {
    VerdictMessage {
        file_id: session.file_id,
        owner_id: session.owner_id,
        bucket: bucket.to_string(),
        key: session.key.clone(),
        file_name: session.file_name.clone(),
        size: session.plan.size,
        etag: String::new(),
        declared_type: session.declared_type.clone(),
        detected_type: None,
        kind: None,
        status: FileStatus::Failed,
        reason: Some(reason.to_string()),
        sha256: session.sha256.clone(),
        mode: Some(session.mode),
        decided_at: crate::auth::now_secs(),
        width: None,
        height: None,
        duration_ms: None,
        version_id: None,
    }
}
