//! The `sluice` binary against a local stack, as a user runs it: killed and
//! resumed, a part that fails twice, Ctrl-C, and ls/download/rm. The local
//! S3 counts every part PUT it receives.

#[allow(dead_code)]
#[path = "../../local/tests/api/common.rs"]
mod common;

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::*;
use serde_json::Value;

/// A user's folder: config (credentials, resume state) and files.
struct Home {
    dir: PathBuf,
}

impl Home {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("sluice-cli-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(dir.join("files")).unwrap();
        Self { dir }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_sluice"));
        command
            .args(args)
            .env("SLUICE_CONFIG_DIR", self.dir.join("config"))
            .env("SLUICE_PASSWORD", "correct horse battery")
            .current_dir(&self.dir)
            .stdin(Stdio::null());
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        let output = self.command(args).output().unwrap();
        eprintln!("sluice {args:?}: {}\n{}", output.status, String::from_utf8_lossy(&output.stderr));
        output
    }

    fn file(&self, name: &str, bytes: &[u8]) -> String {
        let path = self.dir.join("files").join(name);
        std::fs::write(&path, bytes).unwrap();
        path.display().to_string()
    }

    /// The uploads this user's CLI would resume.
    fn resumable(&self) -> Vec<Value> {
        let Ok(entries) = std::fs::read_dir(self.dir.join("config/uploads")) else { return Vec::new() };
        entries.map(|e| serde_json::from_slice(&std::fs::read(e.unwrap().path()).unwrap()).unwrap()).collect()
    }

