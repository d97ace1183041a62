//! The validators over real files from real writers and crafted hostile
//! ones (shared/tests/fixtures/inspection, made by its make_fixtures.sh),
//! read both whole and the way inspect reads them: the head, then the
//! ranges asked for, within the bounds.

use std::path::PathBuf;

use proptest::prelude::*;

use super::*;
use samples::PNG_MIN;

fn fixtures(folder: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/inspection")
        .join(folder)
}

/// Rows of a fixture folder's EXPECTED.tsv, without its header.
fn expected(folder: &str) -> Vec<(Vec<u8>, Vec<String>)> {
    let table = std::fs::read_to_string(fixtures(folder).join("EXPECTED.tsv")).unwrap();
    table
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let cells: Vec<String> = line.split('\t').map(str::to_string).collect();
            (
                std::fs::read(fixtures(folder).join(&cells[0])).unwrap(),
                cells,
            )
        })
        .collect()
}

/// Examines `bytes` as inspect does: the head first, then each range asked
/// for; answers the result, the reads made and the bytes read.
fn ranged(bytes: &[u8], rules: &Rules) -> (Checked, usize, u64) {
    let size = bytes.len() as u64;
    let head = bytes[..HEAD_BYTES.min(size) as usize].to_vec();
    let mut window = Window::new(size, head);
    loop {
        match examine(&window, rules) {
            Step::Done(checked) => {
                let (reads, read) = window.reads();
                return (checked, reads, read);
            }
            Step::Read { offset, len } => {
                assert!(offset + len <= size, "a read inside the object");
                window.add(
                    offset,
                    bytes[offset as usize..(offset + len) as usize].to_vec(),
                );
            }
            Step::ScanPdf => {
                let mut scanner = pdf::PdfScanner::new(size);
                // Odd chunk sizes: keywords and escapes fall across chunk ends.
                for chunk in bytes.chunks(7) {
                    scanner.feed(chunk);
                }
                return (scanner.finish(), 0, size);
            }
        }
    }
}

#[test]
fn real_files_are_accepted_with_what_their_structure_states() {
    let rows = expected("real");
    assert!(rows.len() >= 30, "the real corpus is there");
    for (bytes, cells) in rows {
        let name = &cells[0];
        let found = examine_bytes(&bytes, &Rules::default())
            .unwrap_or_else(|r| panic!("{name} refused: {}", r.reason()));
        assert_eq!(found.mime, cells[1], "{name}");
        let number = |i: usize| {
            cells
                .get(i)
                .filter(|c| !c.is_empty())
                .map(|c| c.parse::<u64>().unwrap())
        };
        if let (Some(w), Some(h)) = (number(3), number(4)) {
            assert_eq!(
                (found.width, found.height),
                (Some(w as u32), Some(h as u32)),
                "{name}"
            );
        }
        if let Some(ms) = number(5) {
            let got = found
                .duration_ms
                .unwrap_or_else(|| panic!("{name}: no duration"));
            // Containers round differently from ffprobe (frames, pre-skip, encoder delay).
            assert!(got.abs_diff(ms) <= 60, "{name}: {got} ms, expected {ms}");
        }
        let (ranged_result, _, _) = ranged(&bytes, &Rules::default());
        assert_eq!(
            ranged_result.map(|f| f.mime),
            Ok(found.mime),
            "{name} read in ranges"
        );
    }
}

#[test]
fn crafted_files_are_refused_for_the_right_reason() {
    for (bytes, cells) in expected("crafted") {
        let (name, want) = (&cells[0], &cells[2]);
        let checked = examine_bytes(&bytes, &Rules::default());
        if want == "accept" {
            assert!(checked.is_ok(), "{name}: {checked:?}");
            continue;
        }
        let refusal = checked.expect_err(name);
        let reason = refusal.reason();
        assert!(
            want.split('|').any(|w| reason.starts_with(w)),
            "{name}: {reason}, expected {want}"
        );
    }
}

