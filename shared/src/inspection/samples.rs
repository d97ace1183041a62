//! Structurally valid files of any size, made on the fly for tests and the
//! bench: their structure passes inspection, their payload is varied filler
//! (so parts and ETags differ). Real files from real writers live in
//! `shared/tests/fixtures/inspection`.

use std::io::{self, Write};
use std::path::PathBuf;

/// A folder of the real and crafted files (`real` or `crafted`).
pub fn fixtures(folder: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/inspection").join(folder)
}

/// The rows of a fixture folder's EXPECTED.tsv (its header left out), each
/// with the bytes of the file its first cell names.
pub fn fixture_rows(folder: &str) -> Vec<(Vec<String>, Vec<u8>)> {
    let table = std::fs::read_to_string(fixtures(folder).join("EXPECTED.tsv")).expect("the fixtures' EXPECTED.tsv");
    table
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let cells: Vec<String> = line.split('\t').map(str::to_string).collect();
            let bytes = std::fs::read(fixtures(folder).join(&cells[0])).expect("a fixture EXPECTED.tsv names");
            (cells, bytes)
        })
        .collect()
}

pub const PNG_WIDTH: u32 = 64;
pub const PNG_HEIGHT: u32 = 48;
/// The smallest PNG `png` can make: signature, IHDR, one empty IDAT, IEND.
pub const PNG_MIN: u64 = 8 + 25 + 12 + 12;

/// Varied filler bytes, the same for the same seed.
pub fn filler(seed: u32, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 4);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn png_chunk(out: &mut impl Write, kind: &[u8; 4], data: &[u8]) -> io::Result<()> {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(kind);
    hasher.update(data);
    out.write_all(&(data.len() as u32).to_be_bytes())?;
    out.write_all(kind)?;
    out.write_all(data)?;
    out.write_all(&hasher.finalize().to_be_bytes())
}

/// Writes a PNG of exactly `size` bytes (at least [`PNG_MIN`]): IDAT
/// chunks of up to 1 MiB of filler between IHDR and IEND. Streams: a GiB
/// is never held.
pub fn write_png(out: &mut impl Write, size: u64) -> io::Result<()> {
    write_png_seeded(out, size, size as u32)
}

/// As [`write_png`], its pixels drawn from `seed`: PNGs of one size that differ.
pub fn write_png_seeded(out: &mut impl Write, size: u64, seed: u32) -> io::Result<()> {
    const BLOCK: u64 = 1 << 20;
    let size = size.max(PNG_MIN);
    out.write_all(b"\x89PNG\r\n\x1a\n")?;
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend_from_slice(&PNG_WIDTH.to_be_bytes());
    ihdr.extend_from_slice(&PNG_HEIGHT.to_be_bytes());
    ihdr.extend_from_slice(&[8, 6, 0, 0, 0]);
    png_chunk(out, b"IHDR", &ihdr)?;
    // What the IDAT chunks fill, 12 bytes of each being its own framing.
    let idat = size - 8 - 25 - 12;
    let chunks = idat.div_ceil(12 + BLOCK);
    let data = idat - 12 * chunks;
    let block = filler(seed, BLOCK as usize);
    for i in 0..chunks {
        let len = data / chunks + u64::from(i < data % chunks);
        png_chunk(out, b"IDAT", &block[..len as usize])?;
    }
    png_chunk(out, b"IEND", &[])
}

/// A PNG of exactly `size` bytes (at least [`PNG_MIN`]).
pub fn png(size: usize) -> Vec<u8> {
    png_seeded(size, size as u32)
}

/// A PNG of exactly `size` bytes whose pixels come from `seed`.
pub fn png_seeded(size: usize, seed: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(size);
    write_png_seeded(&mut out, size as u64, seed).expect("writing to memory");
    out
}

/// Writes an MP4 of exactly `size` bytes (at least 200): `ftyp`, a `moov`
/// with a movie header (`duration_ms`) and one 64×48 video track header,
/// then an `mdat` of filler. With `moov_last` the movie box comes after
/// the media data, as most cameras write it.
pub fn write_mp4(out: &mut impl Write, size: u64, duration_ms: u32, moov_last: bool) -> io::Result<()> {
    let ftyp: &[u8] = b"\0\0\0\x18ftypmp42\0\0\0\0mp42isom";
    let moov = mp4_moov(duration_ms);
    let mdat_len = size.saturating_sub((ftyp.len() + moov.len()) as u64).max(8);
    out.write_all(ftyp)?;
    if !moov_last {
        out.write_all(&moov)?;
    }
    out.write_all(&(mdat_len as u32).to_be_bytes())?;
    out.write_all(b"mdat")?;
    let block = filler(size as u32, 1 << 20);
    let mut left = mdat_len - 8;
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        out.write_all(&block[..n])?;
        left -= n as u64;
    }
    if moov_last {
        out.write_all(&moov)?;
    }
    Ok(())
}

