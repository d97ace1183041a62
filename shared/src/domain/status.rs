//! File states and the transitions between them: the contract's types
//! (`sluice_api::status`), re-exported where the domain names them.

pub use sluice_api::status::{FileStatus, SessionStage};
