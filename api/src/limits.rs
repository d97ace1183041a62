//! The numbers a client plans an upload with. S3's own limits are fixed;
//! the ones Sluice chooses are defaults a deployment may change in its
//! environment (the API's answers then say what applies).

pub const MIB: u64 = 1024 * 1024;
pub const GIB: u64 = 1024 * MIB;

/// S3's smallest part (all but the last).
pub const MIN_PART_SIZE: u64 = 5 * MIB;
/// S3's largest part.
pub const MAX_PART_SIZE: u64 = 5 * GIB;
/// S3's limit on parts per upload.
pub const MAX_PARTS: u64 = 10_000;
/// The part size Sluice plans unless the file needs more than S3's part limit.
pub const DEFAULT_PART_SIZE: u64 = MIN_PART_SIZE;

/// `SINGLE_PUT_MAX_BYTES`' default: at or below it `POST /uploads` answers
/// one presigned PUT, and a client sends the whole file's SHA-256 for S3 to check.
pub const SINGLE_PUT_MAX_BYTES: u64 = 8 * MIB;

/// Most parts one call may sign or record, so one invocation's work (and
/// what a timed-out call leaves to retry) stays bounded.
pub const MAX_PARTS_PER_CALL: u32 = 1000;
/// Part URLs `POST /uploads` answers with; the parts routes sign the rest.
pub const FIRST_PARTS: u32 = 100;
/// Part URLs `GET /uploads/{fileId}/parts` signs without `count`.
pub const DEFAULT_PARTS_PER_GET: u32 = 100;

/// The longest `fileName`, in bytes.
pub const MAX_FILE_NAME_BYTES: usize = 1024;
/// Passwords are at least 8 characters and at most 1,024 bytes.
pub const MIN_PASSWORD_CHARS: usize = 8;
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// The longest account `name`, in characters.
pub const MAX_NAME_CHARS: usize = 200;

/// Page sizes of `GET /files`.
pub const DEFAULT_PAGE: u32 = 20;
pub const MAX_PAGE: u32 = 100;
