//! The sample events in events/ (what `cargo lambda invoke`, SAM and the
//! tests feed the handlers), with the placeholders callers swap for live values.

pub const SAMPLE_FILE: &str = "3f8e2a52-6d1c-4b7e-9a0f-2c5d8e1b7a64";
pub const SAMPLE_TOKEN: &str = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.REPLACE.WITH-A-TOKEN-FROM-POST-auth-signin";
pub const SAMPLE_USER: &str = "9b2d7c1e-4a5f-4e3b-8c6d-1f0a2b3c4d5e";

/// The text of events/NAME.json with each `(from, to)` swapped.
pub fn sample_event(name: &str, swaps: &[(&str, &str)]) -> std::io::Result<String> {
    let path = format!("{}/../events/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let mut text = std::fs::read_to_string(path)?;
    for (from, to) in swaps {
        text = text.replace(from, to);
    }
    Ok(text)
}
