//! `make bench`: Sluice measured side by side with its references in one
//! run, on this machine, and reported as ratios (machines are noisy; ratios
//! of figures taken minutes apart travel better than absolute times).
//! Runs inside scripts/stack.sh, which starts PostgreSQL and moto; the
//! harness starts its own local stack on them, plus Uppy Companion and
//! pgbench as references. `--smoke` runs every benchmark with tiny sizes so
//! `make test` proves the harness still works; its figures mean nothing.

mod api;
mod cold_start;
mod inspection;
mod persist_rate;
mod report;
mod signing;
mod upload;

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, ValueEnum};
use report::Report;
use sluice_local::{Stack, StackOptions};

#[derive(Parser)]
#[command(about = "Sluice's benchmarks against their references (see README, Benchmarks)")]
struct Args {
    /// Tiny sizes and counts: proves the harness works; the figures mean nothing.
    #[arg(long)]
    smoke: bool,
    /// Where the functions', hello-lambda's and sluice's binaries are.
    #[arg(long, default_value = "target/release")]
    bin_dir: PathBuf,
    /// Also write the table (Markdown) to this file.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Run only these benchmarks.
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<Bench>,
    /// Concurrent clients for the HTTP, persist and upload benchmarks
    /// (ours and the reference always get the same number).
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Bench {
    ColdStart,
    Signing,
    Inspection,
    Persist,
    Upload,
}

/// Sizes and counts of one run: the full ones, or the smoke test's.
pub struct Scale {
    pub smoke: bool,
    pub concurrency: usize,
    pub cold_start_runs: usize,
    pub sign_upload_size: u64,
    pub sign_runs: usize,
    pub http_seconds: f64,
    pub inspect_sizes: Vec<u64>,
    pub inspect_runs: usize,
    pub persist_messages: usize,
    pub pgbench_seconds: u32,
    pub upload_size: u64,
    pub upload_runs: usize,
    pub latency_uploads: usize,
}

pub const KIB: u64 = 1024;
pub const MIB: u64 = 1024 * KIB;
pub const GIB: u64 = 1024 * MIB;

impl Scale {
    fn new(smoke: bool, concurrency: usize) -> Self {
        if smoke {
            Self {
                smoke,
                concurrency,
                cold_start_runs: 1,
                sign_upload_size: GIB,
                sign_runs: 1,
                http_seconds: 0.5,
                inspect_sizes: vec![64 * KIB, MIB, 2 * MIB],
                inspect_runs: 1,
                persist_messages: 40,
                pgbench_seconds: 1,
                upload_size: 16 * MIB,
                upload_runs: 1,
                latency_uploads: 3,
            }
        } else {
            Self {
                smoke,
                concurrency,
                cold_start_runs: 5,
                sign_upload_size: 48 * GIB,
                sign_runs: 5,
                http_seconds: 10.0,
                inspect_sizes: vec![MIB, 100 * MIB, GIB],
                inspect_runs: 25,
                persist_messages: 3000,
                pgbench_seconds: 10,
                upload_size: GIB,
                upload_runs: 3,
                latency_uploads: 50,
            }
        }
    }
}

/// Scratch files (the benchmark's big inputs), removed at the end.
pub fn scratch_dir() -> PathBuf {
    std::env::var_os("SLUICE_STATE_DIR").map(PathBuf::from).unwrap_or_else(std::env::temp_dir).join("bench-scratch")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    sluice_shared::telemetry::init();
    let args = Args::parse();
    let scale = Scale::new(args.smoke, args.concurrency.max(1));
    let wanted = |b: Bench| args.only.is_empty() || args.only.contains(&b);

    let name = format!("bench{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let mut opts = StackOptions::from_process_env(&name).map_err(|e| anyhow::anyhow!("{e}"))?;
    opts.web_dir = None;
    // Room for the 48 GiB upload of the signing benchmark and every run's bytes.
    opts.extra_env = vec![("MAX_FILE_SIZE".into(), (50 * GIB).to_string()), ("USER_QUOTA_BYTES".into(), (1024 * GIB).to_string())];
    let stack = Stack::start(opts).await.map_err(|e| anyhow::anyhow!("the local stack did not start: {e}"))?;
    std::fs::create_dir_all(scratch_dir())?;

    let mut report = Report::new(&scale);
    if wanted(Bench::ColdStart) {
        eprintln!("bench: cold start…");
        cold_start::run(&stack, &args.bin_dir, &scale, &mut report).await.context("cold start")?;
    }
    if wanted(Bench::Signing) {
        eprintln!("bench: signing…");
        signing::run(&stack, &scale, &mut report).await.context("signing")?;
    }
    if wanted(Bench::Inspection) {
        eprintln!("bench: inspection…");
        inspection::run(&stack, &args.bin_dir, &scale, &mut report).await.context("inspection")?;
    }
    if wanted(Bench::Persist) {
        eprintln!("bench: persist…");
        persist_rate::run(&stack, &scale, &mut report).await.context("persist")?;
    }
    if wanted(Bench::Upload) {
        eprintln!("bench: end-to-end upload…");
        upload::run(&stack, &args.bin_dir, &scale, &mut report).await.context("end-to-end upload")?;
    }
    let _ = std::fs::remove_dir_all(scratch_dir());

    let table = report.markdown();
    println!("{table}");
    if let Some(out) = &args.out {
        std::fs::write(out, &table).with_context(|| format!("writing {}", out.display()))?;
        eprintln!("bench: written to {}", out.display());
    }
    Ok(())
}
