//! The `sluice` CLI's library: the API over HTTP with retries (`api`), the
//! resumable upload (`upload`) and the local state (`store`). The bench
//! drives the API through this same client.

pub mod api;
pub mod store;
pub mod upload;