#[test]
fn macros_are_kept_only_when_allowed() {
    let allow = Rules {
        allow_macros: true,
        ..Rules::default()
    };
    for name in ["docm_macros.docx", "ole_vba.doc"] {
        let bytes = std::fs::read(fixtures("crafted").join(name)).unwrap();
        assert_eq!(
            examine_bytes(&bytes, &Rules::default()).unwrap_err().code,
            RefusalCode::ActiveContent,
            "{name}"
        );
        assert!(
            examine_bytes(&bytes, &allow).is_ok(),
            "{name} with ALLOW_MACROS"
        );
    }
    // Executables stay refused whatever the setting.
    let exe = std::fs::read(fixtures("crafted").join("docx_with_exe.docx")).unwrap();
    assert_eq!(
        examine_bytes(&exe, &allow).unwrap_err().code,
        RefusalCode::ActiveContent
    );
}

#[test]
fn large_files_are_judged_within_three_reads_and_one_mib() {
    let mut moov_last = Vec::new();
    samples::write_mp4(&mut moov_last, 20 << 20, 4321, true).unwrap();
    let docx = std::fs::read(fixtures("real").join("report.docx")).unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("png", samples::png(20 << 20)),
        ("mp4, moov first", samples::mp4(20 << 20)),
        ("mp4, moov last", moov_last),
        (
            "docx with 20 MiB of media",
            zip_with_padding(&docx, 20 << 20),
        ),
    ];
    for (what, bytes) in cases {
        let (checked, reads, read) = ranged(&bytes, &Rules::default());
        let found = checked.unwrap_or_else(|r| panic!("{what}: {}", r.reason()));
        assert!(
            reads <= MAX_READS && read <= MAX_READ_BYTES,
            "{what}: {reads} reads, {read} bytes"
        );
        if what.starts_with("mp4") {
            assert_eq!((found.width, found.height), (Some(64), Some(48)), "{what}");
        }
        if what == "mp4, moov last" {
            assert_eq!(found.duration_ms, Some(4321));
        }
    }
}

#[test]
fn a_large_png_with_bytes_after_iend_is_refused_from_its_tail() {
    let mut bytes = samples::png(5 << 20);
    bytes.extend_from_slice(b"<script>alert(1)</script>");
    let (checked, reads, _) = ranged(&bytes, &Rules::default());
    assert_eq!(checked.unwrap_err().code, RefusalCode::InvalidContent);
    assert_eq!(reads, 2, "the head and the tail");
}

#[test]
fn a_zip_that_is_no_office_package_is_an_archive() {
    let zip = stored_zip(&[("notes.txt", b"hello"), ("more.txt", b"world")]);
    assert_eq!(
        examine_bytes(&zip, &Rules::default()).unwrap_err().code,
        RefusalCode::ForbiddenContent
    );
    let traversal = stored_zip(&[
        ("[Content_Types].xml", b"<Types/>"),
        ("word/document.xml", b"<w/>"),
        ("../../evil", b"x"),
    ]);
    assert_eq!(
        examine_bytes(&traversal, &Rules::default())
            .unwrap_err()
            .code,
        RefusalCode::InvalidContent
    );
    let ok = stored_zip(&[
        ("[Content_Types].xml", b"<Types/>"),
        ("word/document.xml", b"<w/>"),
    ]);
    assert_eq!(
        examine_bytes(&ok, &Rules::default()).unwrap().mime,
        office_docx()
    );
}

fn office_docx() -> &'static str {
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
}

#[test]
fn pdfs_over_the_scan_limit_are_refused_naming_it() {
    let pdf = samples::pdf();
    let rules = Rules {
        pdf_scan_max_bytes: 100,
        ..Rules::default()
    };
    let refusal = examine_bytes(&pdf, &rules).unwrap_err();
    assert_eq!(refusal.code, RefusalCode::UnverifiableContent);
    assert!(
        refusal.detail.contains("PDF_SCAN_MAX_BYTES") && refusal.detail.contains("100"),
        "{}",
        refusal.detail
    );
}

