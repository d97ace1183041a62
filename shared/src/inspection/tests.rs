//! The validators over real files from real writers and crafted hostile
//! ones (shared/tests/fixtures/inspection, made by its make_fixtures.sh),
//! read both whole and the way inspect reads them: the head, then the
//! ranges asked for, within the bounds.

use proptest::prelude::*;

use super::*;
use samples::{PNG_MIN, fixture_rows, fixtures};

/// A fixture folder's rows as (bytes, EXPECTED.tsv cells).
fn expected(folder: &str) -> Vec<(Vec<u8>, Vec<String>)> {
    fixture_rows(folder).into_iter().map(|(cells, bytes)| (bytes, cells)).collect()
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
                window.add(offset, bytes[offset as usize..(offset + len) as usize].to_vec());
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
        let found = examine_bytes(&bytes, &Rules::default()).unwrap_or_else(|r| panic!("{name} refused: {}", r.reason()));
        assert_eq!(found.mime, cells[1], "{name}");
        let number = |i: usize| cells.get(i).filter(|c| !c.is_empty()).map(|c| c.parse::<u64>().unwrap());
        if let (Some(w), Some(h)) = (number(3), number(4)) {
            assert_eq!((found.width, found.height), (Some(w as u32), Some(h as u32)), "{name}");
        }
        if let Some(ms) = number(5) {
            let got = found.duration_ms.unwrap_or_else(|| panic!("{name}: no duration"));
            // Containers round differently from ffprobe (frames, pre-skip, encoder delay).
            assert!(got.abs_diff(ms) <= 60, "{name}: {got} ms, expected {ms}");
        }
        let (ranged_result, _, _) = ranged(&bytes, &Rules::default());
        assert_eq!(ranged_result.map(|f| f.mime), Ok(found.mime), "{name} read in ranges");
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
        assert!(want.split('|').any(|w| reason.starts_with(w)), "{name}: {reason}, expected {want}");
    }
}

#[test]
fn macros_are_kept_only_when_allowed() {
    let allow = Rules { allow_macros: true, ..Rules::default() };
    for name in ["docm_macros.docx", "ole_vba.doc"] {
        let bytes = std::fs::read(fixtures("crafted").join(name)).unwrap();
        assert_eq!(examine_bytes(&bytes, &Rules::default()).unwrap_err().code, RefusalCode::ActiveContent, "{name}");
        assert!(examine_bytes(&bytes, &allow).is_ok(), "{name} with ALLOW_MACROS");
    }
    // Executables stay refused whatever the setting.
    let exe = std::fs::read(fixtures("crafted").join("docx_with_exe.docx")).unwrap();
    assert_eq!(examine_bytes(&exe, &allow).unwrap_err().code, RefusalCode::ActiveContent);
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
        ("docx with 20 MiB of media", zip_with_padding(&docx, 20 << 20)),
    ];
    for (what, bytes) in cases {
        let (checked, reads, read) = ranged(&bytes, &Rules::default());
        let found = checked.unwrap_or_else(|r| panic!("{what}: {}", r.reason()));
        assert!(reads <= MAX_READS && read <= MAX_READ_BYTES, "{what}: {reads} reads, {read} bytes");
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
    let code = |zip: &[u8]| examine_bytes(zip, &Rules::default()).map(|f| f.mime).map_err(|r| r.code);
    assert_eq!(code(&zip), Err(RefusalCode::ForbiddenContent));
    let types = samples::DOCX_CONTENT_TYPES.as_bytes();
    let document: (&str, &[u8]) = ("word/document.xml", b"<w/>");
    let traversal = stored_zip(&[("[Content_Types].xml", types), document, ("../../evil", b"x")]);
    assert_eq!(code(&traversal), Err(RefusalCode::InvalidContent));
    let ok = stored_zip(&[("[Content_Types].xml", types), document]);
    assert_eq!(code(&ok), Ok(office_docx().to_string()));
    // The main part is the one the content types name (Word Online writes
    // word/document2.xml), and it must be there.
    let online = samples::DOCX_CONTENT_TYPES.replace("/word/document.xml", "/word/document2.xml");
    let renamed = stored_zip(&[("[Content_Types].xml", online.as_bytes()), ("word/document2.xml", b"<w/>")]);
    assert_eq!(code(&renamed), Ok(office_docx().to_string()));
    let missing = stored_zip(&[("[Content_Types].xml", online.as_bytes()), document]);
    assert_eq!(code(&missing), Err(RefusalCode::InvalidContent));
    // Macros under another name are found by their content type; so are
    // embedded OLE objects; a trailing dot does not hide an executable.
    let vba = samples::DOCX_CONTENT_TYPES
        .replace("</Types>", r#"<Override PartName="/word/x.bin" ContentType="application/vnd.ms-office.vbaProject"/></Types>"#);
    let hidden = stored_zip(&[("[Content_Types].xml", vba.as_bytes()), document, ("word/x.bin", b"VBA")]);
    assert_eq!(code(&hidden), Err(RefusalCode::ActiveContent));
    let ole = samples::DOCX_CONTENT_TYPES
        .replace("</Types>", r#"<Default Extension="bin" ContentType="application/vnd.openxmlformats-officedocument.oleObject"/></Types>"#);
    let embedded = stored_zip(&[("[Content_Types].xml", ole.as_bytes()), document, ("word/embeddings/oleObject1.bin", b"x")]);
    assert_eq!(code(&embedded), Err(RefusalCode::ActiveContent));
    let dotted = stored_zip(&[("[Content_Types].xml", types), document, ("word/setup.exe.", b"MZ")]);
    assert_eq!(code(&dotted), Err(RefusalCode::ActiveContent));
}

fn office_docx() -> &'static str {
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
}

#[test]
fn pdfs_over_the_scan_limit_are_refused_naming_it() {
    let pdf = samples::pdf();
    let rules = Rules { pdf_scan_max_bytes: 100, ..Rules::default() };
    let refusal = examine_bytes(&pdf, &rules).unwrap_err();
    assert_eq!(refusal.code, RefusalCode::UnverifiableContent);
    assert!(refusal.detail.contains("PDF_SCAN_MAX_BYTES") && refusal.detail.contains("100"), "{}", refusal.detail);
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
        assert_eq!(scanner.finish().unwrap_err().code, RefusalCode::ActiveContent, "chunks of {chunk}");
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
    assert_eq!(&zip[eocd..eocd + 4], b"PK\x05\x06", "a package without a comment");
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
        let mut all: Vec<Vec<u8>> = expected("real").into_iter().chain(expected("crafted")).map(|(b, _)| b).collect();
        all.push(samples::png(3000));
        all.push(samples::mp4(3000));
        all.push(samples::pdf());
        all
    })
}

