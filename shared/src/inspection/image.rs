//! Images: each header must parse as its format's specification says, and
//! the dimensions it states are recorded. Where the whole file is read (it
//! fits the window), nothing may follow the format's end marker.

use super::{Checked, Found, Missing, Outcome, Refusal, Window, be16, be32, le16, le32};

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
const PNG_IEND: &[u8] = b"\0\0\0\0IEND\xAE\x42\x60\x82";

/// Signature, then an IHDR chunk whose CRC holds and whose fields are legal,
/// then chunks whose lengths chain and whose CRCs hold (as far as the bytes
/// read go), then IEND as the very last chunk.
pub fn png(w: &Window) -> Outcome {
    const MIME: &str = "image/png";
    let bad = |why: String| Outcome::Checked(Err(Refusal::invalid(MIME, why)));
    let head = w.head();
    if head.len() < 33 || &head[..8] != PNG_SIGNATURE {
        return bad("a PNG must start with its signature and a 13-byte IHDR chunk".into());
    }
    if be32(head, 8) != 13 || &head[12..16] != b"IHDR" {
        return bad("the first chunk of a PNG must be a 13-byte IHDR".into());
    }
    if crc32fast::hash(&head[12..29]) != be32(head, 29) {
        return bad("the IHDR chunk's CRC does not match its bytes".into());
    }
    let (width, height) = (be32(head, 16), be32(head, 20));
    let (depth, color) = (head[24], head[25]);
    let legal_depth = match color {
        0 => [1, 2, 4, 8, 16].contains(&depth),
        3 => [1, 2, 4, 8].contains(&depth),
        2 | 4 | 6 => [8, 16].contains(&depth),
        _ => false,
    };
    if width == 0 || height == 0 || width > i32::MAX as u32 || height > i32::MAX as u32 {
        return bad(format!("IHDR states {width}×{height} pixels"));
    }
    if !legal_depth || head[26] != 0 || head[27] != 0 || head[28] > 1 {
        return bad(format!("IHDR's bit depth {depth} with colour type {color} (or its methods) is not legal"));
    }
    let mut pos: u64 = 33;
    let mut seen_data = false;
    while let Ok(header) = w.get(pos, 8) {
        let len = u64::from(be32(header, 0));
        let kind = [header[4], header[5], header[6], header[7]];
        if len > i32::MAX as u64 || !kind.iter().all(u8::is_ascii_alphabetic) {
            return bad(format!("the chunk at byte {pos} has no valid type and length"));
        }
        let end = pos + 12 + len;
        if end > w.size() {
            return bad(format!("the {} chunk at byte {pos} runs past the file's end", String::from_utf8_lossy(&kind)));
        }
        if let Ok(chunk) = w.get(pos + 4, len + 8)
            && crc32fast::hash(&chunk[..len as usize + 4]) != be32(chunk, len as usize + 4)
        {
            return bad(format!("the {} chunk at byte {pos} fails its CRC", String::from_utf8_lossy(&kind)));
        }
        seen_data |= &kind == b"IDAT";
        if &kind == b"IEND" {
            if end != w.size() {
                return bad(format!("{} bytes follow the IEND chunk", w.size() - end));
            }
            if !seen_data {
                return bad("the PNG has no IDAT chunk".into());
            }
            return Outcome::Checked(Ok(Found::sized(MIME, width, height)));
        }
        pos = end;
    }
    if w.is_whole() {
        return bad("the PNG ends before its IEND chunk".into());
    }
    // The chunks left the bytes read: the file must still end with IEND.
    match w.tail(PNG_IEND.len() as u64) {
        Ok(tail) if tail == PNG_IEND => Outcome::Checked(Ok(Found::sized(MIME, width, height))),
        Ok(_) => bad("the PNG does not end with an IEND chunk".into()),
        Err(missing) => missing.into(),
    }
}