#[test]
fn pdf_names_are_found_across_chunk_ends_and_not_inside_strings() {
    let mut pdf = samples::pdf();
    let active = b"5 0 obj\n<< /S /J#61vaScript /JS (app.alert(1)) >>\nendobj\n";
    let at = pdf.len() - 30;
    pdf.splice(at..at, active.iter().copied());
    for chunk in [1, 2, 3, 5, 64 * 1024] {
        let mut scanner = pdf::PdfScanner::new(pdf.len() as u64);
        pdf.chunks(chunk).for_each(|c| scanner.feed(c));
        assert_eq!(
            scanner.finish().unwrap_err().code,
            RefusalCode::ActiveContent,
            "chunks of {chunk}"
        );
    }
    // The same words as text are harmless.
    let mut text = samples::pdf();
    let words = b"5 0 obj\n(/JavaScript and /Launch are words here) <4A53>\nendobj\n";
    let at = text.len() - 30;
    text.splice(at..at, words.iter().copied());
    assert!(examine_bytes(&text, &Rules::default()).is_ok());
}

/// A ZIP with stored entries, for crafted packages.
fn stored_zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut directory = Vec::new();
    for (name, data) in entries {
        let offset = out.len() as u32;
        let crc = crc32fast::hash(data);
        let mut local = b"PK\x03\x04\x14\0\0\0\0\0\0\0\0\0".to_vec();
        local.extend_from_slice(&crc.to_le_bytes());
        local.extend_from_slice(&(data.len() as u32).to_le_bytes());
        local.extend_from_slice(&(data.len() as u32).to_le_bytes());
        local.extend_from_slice(&(name.len() as u16).to_le_bytes());
        local.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&local);
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(data);
        let mut central = b"PK\x01\x02\x14\0\x14\0\0\0\0\0\0\0\0\0".to_vec();
        central.extend_from_slice(&crc.to_le_bytes());
        central.extend_from_slice(&(data.len() as u32).to_le_bytes());
        central.extend_from_slice(&(data.len() as u32).to_le_bytes());
        central.extend_from_slice(&(name.len() as u16).to_le_bytes());
        central.extend_from_slice(&[0; 12]);
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name.as_bytes());
        directory.extend_from_slice(&central);
    }
    let cd_offset = out.len() as u32;
    out.extend_from_slice(&directory);
    out.extend_from_slice(b"PK\x05\x06\0\0\0\0");
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(directory.len() as u32).to_le_bytes());
    out.extend_from_slice(&cd_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

/// A real package with a large stored entry inserted before its central
/// directory (offsets moved to match), as a document full of media is.
fn zip_with_padding(zip: &[u8], padding: usize) -> Vec<u8> {
    let eocd = zip.len() - 22;
    assert_eq!(
        &zip[eocd..eocd + 4],
        b"PK\x05\x06",
        "a package without a comment"
    );
    let cd_offset = le32(zip, eocd + 16) as usize;
    let mut out = zip[..cd_offset].to_vec();
    let filler = samples::filler(7, padding);
    let name = b"word/media/padding.bin";
    let mut local = b"PK\x03\x04\x14\0\0\0\0\0\0\0\0\0".to_vec();
    local.extend_from_slice(&crc32fast::hash(&filler).to_le_bytes());
    local.extend_from_slice(&(padding as u32).to_le_bytes());
    local.extend_from_slice(&(padding as u32).to_le_bytes());
    local.extend_from_slice(&(name.len() as u16).to_le_bytes());
    local.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&local);
    out.extend_from_slice(name);
    out.extend_from_slice(&filler);
    let shift = (out.len() - cd_offset) as u32;
    out.extend_from_slice(&zip[cd_offset..eocd]);
    let mut end = zip[eocd..].to_vec();
    end[16..20].copy_from_slice(&(cd_offset as u32 + shift).to_le_bytes());
    out.extend_from_slice(&end);
    out
}