/// Cases per property: `PROPTEST_CASES` sets more for a soak run (README).
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256)
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
        // A PDF's verdict does not depend on how its bytes are chunked.
        if bytes.starts_with(b"%PDF") {
            let code = |c: &Checked| c.as_ref().map(|f| f.mime.clone()).map_err(|r| r.code);
            prop_assert_eq!(code(&whole), code(&in_ranges));
        }
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
    let mut syntax = Vec::new();
    samples::write_pdf_syntax(&mut syntax, 1 << 20).unwrap();
    assert_eq!(examine_bytes(&syntax, &Rules::default()).map(|f| f.mime), Ok("application/pdf".to_string()));
    let mut pdf = Vec::new();
    samples::write_pdf(&mut pdf, 5 << 20).unwrap();
    assert_eq!(examine_bytes(&pdf, &Rules::default()).map(|f| f.mime), Ok("application/pdf".to_string()));
    for size in [PNG_MIN as usize, 100, 1 << 20, (1 << 20) + 12, (1 << 20) + 13, 3 << 20] {
        let png = samples::png(size);
        assert_eq!(png.len(), size);
        assert!(examine_bytes(&png, &Rules::default()).is_ok(), "png of {size}");
    }
    // An object stream holding a script is found in the same shape of file.
    let mut hostile = pdf.clone();
    let object = stream_object("/N 1 /First 0 /Filter /FlateDecode", &zlib(b"<< /S /JavaScript /JS (x) >>"));
    let after_catalog = memchr::memmem::find(&hostile, b"endobj\n").unwrap() + 7;
    hostile.splice(after_catalog..after_catalog, object);
    assert_eq!(examine_bytes(&hostile, &Rules::default()).unwrap_err().code, RefusalCode::ActiveContent);
}

/// `samples::pdf()` with `object` added before its xref.
fn pdf_with(object: &[u8]) -> Vec<u8> {
    let mut pdf = samples::pdf();
    let at = memchr::memmem::find(&pdf, b"xref\n").unwrap();
    pdf.splice(at..at, object.iter().copied());
    pdf
}