/// SOI, then marker segments whose lengths chain, through a frame header
/// (SOFn) that states the size, up to the first scan (SOS); a file read
/// whole must also hold an EOI after it. Data after EOI is allowed: phones
/// append motion-photo videos there.
pub fn jpeg(w: &Window) -> Outcome {
    const MIME: &str = "image/jpeg";
    let bad = |why: String| Outcome::Checked(Err(Refusal::invalid(MIME, why)));
    let mut pos: u64 = 2;
    let mut frame_size = None;
    loop {
        let marker = match w.get(pos, 4) {
            Ok(m) => m,
            Err(_) if pos + 4 > w.size() => {
                return bad("the JPEG ends before its first scan".into());
            }
            Err(missing) => return missing.into(),
        };
        if marker[0] != 0xFF {
            return bad(format!("expected a marker at byte {pos}, found 0x{:02X}", marker[0]));
        }
        let code = marker[1];
        match code {
            // Fill bytes before a marker.
            0xFF => {
                pos += 1;
                continue;
            }
            0x01 | 0xD0..=0xD7 => {
                pos += 2;
                continue;
            }
            0xDA if frame_size.is_some() => break,
            0x00 | 0xD8 | 0xD9 | 0xDA => {
                return bad(format!("marker 0x{code:02X} at byte {pos} comes before any frame header"));
            }
            _ => {}
        }
        let len = u64::from(be16(marker, 2));
        if len < 2 || pos + 2 + len > w.size() {
            return bad(format!("the segment 0x{code:02X} at byte {pos} has length {len}, past the file's end"));
        }
        let is_frame = matches!(code, 0xC0..=0xCF) && !matches!(code, 0xC4 | 0xC8 | 0xCC);
        if is_frame && frame_size.is_none() {
            let frame = match w.get(pos + 4, len - 2) {
                Ok(f) => f,
                Err(missing) => return missing.into(),
            };
            if frame.len() < 6 {
                return bad("the frame header is too short".into());
            }
            let (height, width, components) = (be16(frame, 1), be16(frame, 3), frame[5]);
            if width == 0 || height == 0 || components == 0 || frame.len() != 6 + 3 * components as usize {
                return bad(format!("the frame header states {width}×{height} pixels in {components} components"));
            }
            frame_size = Some((u32::from(width), u32::from(height)));
        }
        pos += 2 + len;
    }
    let (width, height) = frame_size.unwrap_or_default();
    // Entropy-coded data stuffs every 0xFF with 0x00, so FF D9 is an EOI.
    if w.is_whole() && memchr::memmem::find(&w.head()[pos as usize..], b"\xFF\xD9").is_none() {
        return bad("the JPEG has no end-of-image marker after its scan".into());
    }
    Outcome::Checked(Ok(Found::sized(MIME, width, height)))
}

/// Header, logical screen descriptor and colour table, then blocks
/// (extensions and images with their sub-blocks) up to the trailer, which
/// must be the last byte.
pub fn gif(w: &Window) -> Outcome {
    const MIME: &str = "image/gif";
    let bad = |why: String| Outcome::Checked(Err(Refusal::invalid(MIME, why)));
    let head = w.head();
    if head.len() < 13 || !(head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a")) {
        return bad("a GIF must start with GIF87a or GIF89a and a logical screen descriptor".into());
    }
    let (width, height, flags) = (le16(head, 6), le16(head, 8), head[10]);
    if width == 0 || height == 0 {
        return bad(format!("the logical screen is {width}×{height} pixels"));
    }
    let found = || Outcome::Checked(Ok(Found::sized(MIME, width.into(), height.into())));
    let mut pos: u64 = 13 + color_table(flags);
    let mut images = 0;
    while let Ok(byte) = w.get(pos, 1) {
        match byte[0] {
            0x3B => {
                if images == 0 {
                    return bad("the GIF has no image".into());
                }
                if pos + 1 != w.size() {
                    return bad(format!("{} bytes follow the GIF trailer", w.size() - pos - 1));
                }
                return found();
            }
            0x21 => pos += 2,
            0x2C => {
                let Ok(d) = w.get(pos + 1, 9) else { break };
                let (left, top, iw, ih) = (le16(d, 0), le16(d, 2), le16(d, 4), le16(d, 6));
                if iw == 0 || ih == 0 || u32::from(left) + u32::from(iw) > 65_535 || u32::from(top) + u32::from(ih) > 65_535 {
                    return bad(format!("the image at byte {pos} is {iw}×{ih} at ({left}, {top})"));
                }
                pos += 10 + color_table(d[8]);
                let Ok(code_size) = w.get(pos, 1) else { break };
                if !(1..=11).contains(&code_size[0]) {
                    return bad(format!("the image at byte {pos} has LZW code size {}", code_size[0]));
                }
                pos += 1;
                images += 1;
            }
            other => {
                return bad(format!("expected a block at byte {pos}, found 0x{other:02X}"));
            }
        }
        // Sub-blocks: a length byte, that many bytes, until a zero length.
        while let Ok(len) = w.get(pos, 1) {
            pos += 1 + u64::from(len[0]);
            if len[0] == 0 {
                break;
            }
        }
        if pos > w.size() {
            return bad("a block runs past the file's end".into());
        }
    }
    if w.is_whole() {
        return bad("the GIF ends before its trailer".into());
    }
    // The blocks left the bytes read: the file must still end with a block
    // terminator and the trailer.
    if images == 0 && w.get(pos, 1).is_err() && pos < w.size() {
        return Missing { offset: pos, len: 1 }.into();
    }
    match w.tail(2) {
        Ok(tail) if tail == [0x00, 0x3B] => found(),
        Ok(_) => bad("the GIF does not end with a trailer after its last block".into()),
        Err(missing) => missing.into(),
    }
}

