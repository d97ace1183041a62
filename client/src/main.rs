//! `sluice`: sign in, upload files resumably, list, download and delete them.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use sluice_api::auth::{SignIn, SignUp, SignedUp, Token};
use sluice_api::files::{DownloadUrl, File, FileDeleted, FileList, FileStage};
use sluice_api::{FileStatus, Kind};

use sluice_cli::api::{Api, Failure};
use sluice_cli::store::{self, Credentials};
use sluice_cli::upload;

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
    let token: Token = api.post("/auth/signin", &SignIn { email: email.to_string(), password: password.to_string() }).await?;
    let credentials = Credentials {
        api: api.base,
        email: email.to_string(),
        token: token.access_token,
        expires_at: store::now_secs() + token.expires_in,
    };
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

/// One line of `sluice upload --json`: a file and what became of it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FileLine {
    file: String,
    file_id: Option<String>,
    status: FileStatus,
    kind: Option<Kind>,
    detected_type: Option<String>,
    size: Option<u64>,
    reason: Option<String>,
}

fn file_line(path: &std::path::Path, result: &Result<upload::Outcome>) -> FileLine {
    let file = result.as_ref().ok().map(|o| &o.file);
    let (kind, detected_type) = match file.map(|f| &f.stage) {
        Some(FileStage::Judged { kind, detected_type, .. }) => (*kind, detected_type.clone()),
        _ => (None, None),
    };
    FileLine {
        file: path.display().to_string(),
        file_id: result.as_ref().ok().map(|o| o.file_id.clone()),
        status: file.map_or(FileStatus::Failed, |f| f.status),
        kind,
        detected_type,
        size: file.map(|f| f.size),
        reason: match result {
            Err(e) => Some(format!("{e:#}")),
            Ok(o) => o.file.reason.clone(),
        },
    }
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
            let line = file_line(path, &result);
            all_ok &= line.status != FileStatus::Failed;
            if as_json {
                println!("{}", serde_json::to_string(&line).expect("a line serializes"));
            } else {
                let detail = match (&result, line.status) {
                    (Err(e), _) => format!("FAILED: {e:#}"),
                    (Ok(o), FileStatus::Failed) => format!("FAILED ({}) {}", line.reason.as_deref().unwrap_or(""), o.file_id),
                    (Ok(o), status) => format!("{} {} {}", status.as_str(), line.kind.map_or("", Kind::as_str), o.file_id),
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
        let page: FileList = api.get(&path).await?;
        files.extend(page.files);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    if as_json {
        println!("{}", serde_json::to_string(&files)?);
        return Ok(());
    }
    for f in files {
        println!("{}  {:9} {:9} {:>12}  {}", f.file_id, f.status.as_str(), f.kind.map_or("-", Kind::as_str), f.size, f.file_name);
    }
    Ok(())
}

async fn download(file_id: &str, output: Option<PathBuf>) -> Result<()> {
    use futures::StreamExt;
    use tokio::io::AsyncWriteExt;
    let api = signed_in().await?;
    let file: File = api.get(&format!("/files/{file_id}")).await?;
    let signed: DownloadUrl = api.post(&format!("/files/{file_id}/download-url"), &serde_json::Map::new()).await?;
    // Only the last component of the stored name: never a path of the server's choosing.
    let name = file.file_name.rsplit(['/', '\\']).next().filter(|n| !n.is_empty() && *n != "..");
    let target = output.unwrap_or_else(|| PathBuf::from(name.unwrap_or(file_id)));
    let response = api.http.get(&signed.url).send().await?.error_for_status()?;
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
            let _: SignedUp =
                api.post("/auth/signup", &SignUp { email: account.email.clone(), password: password.clone(), name: None }).await?;
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
            let _: FileDeleted = signed_in().await?.delete(&format!("/files/{file_id}")).await?;
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