fn pdf_code(pdf: &[u8]) -> Result<(), RefusalCode> {
    let mut scanner = pdf::PdfScanner::new(pdf.len() as u64);
    pdf.chunks(5).for_each(|c| scanner.feed(c));
    scanner.finish().map(|_| ()).map_err(|r| r.code)
}

/// Object 9, a stream of `data` with `dict`'s entries and, unless `dict`
/// gives one, its direct `/Length`.
fn stream_object(dict: &str, data: &[u8]) -> Vec<u8> {
    let length = if dict.contains("/Length") { String::new() } else { format!(" /Length {}", data.len()) };
    let mut object = format!("9 0 obj << {dict}{length} >>\nstream\n").into_bytes();
    object.extend_from_slice(data);
    object.extend_from_slice(b"\nendstream\nendobj\n");
    object
}

fn zlib(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut encoder, bytes).unwrap();
    encoder.finish().unwrap()
}

#[test]
fn pdf_streams_cannot_hide_syntax_and_syntax_cannot_pose_as_streams() {
    // A stray `stream` outside any dictionary starts nothing.
    let stray = pdf_with(b"stream\n9 0 obj << /S /JavaScript /JS (x) >> endobj\nendstream\n");
    assert_eq!(pdf_code(&stray), Err(RefusalCode::ActiveContent));
    // A stream whose bytes hold `endstream (` is skipped by its /Length.
    let data = b"endstream (hide";
    let mut object = stream_object("", data);
    object.extend_from_slice(
        b"10 0 obj << /S /Launch >> endobj
",
    );
    assert_eq!(pdf_code(&pdf_with(&object)), Err(RefusalCode::ActiveContent));
    // ...and the same harmless bytes with nothing after them are fine.
    let harmless = stream_object("", data);
    assert_eq!(pdf_code(&pdf_with(&harmless)), Ok(()));
}

#[test]
fn pdf_object_streams_are_read_however_they_are_stored() {
    let script = b"<< /S /JavaScript /JS (app.alert(1)) >>";
    // Uncompressed, without /Type, with an indirect length.
    let plain = stream_object("/N 1 /First 0 /Length 10 0 R", script);
    assert_eq!(pdf_code(&pdf_with(&plain)), Err(RefusalCode::ActiveContent));
    // Compressed twice, or with a predictor: not decoded, so not passed.
    let twice = zlib(&zlib(script));
    let object = stream_object("/N 1 /First 0 /Filter [/FlateDecode /FlateDecode]", &twice);
    assert_eq!(pdf_code(&pdf_with(&object)), Err(RefusalCode::UnverifiableContent));
    let dict = "/Type /ObjStm /N 1 /First 0 /Filter /FlateDecode /DecodeParms << /Predictor 12 >>";
    let predicted = stream_object(dict, &zlib(script));
    assert_eq!(pdf_code(&pdf_with(&predicted)), Err(RefusalCode::UnverifiableContent));
    // Attachments by annotation are embedded files too.
    assert_eq!(
        pdf_code(&pdf_with(b"9 0 obj << /Subtype /FileAttachment /FS << /EF << /F 10 0 R >> >> >> endobj\n")),
        Err(RefusalCode::ActiveContent)
    );
    // A name of a million escapes is cut, not kept.
    let mut long = b"9 0 obj << /".to_vec();
    long.extend(std::iter::repeat_n(&b"#41"[..], 1_000_000).flatten());
    long.extend_from_slice(b" 1 >> endobj\n");
    assert_eq!(pdf_code(&pdf_with(&long)), Ok(()));
}

#[test]
fn a_pdf_that_inflates_without_end_is_unverifiable() {
    // 200 MiB of zeros compress to ~200 KiB: past 64 MiB it stops.
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    let zeros = vec![b' '; 1 << 20];
    for _ in 0..200 {
        std::io::Write::write_all(&mut encoder, &zeros).unwrap();
    }
    let bomb = encoder.finish().unwrap();
    let object = stream_object("/N 1 /First 0 /Filter /FlateDecode", &bomb);
    let pdf = pdf_with(&object);
    let mut scanner = pdf::PdfScanner::new(pdf.len() as u64);
    pdf.chunks(64 * 1024).for_each(|c| scanner.feed(c));
    assert_eq!(scanner.finish().unwrap_err().code, RefusalCode::UnverifiableContent);
}

