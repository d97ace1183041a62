//! `sluice`: sign in, upload files resumably, list, download and delete them.

mod api;
mod store;
mod upload;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Value, json};

use crate::api::{Api, Failure};
use crate::store::Credentials;

#[derive(Parser)]
#[command(name = "sluice", version, about = "Upload files to Sluice, resumably")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create an account, then sign in.
    Signup(Account),
    /// Sign in; the token is kept (mode 0600) in the config folder.
    Login(Account),
    /// Upload files. Running the same command again resumes an interrupted upload.
    Upload {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Parts in flight at once.
        #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
        parallel: u16,
        /// Wait until each file is UPLOADED or FAILED.
        #[arg(long)]
        wait: bool,
        /// One JSON object per file on stdout.
        #[arg(long)]
        json: bool,
        /// On Ctrl-C, keep the uploads resumable instead of cancelling them.
        #[arg(long)]
        keep: bool,
    },
    /// List your files.
    Ls {
        #[arg(long)]
        json: bool,
    },
    /// Download a file.
    Download {
        file_id: String,
        /// Where to write it (default: its name, in the current folder).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Delete a file.
    Rm { file_id: String },
}

#[derive(clap::Args)]
struct Account {
    /// The API's base URL, e.g. https://d111.cloudfront.net.
    #[arg(long, env = "SLUICE_API")]
    api: String,
    #[arg(long)]
    email: String,
}

fn password() -> Result<String> {
    if let Ok(password) = std::env::var("SLUICE_PASSWORD") {
        return Ok(password);
    }
    rpassword::prompt_password("Password: ").context("reading the password (or set SLUICE_PASSWORD)")
}

async fn sign_in(api_url: &str, email: &str, password: &str) -> Result<Credentials> {
    let api = Api::new(api_url, None);
    let answer = api.post("/auth/signin", json!({ "email": email, "password": password })).await?;
    let token = answer["accessToken"].as_str().context("the API gave no token")?.to_string();
    let ttl = answer["expiresIn"].as_u64().unwrap_or(3600);
    let credentials = Credentials { api: api.base, email: email.to_string(), token, expires_at: store::now_secs() + ttl };
    store::save_credentials(&credentials)?;
    Ok(credentials)
}

/// The signed-in API; an expired token is renewed when SLUICE_PASSWORD is set.
async fn signed_in() -> Result<Api> {
    let Some(mut credentials) = store::load_credentials()? else {
        bail!("not signed in: run `sluice login --api URL --email EMAIL`");
    };
    if credentials.expires_at <= store::now_secs() + 60 {
        let Ok(password) = std::env::var("SLUICE_PASSWORD") else {
            bail!("your session has expired: run `sluice login --api {} --email {}`", credentials.api, credentials.email);
        };
        credentials = sign_in(&credentials.api, &credentials.email, &password).await?;
    }
    Ok(Api::new(&credentials.api, Some(credentials.token)))
}

fn file_line(path: &std::path::Path, outcome: Option<&upload::Outcome>, error: Option<&anyhow::Error>) -> Value {
    let file = outcome.map(|o| &o.file).unwrap_or(&Value::Null);
    json!({
        "file": path.display().to_string(),
        "fileId": outcome.map(|o| o.file_id.clone()),
        "status": if error.is_some() { json!("FAILED") } else { file["status"].clone() },
        "kind": file["kind"],
        "detectedType": file["detectedType"],
        "size": file["size"],
        "reason": match error { Some(e) => json!(format!("{e:#}")), None => file["reason"].clone() },
    })
}