    fn token(&self) -> String {
        let credentials: Value = serde_json::from_slice(&std::fs::read(self.dir.join("config/credentials.json")).unwrap()).unwrap();
        credentials["token"].as_str().unwrap().to_string()
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn signed_up(stack: &sluice_local::Stack) -> Home {
    let home = Home::new();
    let email = format!("{}@example.com", uuid::Uuid::new_v4().simple());
    let output = home.run(&["signup", "--api", &stack.api_url, "--email", &email]);
    assert!(output.status.success());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(home.dir.join("config/credentials.json")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the token is the user's alone");
    }
    home
}

fn json_lines(output: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&output.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

async fn wait_for_puts(stack: &sluice_local::Stack, at_least: u32) {
    eventually(60, "part PUTs", || async { stack.s3_probe.total_puts() >= at_least }).await;
}

async fn multipart_uploads(stack: &sluice_local::Stack) -> usize {
    stack.clients.s3().list_multipart_uploads().bucket(&stack.bucket).send().await.unwrap().uploads().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_upload_resumes_sending_only_the_missing_parts() {
    let stack = spawn_stack().await;
    let home = signed_up(&stack);
    let data = png(200 * MIB);
    let path = home.file("survey.png", &data);

    let mut first = home.command(&["upload", &path, "--parallel", "2"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    wait_for_puts(&stack, 12).await;
    first.kill().unwrap();
    first.wait().unwrap();
    let puts_at_kill = stack.s3_probe.total_puts();

    let state = home.resumable();
    assert_eq!(state.len(), 1, "the killed run left its upload to resume");
    let file_id = state[0]["fileId"].as_str().unwrap().to_string();
    let client = Client::new(&stack);
    let (_, session) = client.call("GET", &format!("/uploads/{file_id}"), Some(&home.token()), None).await;
    let recorded = session["recordedParts"].as_array().unwrap().len() as u32;
    let part_count = session["partCount"].as_u64().unwrap() as u32;
    assert_eq!(part_count, 40);
    // A kill loses at most the PUTs in flight (2) and the sent parts not yet
    // recorded: under three groups of --parallel (2), so at most 5.
    let lost = puts_at_kill.saturating_sub(recorded);
    assert!(recorded < part_count && lost <= 2 + 5, "killed mid-way: {recorded} of {part_count} parts recorded after {puts_at_kill} PUTs");

    let before = stack.s3_probe.total_puts();
    let (sign, record) = ("POST /uploads/{fileId}/parts", "POST /uploads/{fileId}/chunks");
    let calls_before = (stack.api.calls.of(sign), stack.api.calls.of(record));
    let output = home.run(&["upload", &path, "--wait", "--json"]);
    assert!(output.status.success());
    let lines = json_lines(&output);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["fileId"], file_id.as_str(), "the same upload, resumed");
    assert_eq!((lines[0]["status"].as_str(), lines[0]["kind"].as_str()), (Some("UPLOADED"), Some("IMAGE")), "{}", lines[0]);
    assert_eq!(lines[0]["size"], data.len());
    let missing = part_count - recorded;
    assert_eq!(stack.s3_probe.total_puts() - before, missing, "only the missing parts were sent again");
    // Signed and recorded a group of --parallel (4 by default) parts per call.
    let calls = (stack.api.calls.of(sign) - calls_before.0, stack.api.calls.of(record) - calls_before.1);
    assert_eq!(calls, (missing.div_ceil(4), missing.div_ceil(4)), "sign and record calls for {missing} parts");
    assert!(home.resumable().is_empty(), "nothing left to resume");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_part_that_fails_twice_is_retried_then_ls_download_and_rm_work() {
    let stack = spawn_stack().await;
    let home = signed_up(&stack);
    let data = png(12 * MIB);
    let path = home.file("plan.png", &data);
    stack.s3_probe.fail_next(2, 2);

    let output = home.run(&["upload", &path, "--wait", "--json"]);
    assert!(output.status.success());
    let line = &json_lines(&output)[0];
    assert_eq!(line["status"], "UPLOADED", "{line}");
    assert_eq!(
        (stack.s3_probe.puts_of(1), stack.s3_probe.puts_of(2), stack.s3_probe.puts_of(3)),
        (1, 3, 1),
        "part 2 failed twice, then went up"
    );
    let file_id = line["fileId"].as_str().unwrap();

    let listed = home.run(&["ls", "--json"]);
    let files: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(files[0]["fileId"], file_id, "{files}");

    let output = home.run(&["download", file_id, "-o", "copy.png"]);
    assert!(output.status.success());
    assert!(std::fs::read(home.dir.join("copy.png")).unwrap() == data, "the bytes round-trip");

    assert!(home.run(&["rm", file_id]).status.success());
    let listed = home.run(&["ls", "--json"]);
    assert_eq!(serde_json::from_slice::<Value>(&listed.stdout).unwrap(), serde_json::json!([]));
    let gone = home.run(&["rm", file_id]);
    assert_eq!(gone.status.code(), Some(1), "a refusal exits 1");
    assert!(String::from_utf8_lossy(&gone.stderr).contains("not_found"));

    // A spoofed file fails, and --json says why with a non-zero exit.
    let path = home.file("invoice.pdf", &elf(64 * 1024));
    let output = home.run(&["upload", &path, "--wait", "--json"]);
    assert_eq!(output.status.code(), Some(1));
    let line = &json_lines(&output)[0];
    assert_eq!(line["status"], "FAILED", "{line}");
    assert!(line["reason"].as_str().unwrap().starts_with("forbidden_content"), "{line}");
}

/// Sends SIGINT, as Ctrl-C does.
fn interrupt(child: &std::process::Child) {
    let status = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
}

fn exit_code(mut child: std::process::Child) -> Option<i32> {
    for _ in 0..300 {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill().unwrap();
    panic!("sluice did not stop after Ctrl-C");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_cancels_the_upload_and_leaves_no_multipart_upload_behind() {
    let stack = spawn_stack().await;
    let home = signed_up(&stack);
    let path = home.file("big.png", &png(100 * MIB));

    let child = home.command(&["upload", &path, "--parallel", "1"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    wait_for_puts(&stack, 3).await;
    let file_id = home.resumable()[0]["fileId"].as_str().unwrap().to_string();
    assert_eq!(multipart_uploads(&stack).await, 1);
    interrupt(&child);
    assert_eq!(exit_code(child), Some(130));
    assert_eq!(multipart_uploads(&stack).await, 0, "S3 holds no parts of it");
    assert!(home.resumable().is_empty(), "nothing to resume: it was cancelled");
    let client = Client::new(&stack);
    let user = User { id: String::new(), email: String::new(), token: home.token() };
    let file = client.wait_final(&user, &file_id).await;
    assert_eq!((file["status"].as_str(), file["reason"].as_str()), (Some("FAILED"), Some("cancelled")), "{file}");

    // With --keep, Ctrl-C leaves it resumable, and the next run finishes it.
    let child = home.command(&["upload", &path, "--parallel", "1", "--keep"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    wait_for_puts(&stack, stack.s3_probe.total_puts() + 3).await;
    interrupt(&child);
    assert_eq!(exit_code(child), Some(130));
    assert_eq!(multipart_uploads(&stack).await, 1, "kept for later");
    assert_eq!(home.resumable().len(), 1);
    let output = home.run(&["upload", &path, "--wait", "--json"]);
    assert!(output.status.success());
    assert_eq!(json_lines(&output)[0]["status"], "UPLOADED");
}
