//! `pdf-scan FILE`: streams FILE through the PDF scanner inspect uses, in
//! 1 MiB reads, on one thread; then reads it again with nothing done to the
//! bytes (the reference). Prints `scan_seconds read_seconds peak_rss_kib
//! verdict`. A process of its own, so its peak RSS is the scanner's alone.

use std::io::Read;
use std::time::Instant;

use sluice_shared::inspection::pdf::PdfScanner;

fn main() -> std::io::Result<()> {
    let path = std::env::args().nth(1).expect("usage: pdf-scan FILE");
    let size = std::fs::metadata(&path)?.len();
    let mut buf = vec![0u8; 1 << 20];

    let started = Instant::now();
    let mut file = std::fs::File::open(&path)?;
    let mut scanner = PdfScanner::new(size);
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        scanner.feed(&buf[..n]);
    }
    let verdict = match scanner.finish() {
        Ok(found) => found.mime,
        Err(refusal) => refusal.reason().replace(' ', "_"),
    };
    let scan = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let mut file = std::fs::File::open(&path)?;
    let mut sum = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        // Touch the bytes so the read is not all the reference does.
        sum = sum.wrapping_add(buf[..n].iter().step_by(4096).map(|&b| u64::from(b)).sum::<u64>());
    }
    let read = started.elapsed().as_secs_f64();
    std::hint::black_box(sum);

    let status = std::fs::read_to_string("/proc/self/status")?;
    let peak_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0);
    println!("{scan} {read} {peak_kib} {verdict}");
    Ok(())
}