async fn upload(files: Vec<PathBuf>, parallel: u16, wait: bool, as_json: bool, keep: bool) -> Result<ExitCode> {
    let api = signed_in().await?;
    let options = upload::Options { parallel: parallel.into(), wait };
    let in_flight = upload::InFlight::default();
    let bars = MultiProgress::with_draw_target(if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    });
    let style = ProgressStyle::with_template("{msg:24!} {bar:30} {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}")
        .expect("a valid template");

    let work = async {
        let mut all_ok = true;
        for path in &files {
            let bar = bars.add(ProgressBar::new(0).with_style(style.clone()));
            bar.set_message(path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());
            let result = upload::upload_file(&api, path, &options, &bar, &in_flight).await;
            let line = file_line(path, result.as_ref().ok(), result.as_ref().err());
            all_ok &= line["status"] != "FAILED";
            if as_json {
                println!("{line}");
            } else {
                let detail = match (&result, line["status"].as_str()) {
                    (Err(e), _) => format!("FAILED: {e:#}"),
                    (Ok(o), Some("FAILED")) => format!("FAILED ({}) {}", o.file["reason"].as_str().unwrap_or(""), o.file_id),
                    (Ok(o), status) => format!("{} {} {}", status.unwrap_or("?"), o.file["kind"].as_str().unwrap_or(""), o.file_id),
                };
                bars.suspend(|| println!("{}: {detail}", path.display()));
            }
        }
        all_ok
    };
    tokio::select! {
        all_ok = work => Ok(if all_ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }),
        _ = tokio::signal::ctrl_c() => {
            bars.clear().ok();
            if keep {
                eprintln!("interrupted: run the same command again to resume");
            } else {
                for file_id in upload::cancel_all(&api, &in_flight).await {
                    eprintln!("interrupted: cancelled upload {file_id}");
                }
            }
            Ok(ExitCode::from(130))
        }
    }
}

async fn list(as_json: bool) -> Result<()> {
    let api = signed_in().await?;
    let mut files = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/files?limit=100&cursor={c}"),
            None => "/files?limit=100".to_string(),
        };
        let page = api.get(&path).await?;
        files.extend(page["files"].as_array().cloned().unwrap_or_default());
        match page["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    if as_json {
        println!("{}", Value::Array(files));
        return Ok(());
    }
    for f in files {
        let text = |k: &str| f[k].as_str().unwrap_or("-").to_string();
        println!("{}  {:9} {:9} {:>12}  {}", text("fileId"), text("status"), text("kind"), f["size"], text("fileName"));
    }
    Ok(())
}

async fn download(file_id: &str, output: Option<PathBuf>) -> Result<()> {
    use futures::StreamExt;
    use tokio::io::AsyncWriteExt;
    let api = signed_in().await?;
    let file = api.get(&format!("/files/{file_id}")).await?;
    let signed = api.post(&format!("/files/{file_id}/download-url"), json!({})).await?;
    // Only the last component of the stored name: never a path of the server's choosing.
    let name = file["fileName"].as_str().and_then(|n| n.rsplit(['/', '\\']).next()).filter(|n| !n.is_empty() && *n != "..");
    let target = output.unwrap_or_else(|| PathBuf::from(name.unwrap_or(file_id)));
    let response = api.http.get(signed["url"].as_str().context("the API gave no URL")?).send().await?.error_for_status()?;
    let partial = target.with_extension("sluice-partial");
    let mut out = tokio::fs::File::create(&partial).await.with_context(|| format!("writing {}", partial.display()))?;
    let bar = ProgressBar::new(response.content_length().unwrap_or(0));
    if !std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        out.write_all(&chunk).await?;
        bar.inc(chunk.len() as u64);
    }
    out.flush().await?;
    out.sync_all().await?;
    tokio::fs::rename(&partial, &target).await?;
    bar.finish_and_clear();
    eprintln!("saved {}", target.display());
    Ok(())
}

async fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Signup(account) => {
            let password = password()?;
            let api = Api::new(&account.api, None);
            api.post("/auth/signup", json!({ "email": account.email, "password": password })).await?;
            sign_in(&account.api, &account.email, &password).await?;
            eprintln!("signed up and signed in as {}", account.email);
        }
        Command::Login(account) => {
            sign_in(&account.api, &account.email, &password()?).await?;
            eprintln!("signed in as {}", account.email);
        }
        Command::Upload { files, parallel, wait, json, keep } => return upload(files, parallel, wait, json, keep).await,
        Command::Ls { json } => list(json).await?,
        Command::Download { file_id, output } => download(&file_id, output).await?,
        Command::Rm { file_id } => {
            signed_in().await?.delete(&format!("/files/{file_id}")).await?;
            eprintln!("deleted {file_id}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Cli::parse()).await {
        Ok(code) => code,
        Err(e) => {
            let refused = e.downcast_ref::<Failure>().is_some_and(|f| matches!(f, Failure::Refused { .. }));
            eprintln!("sluice: {e:#}");
            ExitCode::from(if refused { 1 } else { 2 })
        }
    }
}