#[test]
fn hostile_sizes_neither_panic_nor_loop() {
    let rules = Rules::default();
    // An MP4 box whose 64-bit size wraps the offset back to 0.
    let mut wrap = b"\0\0\0\x10ftypisom\0\0\0\0\0\0\0\x01free\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xF0".to_vec();
    wrap.resize(300, 0);
    assert_eq!(examine_bytes(&wrap, &rules).unwrap_err().code, RefusalCode::InvalidContent);
    // An EBML header child of unknown size.
    let mut ebml = b"\x1A\x45\xDF\xA3\x83\x42\x82\xFF".to_vec();
    while ebml.len() < 300 {
        ebml.extend_from_slice(b"\x42\x82\x84webm");
    }
    assert!(examine_bytes(&ebml, &rules).is_err());
    // A BMP whose width × height × depth overflows.
    let mut bmp = b"BM\0\0\0\0\0\0\0\0\x36\0\0\0\x28\0\0\0\xFF\xFF\xFF\x7F\xFF\xFF\xFF\x7F\x01\0\x40\0\0\0\0\0".to_vec();
    bmp.resize(200, 0);
    assert_eq!(examine_bytes(&bmp, &rules).unwrap_err().code, RefusalCode::InvalidContent);
}

#[test]
fn sound_only_containers_are_audio_and_streamed_wavs_are_read_to_the_end() {
    let m4a = std::fs::read(fixtures("real").join("tone.m4a")).unwrap();
    assert_eq!(examine_bytes(&m4a, &Rules::default()).unwrap().mime, "audio/m4a");
    // An `isom` MP4 with only a sound track, as Android records: audio/mp4.
    let mut sound = samples::mp4(4000);
    let tkhd = memchr::memmem::find(&sound, b"tkhd").unwrap();
    sound[tkhd + 4 + 76..tkhd + 4 + 84].fill(0);
    assert_eq!(examine_bytes(&sound, &Rules::default()).unwrap().mime, "audio/mp4");
    assert_eq!(examine_bytes(&samples::mp4(4000), &Rules::default()).unwrap().mime, "video/mp4");
    // ffmpeg writing to a pipe leaves the RIFF size at its maximum.
    let mut wav = std::fs::read(fixtures("real").join("tone.wav")).unwrap();
    wav[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(examine_bytes(&wav, &Rules::default()).is_ok());
}

#[test]
fn a_jpeg_must_reach_its_scan_and_end() {
    let photo = std::fs::read(fixtures("real").join("photo.jpg")).unwrap();
    let sof = (2..photo.len()).find(|&i| photo[i] == 0xFF && photo[i + 1] == 0xC0).unwrap();
    let len = u16::from_be_bytes([photo[sof + 2], photo[sof + 3]]) as usize;
    let mut html = photo[..sof + 2 + len].to_vec();
    html.extend_from_slice(b"<html><script>alert(1)</script></html>");
    assert_eq!(examine_bytes(&html, &Rules::default()).unwrap_err().code, RefusalCode::InvalidContent);
    let mut motion = photo.clone();
    motion.extend_from_slice(&samples::mp4(2000));
    assert!(examine_bytes(&motion, &Rules::default()).is_ok(), "a motion photo keeps its video after EOI");
}

#[test]
fn signatures_infer_misses_still_reach_their_validator() {
    // MPEG-1 layer III frames with CRC (FF FA), 128 kbit/s at 44.1 kHz: 417 bytes each.
    let mut mp3 = Vec::new();
    for _ in 0..4 {
        let mut frame = vec![0u8; 417];
        frame[..4].copy_from_slice(&[0xFF, 0xFA, 0x90, 0x00]);
        mp3.extend_from_slice(&frame);
    }
    assert!(infer::get(&mp3).is_none_or(|g| g.mime_type() != "audio/mpeg"), "infer misses it");
    let found = examine_bytes(&mp3, &Rules::default()).unwrap();
    assert_eq!(found.mime, "audio/mpeg");
    assert!(found.duration_ms.is_some());
    // A TIFF whose byte 8 is 'C' (infer's CR2 test).
    let mut tiff = std::fs::read(fixtures("real").join("image.tiff")).unwrap();
    let ifd = le32(&tiff, 4) as usize;
    assert!(ifd > 9, "the fixture's IFD is not at byte 8");
    tiff[8] = b'C';
    assert_eq!(examine_bytes(&tiff, &Rules::default()).map(|f| f.mime), Ok("image/tiff".to_string()));
}
