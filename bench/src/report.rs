//! The table `make bench` prints and writes to bench/results.md.

use std::fmt::Write as _;

use crate::Scale;

/// One line of the table: our figure, the reference's, their ratio, and
/// the target it is held to.
pub struct Row {
    pub bench: String,
    pub ours: String,
    pub reference: String,
    pub ratio: Option<f64>,
    pub target: String,
    /// None where the row has no target of its own.
    pub met: Option<bool>,
}

pub struct Report {
    smoke: bool,
    concurrency: usize,
    rows: Vec<Row>,
}

impl Report {
    pub fn new(scale: &Scale) -> Self {
        Self { smoke: scale.smoke, concurrency: scale.concurrency, rows: Vec::new() }
    }

    pub fn add(&mut self, row: Row) {
        eprintln!("bench: {} | {} | {} | {}", row.bench, row.ours, row.reference, row.target);
        self.rows.push(row);
    }

    pub fn markdown(&self) -> String {
        let mut out = String::from("# Sluice benchmark results\n\n");
        let _ = writeln!(out, "- Run: {} UTC, commit {}", now_utc(), git_commit());
        let _ = writeln!(out, "- Machine: {} CPU(s), {}", cpus(), cpu_model());
        let _ = writeln!(out, "- Concurrency of HTTP, persist and upload clients: {}", self.concurrency);
        if self.smoke {
            let _ = writeln!(out, "- **Smoke run** (tiny sizes, debug binaries): proves the harness, the figures mean nothing.");
        }
        out.push_str("\n| Benchmark | Sluice | Reference | Ratio | Target | Met |\n|---|---|---|---|---|---|\n");
        for row in &self.rows {
            let ratio = row
                .ratio
                // Small ratios keep their significant digits, not "0.00".
                .map(|r| {
                    let places = if r > 0.0 && r < 0.1 { (1.0 - r.log10().floor()) as usize } else { 2 };
                    format!("{r:.places$}×")
                })
                .unwrap_or_else(|| "—".into());
            let met = match row.met {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "—",
            };
            let _ = writeln!(out, "| {} | {} | {} | {} | {} | {} |", row.bench, row.ours, row.reference, ratio, row.target, met);
        }
        out
    }
}

pub fn ms(seconds: f64) -> String {
    if seconds < 0.01 { format!("{:.2} ms", seconds * 1e3) } else { format!("{:.1} ms", seconds * 1e3) }
}

pub fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

pub fn median(values: &mut [f64]) -> f64 {
    percentile(values, 50.0)
}

/// Nearest-rank percentile.
pub fn percentile(values: &mut [f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * values.len() as f64).ceil().max(1.0) as usize;
    values[rank.min(values.len()) - 1]
}

fn now_utc() -> String {
    let output = std::process::Command::new("date").args(["-u", "+%Y-%m-%d %H:%M"]).output();
    output.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string()).unwrap_or_default()
}

fn git_commit() -> String {
    let output = std::process::Command::new("git").args(["rev-parse", "--short", "HEAD"]).output();
    output.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string()).unwrap_or_default()
}

fn cpus() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

fn cpu_model() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = info.lines().find(|l| l.starts_with("model name")).and_then(|l| l.split(':').nth(1));
    model.map(str::trim).unwrap_or("unknown CPU").to_string()
}

/// Peak resident memory of a running process (VmHWM), in bytes.
pub fn peak_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut values: Vec<f64> = (1..=20).map(f64::from).collect();
        values.reverse();
        assert_eq!(percentile(&mut values, 50.0), 10.0);
        assert_eq!(percentile(&mut values, 95.0), 19.0);
        assert_eq!(percentile(&mut values, 100.0), 20.0);
        assert_eq!(median(&mut [3.0]), 3.0);
        assert!(median(&mut []).is_nan());
    }
}