fn mp4_box(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut out = ((body.len() + 8) as u32).to_be_bytes().to_vec();
    out.extend_from_slice(kind);
    out.extend_from_slice(body);
    out
}

fn mp4_moov(duration_ms: u32) -> Vec<u8> {
    let mut mvhd = vec![0u8; 100];
    mvhd[12..16].copy_from_slice(&1000u32.to_be_bytes());
    mvhd[16..20].copy_from_slice(&duration_ms.to_be_bytes());
    let mut tkhd = vec![0u8; 84];
    tkhd[76..80].copy_from_slice(&(64u32 << 16).to_be_bytes());
    tkhd[80..84].copy_from_slice(&(48u32 << 16).to_be_bytes());
    let trak = mp4_box(b"trak", &mp4_box(b"tkhd", &tkhd));
    let mut body = mp4_box(b"mvhd", &mvhd);
    body.extend_from_slice(&trak);
    mp4_box(b"moov", &body)
}

/// An MP4 of exactly `size` bytes, its movie box first.
pub fn mp4(size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size);
    write_mp4(&mut out, size as u64, 1000, false).expect("writing to memory");
    out
}

/// A small valid one-page PDF with no active content.
pub fn pdf() -> Vec<u8> {
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Contents 4 0 R >>",
        "<< /Length 35 >>\nstream\nBT /F1 12 Tf 20 100 Td (Hi) Tj ET\nendstream",
    ];
    let mut out = b"%PDF-1.7\n%\xE2\xE3\xCF\xD3\n".to_vec();
    let mut offsets = Vec::new();
    for (i, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{body}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes());
    for offset in offsets {
        out.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(format!("trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n", objects.len() + 1).as_bytes());
    out
}

/// `[Content_Types].xml` of a Word document whose main part is `word/document.xml`.
pub const DOCX_CONTENT_TYPES: &str = concat!(
    r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">"#,
    r#"<Default Extension="xml" ContentType="application/xml"/>"#,
    r#"<Override PartName="/word/document.xml" "#,
    r#"ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>"#
);

/// Writes a Word package of exactly `size` bytes (at least 1 KiB, under
/// 4 GiB): `[Content_Types].xml`, `word/document.xml` and a stored
/// `word/media/filler.bin` that takes the rest, then the central directory.
pub fn write_docx(out: &mut impl Write, size: u64) -> io::Result<()> {
    let types: &[u8] = DOCX_CONTENT_TYPES.as_bytes();
    let document: &[u8] = br#"<?xml version="1.0"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"/>"#;
    let names: [&[u8]; 3] = [b"[Content_Types].xml", b"word/document.xml", b"word/media/filler.bin"];
    // Local headers (30 + name) and central entries (46 + name), and the end record.
    let framing: u64 = names.iter().map(|n| 76 + 2 * n.len() as u64).sum::<u64>() + 22;
    let filler_len = size.max(1024) - framing - types.len() as u64 - document.len() as u64;
    let block = filler(size as u32, 1 << 20);
    let filler_crc = {
        let mut hasher = crc32fast::Hasher::new();
        let mut left = filler_len;
        while left > 0 {
            let n = left.min(block.len() as u64) as usize;
            hasher.update(&block[..n]);
            left -= n as u64;
        }
        hasher.finalize()
    };
    let entries = [
        (names[0], types.len() as u64, crc32fast::hash(types)),
        (names[1], document.len() as u64, crc32fast::hash(document)),
        (names[2], filler_len, filler_crc),
    ];
    let header = |sig: &[u8], name: &[u8], len: u64, crc: u32| {
        let mut h = sig.to_vec();
        if sig == b"PK\x01\x02" {
            h.extend_from_slice(&[0x14, 0]);
        }
        h.extend_from_slice(&[0x14, 0, 0, 0, 0, 0, 0, 0, 0x21, 0]);
        h.extend_from_slice(&crc.to_le_bytes());
        h.extend_from_slice(&(len as u32).to_le_bytes());
        h.extend_from_slice(&(len as u32).to_le_bytes());
        h.extend_from_slice(&(name.len() as u16).to_le_bytes());
        h.extend_from_slice(&0u16.to_le_bytes());
        h
    };
    let mut offsets = Vec::new();
    let mut at = 0u64;
    for (i, (name, len, crc)) in entries.iter().enumerate() {
        offsets.push(at);
        out.write_all(&header(b"PK\x03\x04", name, *len, *crc))?;
        out.write_all(name)?;
        match i {
            0 => out.write_all(types)?,
            1 => out.write_all(document)?,
            _ => {
                let mut left = *len;
                while left > 0 {
                    let n = left.min(block.len() as u64) as usize;
                    out.write_all(&block[..n])?;
                    left -= n as u64;
                }
            }
        }
        at += 30 + name.len() as u64 + len;
    }
    let directory_start = at;
    for ((name, len, crc), offset) in entries.iter().zip(offsets) {
        let mut central = header(b"PK\x01\x02", name, *len, *crc);
        central.extend_from_slice(&[0; 6]); // comment length, disk, internal attributes
        central.extend_from_slice(&[0; 4]); // external attributes
        central.extend_from_slice(&(offset as u32).to_le_bytes());
        out.write_all(&central)?;
        out.write_all(name)?;
        at += 46 + name.len() as u64;
    }
    out.write_all(b"PK\x05\x06\0\0\0\0\x03\0\x03\0")?;
    out.write_all(&((at - directory_start) as u32).to_le_bytes())?;
    out.write_all(&(directory_start as u32).to_le_bytes())?;
    out.write_all(&0u16.to_le_bytes())
}

