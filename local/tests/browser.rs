//! The web page in headless Chromium: web/e2e/upload.test.mjs (Playwright
//! driving Debian's chromium) against a stack that serves web/dist on the
//! API's origin, as CloudFront does in AWS. Its screenshot is kept in
//! target/e2e-artifacts/.

#[allow(dead_code)]
#[path = "api/common.rs"]
mod common;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uppy_in_chromium_uploads_resumes_after_a_reload_and_shows_verdicts() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    assert!(
        std::path::Path::new(&format!("{root}/web/dist/index.html")).exists(),
        "web/dist is missing: `make test` builds it (scripts/setup.sh)"
    );
    let stack = spawn_stack().await;
    let artifacts = format!("{root}/target/e2e-artifacts");
    let output = tokio::process::Command::new("node")
        .arg("e2e/upload.test.mjs")
        .current_dir(format!("{root}/web"))
        .env("SLUICE_API_URL", &stack.api_url)
        .env("SLUICE_ARTIFACTS", &artifacts)
        .output()
        .await
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the browser test failed ({}):\n{stdout}\n{stderr}", output.status);
    assert!(std::path::Path::new(&format!("{artifacts}/uploaded.png")).exists(), "{stdout}");
}