fn color_table(flags: u8) -> u64 {
    if flags & 0x80 != 0 { 3 << ((flags & 7) + 1) } else { 0 }
}

/// RIFF whose size matches the file, `WEBP`, then a VP8, VP8L or VP8X chunk
/// whose own header is valid; the chunks chain to the RIFF's end.
pub fn webp(w: &Window) -> Outcome {
    const MIME: &str = "image/webp";
    let bad = |why: String| Outcome::Checked(Err(Refusal::invalid(MIME, why)));
    let head = w.head();
    if head.len() < 30 || &head[8..12] != b"WEBP" {
        return bad("a WebP must be a RIFF WEBP file with an image chunk".into());
    }
    let riff_end = u64::from(le32(head, 4)) + 8;
    if riff_end != w.size() && riff_end + 1 != w.size() {
        return bad(format!("the RIFF header says {riff_end} bytes but the file has {}", w.size()));
    }
    let chunk_len = u64::from(le32(head, 16));
    if 20 + chunk_len > riff_end {
        return bad("the first chunk runs past the RIFF's end".into());
    }
    let (width, height) = match &head[12..16] {
        b"VP8 " => {
            if head[23..26] != [0x9D, 0x01, 0x2A] || head[20] & 1 != 0 {
                return bad("the VP8 chunk is not a key frame with its start code".into());
            }
            (u32::from(le16(head, 26) & 0x3FFF), u32::from(le16(head, 28) & 0x3FFF))
        }
        b"VP8L" => {
            if head[20] != 0x2F {
                return bad("the VP8L chunk lacks its signature byte".into());
            }
            let bits = le32(head, 21);
            ((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
        }
        b"VP8X" => {
            let w24 = |at: usize| u32::from(head[at]) | u32::from(head[at + 1]) << 8 | u32::from(head[at + 2]) << 16;
            if chunk_len < 10 {
                return bad("the VP8X chunk is too short".into());
            }
            (w24(24) + 1, w24(27) + 1)
        }
        other => {
            return bad(format!("the first chunk is {:?}, not VP8, VP8L or VP8X", String::from_utf8_lossy(other)));
        }
    };
    if width == 0 || height == 0 {
        return bad(format!("the image is {width}×{height} pixels"));
    }
    // Chunks chain inside the RIFF, as far as the bytes read go.
    let mut pos = 20 + chunk_len + (chunk_len & 1);
    while pos + 8 <= riff_end {
        let Ok(chunk) = w.get(pos, 8) else { break };
        let len = u64::from(le32(chunk, 4));
        if !chunk[..4].iter().all(|c| c.is_ascii_alphanumeric() || *c == b' ') || pos + 8 + len > riff_end {
            return bad(format!("the chunk at byte {pos} is not a valid chunk inside the RIFF"));
        }
        pos += 8 + len + (len & 1);
    }
    Outcome::Checked(Ok(Found::sized(MIME, width, height)))
}

/// `BM`, a known DIB header with legal planes, depth and compression, and
/// pixel data that starts (and, uncompressed, ends) inside the file.
pub fn bmp(w: &Window) -> Outcome {
    const MIME: &str = "image/bmp";
    let bad = |why: String| Outcome::Checked(Err(Refusal::invalid(MIME, why)));
    let head = w.head();
    if head.len() < 26 {
        return bad("the file is too short for a BMP header".into());
    }
    let data_offset = u64::from(le32(head, 10));
    let dib = le32(head, 14);
    if ![12, 40, 52, 56, 64, 108, 124].contains(&dib) || head.len() < 14 + dib as usize {
        return bad(format!("the DIB header size {dib} is not one BMP defines"));
    }
    let (width, height, planes, depth, compression) = if dib == 12 {
        (i64::from(le16(head, 18)), i64::from(le16(head, 20)), le16(head, 22), le16(head, 24), 0)
    } else {
        let signed = |at| i64::from(le32(head, at) as i32);
        (signed(18), signed(22), le16(head, 26), le16(head, 28), le32(head, 30))
    };
    let (width, height) = (width, height.abs());
    if width <= 0 || height == 0 || planes != 1 || ![1, 2, 4, 8, 16, 24, 32, 64].contains(&depth) || compression > 13 {
        return bad(format!("the header states {width}×{height} pixels, {planes} planes, {depth} bits, compression {compression}"));
    }
    if data_offset < 14 + u64::from(dib) || data_offset >= w.size() {
        return bad(format!("the pixel data offset {data_offset} lies outside the file's {} bytes", w.size()));
    }
    if compression == 0 {
        let row = (width as u64 * u64::from(depth)).div_ceil(32) * 4;
        let pixels_end = row.checked_mul(height as u64).and_then(|n| n.checked_add(data_offset));
        if pixels_end.is_none_or(|end| end > w.size()) {
            return bad(format!("{width}×{height} pixels at {depth} bits need more bytes than the file has"));
        }
    }
    Outcome::Checked(Ok(Found::sized(MIME, width as u32, height as u32)))
}

/// A byte order mark, then the first IFD (inside the file) with its entries,
/// among them the image's width and height.
pub fn tiff(w: &Window, mime: &str) -> Outcome {
    let bad = |why: String| Outcome::Checked(Err(Refusal::invalid(mime, why)));
    let head = w.head();
    if head.len() < 8 {
        return bad("the file is too short for a TIFF header".into());
    }
    let little = &head[..2] == b"II";
    let u16_at = |b: &[u8], at| if little { le16(b, at) } else { be16(b, at) };
    let u32_at = |b: &[u8], at| if little { le32(b, at) } else { be32(b, at) };
    if u16_at(head, 2) != 42 {
        return Outcome::Checked(Err(Refusal::unverifiable(mime, "BigTIFF files are not checked")));
    }
    let ifd = u64::from(u32_at(head, 4));
    if ifd < 8 || ifd + 2 > w.size() {
        return bad(format!("the first IFD offset {ifd} lies outside the file"));
    }
    let count = match w.get(ifd, 2) {
        Ok(b) => u64::from(u16_at(b, 0)),
        Err(missing) => return missing.into(),
    };
    if count == 0 || ifd + 2 + 12 * count + 4 > w.size() {
        return bad(format!("the IFD at byte {ifd} holds {count} entries, past the file's end"));
    }
    let entries = match w.get(ifd + 2, 12 * count) {
        Ok(b) => b,
        Err(missing) => return missing.into(),
    };
    let (mut width, mut height) = (0, 0);
    for entry in entries.chunks_exact(12) {
        let value = match u16_at(entry, 2) {
            3 => u32::from(u16_at(entry, 8)),
            4 => u32_at(entry, 8),
            _ => continue,
        };
        match u16_at(entry, 0) {
            256 => width = value,
            257 => height = value,
            _ => {}
        }
    }
    if width == 0 || height == 0 {
        return bad(format!("the first IFD states {width}×{height} pixels"));
    }
    Outcome::Checked(Ok(Found::sized(mime, width, height)))
}

/// Other image formats `infer` knows (ICO, PSD, JPEG XL, …): their header
/// must parse as `imagesize` reads it and state a size.
pub fn other(w: &Window, mime: &str) -> Outcome {
    let checked: Checked = match imagesize::blob_size(w.head()) {
        Ok(size) if size.width > 0 && size.height > 0 && size.width <= u32::MAX as usize && size.height <= u32::MAX as usize => {
            Ok(Found::sized(mime, size.width as u32, size.height as u32))
        }
        Ok(size) => Err(Refusal::invalid(mime, format!("the header states {}×{} pixels", size.width, size.height))),
        Err(imagesize::ImageError::NotSupported) => {
            Err(Refusal::unverifiable(mime, format!("Sluice cannot check the structure of {mime} files")))
        }
        Err(e) => Err(Refusal::invalid(mime, format!("the header does not parse: {e}"))),
    };
    Outcome::Checked(checked)
}
