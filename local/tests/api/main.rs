//! The end-to-end tests: HTTP (and the real handlers) against a local stack
//! on the Postgres and moto that `make test` starts, one module per area,
//! in one binary so the suite links once (as zero2prod's tests/api). Two
//! stay binaries of their own: `outage` stops the run's shared Postgres,
//! and `browser` drives Chromium, too heavy to share the CPUs with others.

mod common;

mod access;
mod companion;
mod delivery;
mod events;
mod files_api;
mod inspection;
mod integrity;
mod lifecycle;
mod migrate;
mod openapi;
mod pipeline;
mod postgres_tls;
mod security;
mod template;
