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
        "Inspection: 64 KiB",
        "Inspection: 2 MiB",
        "Persist: verdicts/s",
        "Upload: 16 MiB",
        "against PUTs that also carry each part's SHA-256",
        "Upload: complete → UPLOADED",
    ];
    for name in expected {
        let row = rows
            .iter()
            .find(|r| r[0].starts_with(name) || r[0].contains(name))
            .unwrap_or_else(|| panic!("no row {name:?} in\n{table}"));
        assert_eq!(row.len(), 6, "{row:?}");
        assert!(
            row[1].chars().any(|c| c.is_ascii_digit()),
            "{name}: no figure of ours: {row:?}"
        );
        assert!(
            !row[1].contains("NaN") && !row[1].contains("inf"),
            "{name}: {row:?}"
        );
        assert!(!row[1].contains("error"), "{name}: {row:?}");
    }
    // Rows compared with a reference carry a finite ratio.
    for row in rows.iter().filter(|r| r[2] != "—") {
        let ratio: f64 = row[3]
            .trim_end_matches('×')
            .parse()
            .unwrap_or_else(|_| panic!("{row:?}"));
        assert!(ratio.is_finite() && ratio > 0.0, "{row:?}");
    }
    // Inspection reads a head of the object, whatever its size; the local
    // S3 counted the bytes, so this holds only if inspect asks for a range.
    let small = rows
        .iter()
        .find(|r| r[0].starts_with("Inspection: 64 KiB"))
        .unwrap();
    let large = rows
        .iter()
        .find(|r| r[0].starts_with("Inspection: 2 MiB"))
        .unwrap();
    let read =
        |row: &Vec<&str>| -> f64 { row[1].split(" KiB read").next().unwrap().parse().unwrap() };
    assert!(read(large) > 0.0 && read(large) <= 64.0, "{large:?}");
    assert_eq!(read(small), read(large), "the same head is read of both");
}
