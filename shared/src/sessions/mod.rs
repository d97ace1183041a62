//! Upload sessions: the entity (`entity`) and its DynamoDB adapter
//! (`store`). The HTTP rules over a session are `http::upload_rules`; the
//! close-out of an upload that will never complete is `closeout`.

pub mod entity;
pub mod store;

pub use entity::{Judged, MAX_PARTS_PER_CALL, PURGE_GRACE_SECS, RecordedPart, UploadSession};
pub use store::{SessionStore, StoreError};
