//! Tracing set-up: JSON lines in Lambda (CloudWatch), readable text locally.

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::prelude::*;

/// `RUST_LOG` as level directives (`info`, `warn,presign=debug`), read with
/// `Targets` rather than `EnvFilter`: the same syntax without span and field
/// matching, whose regex engine was most of a megabyte of every function.
/// A value that does not parse stops start-up, naming it.
pub fn init() {
    let filter = match std::env::var("RUST_LOG") {
        Ok(value) if !value.trim().is_empty() => value.parse::<Targets>().unwrap_or_else(|err| {
            eprintln!("RUST_LOG='{value}' is not valid: {err} (expected e.g. 'info' or 'warn,presign=debug')");
            std::process::exit(2);
        }),
        _ => Targets::new().with_default(LevelFilter::INFO),
    };
    let text = tracing_subscriber::fmt::layer().with_target(false);
    let registry = tracing_subscriber::registry().with(filter);
    let result = if std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some() {
        registry.with(text.json().without_time()).try_init()
    } else {
        registry.with(text).try_init()
    };
    // A second init (tests, the local stack) keeps the first subscriber.
    let _ = result;
}