/// Every real and crafted file, the seeds of the mutations below.
fn corpus() -> &'static [Vec<u8>] {
    static CORPUS: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    CORPUS.get_or_init(|| {
        let mut all: Vec<Vec<u8>> = expected("real")
            .into_iter()
            .chain(expected("crafted"))
            .map(|(b, _)| b)
            .collect();
        all.push(samples::png(3000));
        all.push(samples::mp4(3000));
        all.push(samples::pdf());
        all
    })
}

/// Cases per property: `PROPTEST_CASES` sets more for a soak run (README).
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    /// No bytes make a validator panic, whole or read in ranges.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let _ = examine_bytes(&bytes, &Rules::default());
        let _ = ranged(&bytes, &Rules::default());
    }

    /// Nor do real files with bytes flipped, cut short or spliced in: the
    /// mutations that reach the deep branches of each parser.
    #[test]
    fn mutated_files_never_panic(
        seed in 0usize..1000,
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..16),
        cut in any::<usize>(),
        truncate in any::<bool>(),
    ) {
        let corpus = corpus();
        let mut bytes = corpus[seed % corpus.len()].clone();
        for (at, value) in flips {
            if !bytes.is_empty() {
                let i = at % bytes.len();
                bytes[i] = value;
            }
        }
        if truncate && !bytes.is_empty() {
            bytes.truncate(cut % bytes.len());
        }
        let whole = examine_bytes(&bytes, &Rules::default());
        let (in_ranges, reads, read) = ranged(&bytes, &Rules::default());
        prop_assert!(reads <= MAX_READS && (read <= MAX_READ_BYTES || reads == 0));
        // Reading in ranges never accepts what reading it whole refuses.
        if whole.is_err() && bytes.len() as u64 <= HEAD_BYTES {
            prop_assert!(in_ranges.is_err());
        }
    }
}

#[test]
fn the_bench_samples_pass_inspection() {
    let mut docx = Vec::new();
    samples::write_docx(&mut docx, 3 << 20).unwrap();
    assert_eq!(docx.len(), 3 << 20);
    let (checked, reads, _) = ranged(&docx, &Rules::default());
    assert_eq!(checked.map(|f| f.mime), Ok(office_docx().to_string()));
    assert!(reads <= MAX_READS);
    let mut pdf = Vec::new();
    samples::write_pdf(&mut pdf, 5 << 20).unwrap();
    assert_eq!(
        examine_bytes(&pdf, &Rules::default()).map(|f| f.mime),
        Ok("application/pdf".to_string())
    );
    for size in [
        PNG_MIN as usize,
        100,
        1 << 20,
        (1 << 20) + 12,
        (1 << 20) + 13,
        3 << 20,
    ] {
        let png = samples::png(size);
        assert_eq!(png.len(), size);
        assert!(
            examine_bytes(&png, &Rules::default()).is_ok(),
            "png of {size}"
        );
    }
    // An object stream holding a script is found in the same shape of file.
    let mut hostile = pdf.clone();
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut encoder, b"<< /S /JavaScript /JS (x) >>").unwrap();
    let compressed = encoder.finish().unwrap();
    let mut object = format!(
        "99 0 obj\n<< /N 1 /First 0 /Filter /FlateDecode /Length {} >>\nstream\n",
        compressed.len()
    )
    .into_bytes();
    object.extend_from_slice(&compressed);
    object.extend_from_slice(b"\nendstream\nendobj\n");
    let after_catalog = memchr::memmem::find(&hostile, b"endobj\n").unwrap() + 7;
    hostile.splice(after_catalog..after_catalog, object);
    assert_eq!(
        examine_bytes(&hostile, &Rules::default()).unwrap_err().code,
        RefusalCode::ActiveContent
    );
}
