//! `sluice-bench --smoke`: every benchmark with tiny sizes, against the
//! debug binaries, so the harness cannot rot between `make bench` runs.
//! It asserts that each row was measured, not how fast anything was.

use std::path::Path;
use std::process::Command;

#[test]
fn every_benchmark_runs_and_reports_its_figures() {
    let harness = Path::new(env!("CARGO_BIN_EXE_sluice-bench"));
    let bin_dir = harness.parent().unwrap();
    let out = std::env::temp_dir().join(format!("sluice-bench-{}.md", std::process::id()));
    let status = Command::new(harness)
        .args(["--smoke", "--bin-dir"])
        .arg(bin_dir)
        .arg("--out")
        .arg(&out)
        .status()
        .expect("the harness starts (run under make test)");
    assert!(status.success(), "sluice-bench --smoke failed: {status}");
    let table = std::fs::read_to_string(&out).unwrap();
    let _ = std::fs::remove_file(&out);

    let rows: Vec<Vec<&str>> = table
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| Benchmark"))
        .map(|l| l.trim_matches('|').split(" | ").map(str::trim).collect())
        .collect();
    let expected = [
        "Cold start: hello-lambda",
        "Cold start: presign",
        "Cold start: inspect",
        "Cold start: persist",
        "Cold start: migrate",
        "Signing: plan + sign",
        "our parts route",
        "our Companion-compatible route",
        "Inspection: image (PNG), 64 KiB",
        "Inspection: image (PNG), 2 MiB",
        "Inspection: video (MP4, moov last), 2 MiB",
        "Inspection: office (DOCX), 2 MiB",
        "Inspection: PDF, 64 KiB",
        "PDF scan:",
        "Persist: verdicts/s",
        "Upload: 16 MiB",
        "against PUTs that also carry each part's SHA-256",
        "Upload: complete → UPLOADED",
    ];
    for name in expected {
        let row =
            rows.iter().find(|r| r[0].starts_with(name) || r[0].contains(name)).unwrap_or_else(|| panic!("no row {name:?} in\n{table}"));
        assert_eq!(row.len(), 6, "{row:?}");
        assert!(row[1].chars().any(|c| c.is_ascii_digit()), "{name}: no figure of ours: {row:?}");
        assert!(!row[1].contains("NaN") && !row[1].contains("inf"), "{name}: {row:?}");
        assert!(!row[1].contains("error"), "{name}: {row:?}");
    }
    // Rows compared with a reference carry a finite ratio.
    for row in rows.iter().filter(|r| r[2] != "—") {
        let ratio: f64 = row[3].trim_end_matches('×').parse().unwrap_or_else(|_| panic!("{row:?}"));
        assert!(ratio.is_finite() && ratio > 0.0, "{row:?}");
    }
    // Inspection reads bounded ranges of the object, whatever its size; the
    // local S3 counted the bytes, so this holds only if inspect asks for
    // ranges: the 2 MiB objects cost a head and a tail, not 2 MiB.
    for family in ["image (PNG)", "video (MP4, moov last)", "office (DOCX)"] {
        let row = rows.iter().find(|r| r[0].starts_with(&format!("Inspection: {family}, 2 MiB"))).unwrap();
        let (reads, kib) = row[1]
            .split_once(" reads, ")
            .map(|(n, rest)| (n.parse::<u32>().unwrap(), rest.split(" KiB").next().unwrap().parse::<f64>().unwrap()))
            .unwrap();
        assert!((1..=3).contains(&reads) && kib > 0.0 && kib <= 1024.0, "{row:?}");
        assert!(kib < 2048.0 / 2.0, "{family}: ranges, not the whole object: {row:?}");
    }
}
