//! Domain types that parse their input once, so the rest of the code cannot
//! hold an invalid value.

pub mod account;
pub mod checksum;
pub mod file_name;
pub mod plan;
pub mod redelivery;
pub mod signin;
pub mod status;
pub mod upload_token;
pub mod verdict;

pub use account::{Email, Password};
pub use checksum::Sha256Checksum;
pub use file_name::FileName;
pub use plan::{MIB, PartNumber, PartPlan, PlanError, UploadMode};
pub use status::FileStatus;
pub use verdict::{Kind, TypePolicy, Verdict};