/// Writes a PDF of about `size` bytes (at least 4 KiB), shaped like a
/// scanned document: page objects with their dictionaries, image streams
/// of 64 KiB, and every 32 pages an object stream, Flate-compressed,
/// holding the annotations of those pages.
pub fn write_pdf(out: &mut impl Write, size: u64) -> io::Result<()> {
    use flate2::{Compression, write::ZlibEncoder};
    // Image streams of 64 KiB, smaller in a small file so it still has pages.
    let image = filler(size as u32, (size / 64).clamp(1024, 64 * 1024) as usize);
    let mut written = 0u64;
    let put = |out: &mut dyn Write, bytes: &[u8]| -> io::Result<u64> {
        out.write_all(bytes)?;
        Ok(bytes.len() as u64)
    };
    written += put(out, b"%PDF-1.7\n%\xE2\xE3\xCF\xD3\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n")?;
    let mut object = 3u32;
    let mut page = 0u32;
    while written + image.len() as u64 + 512 < size.max(4096) {
        let text = format!(
            "{object} 0 obj\n<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /XObject << /Im0 {} 0 R >> >> >>\nendobj\n{} 0 obj\n<< /Type /XObject /Subtype /Image /Width 256 /Height 256 /BitsPerComponent 8 /ColorSpace /DeviceGray /Filter /DCTDecode /Length {} >>\nstream\n",
            object + 1,
            object + 1,
            image.len()
        );
        written += put(out, text.as_bytes())? + put(out, &image)? + put(out, b"\nendstream\nendobj\n")?;
        object += 2;
        page += 1;
        if page.is_multiple_of(32) {
            let mut objects = String::new();
            for i in 0..32 {
                objects.push_str(&format!("<< /Type /Annot /Subtype /Link /Rect [0 0 {i} 10] /Border [0 0 0] >>\n"));
            }
            let mut encoder = ZlibEncoder::new(Vec::new(), Compression::fast());
            encoder.write_all(objects.as_bytes())?;
            let compressed = encoder.finish()?;
            let header =
                format!("{object} 0 obj\n<< /Type /ObjStm /N 32 /First 0 /Filter /FlateDecode /Length {} >>\nstream\n", compressed.len());
            written += put(out, header.as_bytes())? + put(out, &compressed)? + put(out, b"\nendstream\nendobj\n")?;
            object += 1;
        }
    }
    put(out, format!("2 0 obj\n<< /Type /Pages /Count {page} >>\nendobj\n").as_bytes())?;
    put(out, format!("trailer\n<< /Size {object} /Root 1 0 R >>\nstartxref\n0\n%%EOF\n").as_bytes())?;
    Ok(())
}

/// Writes a PDF of about `size` bytes that is all syntax and no stream:
/// the worst case of the scanner, which must read every byte of it as
/// tokens (as in a PDF saved uncompressed, `qpdf --qdf`).
pub fn write_pdf_syntax(out: &mut impl Write, size: u64) -> io::Result<()> {
    out.write_all(b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n")?;
    let mut written = 60u64;
    let mut object = 3u32;
    while written + 512 < size.max(4096) {
        let text = format!(
            "{object} 0 obj\n<< /Type /Annot /Subtype /Link /Rect [{0} 72.5 {1} 96.25] /Border [0 0 1] /C [0.5 0.25 1] \
             /Contents (Link number {object}, see \\(page\\) {0}) /NM <4C696E6B{object:08X}> /F 4 \
             /A << /S /URI /URI (https://example.com/doc/{object}) >> >>\nendobj\n",
            object % 600,
            object % 600 + 144
        );
        out.write_all(text.as_bytes())?;
        written += text.len() as u64;
        object += 1;
    }
    out.write_all(
        format!("2 0 obj\n<< /Type /Pages /Count 0 /Kids [] >>\nendobj\ntrailer\n<< /Size {object} /Root 1 0 R >>\nstartxref\n0\n%%EOF\n")
            .as_bytes(),
    )
}
