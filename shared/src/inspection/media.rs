//! Audio and video containers: the container must be what it claims (its
//! boxes, elements, chunks, pages or frames chain inside the file), and the
//! duration and picture size are recorded when the bytes read state them.

use super::{Found, Outcome, Refusal, Window, be16, be32, be64, le16, le32, le64};

/// ISO base media (MP4, MOV, M4A, 3GP, HEIF, AVIF): an `ftyp` box first (old
/// QuickTime may start with `moov`, `mdat`, `wide` or `free`), then boxes
/// whose sizes chain to the file's end, followed until a `moov` (or, for a
/// still image, a `meta`) has been read. `mvhd` gives the duration and the
/// first video track's `tkhd` the picture size.
pub fn bmff(w: &Window, mime: &str) -> Outcome {
    let bad = |why: String| Outcome::Checked(Err(Refusal::invalid(mime, why)));
    let still = mime.starts_with("image/");
    let mut found = Found::new(mime);
    let mut pos = 0u64;
    let mut seen_moov = false;
    let mut first = true;
    while pos < w.size() {
        let header = match w.get(pos, 8.min(w.size() - pos)) {
            Ok(h) if h.len() == 8 => h,
            Ok(_) => {
                return bad(format!("{} stray bytes at the end of the file", w.size() - pos));
            }
            // Past the bytes read once the movie header was: fragments follow.
            Err(_) if seen_moov => break,
            Err(missing) => return missing.into(),
        };
        let kind: [u8; 4] = header[4..8].try_into().unwrap();
        let name = String::from_utf8_lossy(&kind).into_owned();
        if !kind.iter().all(|c| (0x20..0x7F).contains(c) || *c == 0xA9) {
            return bad(format!("the box at byte {pos} has no valid type"));
        }
        if first {
            let quicktime_start = mime == "video/quicktime" && [b"moov", b"mdat", b"wide", b"free", b"skip"].contains(&&kind);
            if &kind != b"ftyp" && !quicktime_start {
                return bad(format!("the first box is '{name}', not 'ftyp'"));
            }
            first = false;
        }
        let (size, header_len) = match u64::from(be32(header, 0)) {
            0 => (w.size() - pos, 8),
            1 => match w.get(pos + 8, 8) {
                Ok(large) => (be64(large, 0), 16),
                Err(missing) => return missing.into(),
            },
            n => (n, 8),
        };
        if size < header_len || size > w.size() - pos {
            return bad(format!("the '{name}' box at byte {pos} claims {size} bytes, past the file's end at {}", w.size()));
        }
        match &kind {
            b"moov" => {
                seen_moov = true;
                let movie = w.available(pos + header_len);
                read_movie(movie, size - header_len, &mut found);
                // A whole movie box without a video track is sound only
                // (voice notes, music): infer calls every MP4 a video.
                let whole = movie.len() as u64 >= size - header_len;
                if whole && found.width.is_none() && mime.starts_with("video/") {
                    found.mime = "audio/mp4".to_string();
                }
            }
            b"meta" if still => {
                seen_moov = true;
                // A full box: version and flags, then its children.
                let body = w.available(pos + header_len);
                let body = &body[..body.len().min((size - header_len) as usize)];
                if let Some((width, height)) = body.get(4..).and_then(primary_ispe) {
                    found.width = Some(width);
                    found.height = Some(height);
                }
            }
            _ => {}
        }
        pos += size;
    }
    if !seen_moov {
        return bad(format!("the file has no '{}' box", if still { "meta" } else { "moov" }));
    }
    Outcome::Checked(Ok(found))
}

/// HEIF and AVIF state each image item's size in an `ispe` property
/// (`meta` → `iprp` → `ipco`), tied to items by `ipma`; the picture's is
/// the primary item's (`pitm`), not a grid tile's or a thumbnail's.
fn primary_ispe(meta: &[u8]) -> Option<(u32, u32)> {
    let (_, pitm) = boxes(meta).find(|(kind, _)| *kind == b"pitm")?;
    let primary = if pitm.first()? == &0 { u32::from(be16(pitm.get(..6)?, 4)) } else { be32(pitm.get(..8)?, 4) };
    let (_, iprp) = boxes(meta).find(|(kind, _)| *kind == b"iprp")?;
    let (_, ipco) = boxes(iprp).find(|(kind, _)| *kind == b"ipco")?;
    let properties: Vec<(&[u8; 4], &[u8])> = boxes(ipco).collect();
    let (_, ipma) = boxes(iprp).find(|(kind, _)| *kind == b"ipma")?;
    let (version, wide) = (*ipma.first()?, ipma.get(3)? & 1 != 0);
    let mut at = 8;
    for _ in 0..be32(ipma.get(..8)?, 4) {
        let item = if version < 1 { u32::from(be16(ipma.get(..at + 2)?, at)) } else { be32(ipma.get(..at + 4)?, at) };
        at += if version < 1 { 2 } else { 4 };
        let count = *ipma.get(at)? as usize;
        at += 1;
        for _ in 0..count {
            let index = if wide { usize::from(be16(ipma.get(..at + 2)?, at) & 0x7FFF) } else { usize::from(ipma.get(at)? & 0x7F) };
            at += if wide { 2 } else { 1 };
            if item != primary || index == 0 {
                continue;
            }
            if let Some((b"ispe", body)) = properties.get(index - 1).filter(|(_, b)| b.len() >= 12) {
                return Some((be32(body, 4), be32(body, 8))).filter(|&(w, h)| w > 0 && h > 0);
            }
        }
    }
    None
}

/// The children of a `moov` box, as far as they were read.
fn read_movie(bytes: &[u8], len: u64, found: &mut Found) {
    let bytes = &bytes[..bytes.len().min(len as usize)];
    for (kind, body) in boxes(bytes) {
        match kind {
            b"mvhd" if body.len() >= 32 => {
                let (timescale, duration) =
                    if body[0] == 1 { (be32(body, 20), be64(body, 24)) } else { (be32(body, 12), u64::from(be32(body, 16))) };
                if timescale > 0 && duration != u64::MAX && duration != u64::from(u32::MAX) {
                    found.duration_ms = Some((u128::from(duration) * 1000 / u128::from(timescale)) as u64);
                }
            }
            b"trak" if found.width.is_none() => {
                for (kind, tkhd) in boxes(body) {
                    let at = if tkhd.first() == Some(&1) { 88 } else { 76 };
                    if kind == b"tkhd" && tkhd.len() >= at + 8 {
                        let (width, height) = (be32(tkhd, at) >> 16, be32(tkhd, at + 4) >> 16);
                        if width > 0 && height > 0 {
                            found.width = Some(width);
                            found.height = Some(height);
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

/// The boxes inside a box's body that are wholly in `bytes`: (type, body).
fn boxes(bytes: &[u8]) -> impl Iterator<Item = (&[u8; 4], &[u8])> {
    let mut pos = 0usize;
    std::iter::from_fn(move || {
        let header = bytes.get(pos..pos + 8)?;
        let size = be32(header, 0) as usize;
        let kind: &[u8; 4] = header[4..8].try_into().ok()?;
        let body = bytes.get(pos + 8..pos.checked_add(size)?).filter(|_| size >= 8)?;
        pos += size;
        Some((kind, body))
    })
}

/// An EBML variable-length integer at `at`: (value, length). IDs keep their
/// length marker, sizes drop it; a size of all ones means "unknown".
fn vint(b: &[u8], at: usize, keep_marker: bool) -> Option<(u64, usize)> {
    let first = *b.get(at)?;
    let len = first.leading_zeros() as usize + 1;
    if len > 8 {
        return None;
    }
    let bytes = b.get(at..at + len)?;
    let mut value = if keep_marker { u64::from(first) } else { u64::from(first) & (0xFF >> len) };
    for &byte in &bytes[1..] {
        value = value << 8 | u64::from(byte);
    }
    Some((value, len))
}

const EBML_UNKNOWN: u64 = u64::MAX;

/// An EBML element at `at` of `b`: (id, body start, body length or unknown).
fn element(b: &[u8], at: usize) -> Option<(u64, usize, u64)> {
    let (id, id_len) = vint(b, at, true)?;
    if id_len > 4 {
        return None;
    }
    let (size, size_len) = vint(b, at + id_len, false)?;
    let all_ones = size == (1u64 << (7 * size_len)) - 1;
    Some((id, at + id_len + size_len, if all_ones { EBML_UNKNOWN } else { size }))
}

/// Matroska and WebM: an EBML header naming the DocType, then a Segment
/// whose children (SeekHead, Info, Tracks, …) chain inside it up to the
/// first Cluster. Info gives the duration, the first video track its size.
pub fn matroska(w: &Window, mime: &str) -> Outcome {
    let bad = |why: String| Outcome::Checked(Err(Refusal::invalid(mime, why)));
    let head = w.head();
    let size = w.size() as usize;
    let Some((0x1A45_DFA3, body, len)) = element(head, 0) else {
        return bad("the file does not start with an EBML header".into());
    };
    let header_end = body.saturating_add(len as usize);
    if len == EBML_UNKNOWN || header_end > head.len() {
        return bad("the EBML header does not fit the bytes read".into());
    }
    let mut doc_type = None;
    let mut at = body;
    while at < header_end {
        let Some((id, body, len)) =
            element(head, at).filter(|e| e.2 != EBML_UNKNOWN && e.1.checked_add(e.2 as usize).is_some_and(|end| end <= header_end))
        else {
            return bad(format!("the EBML header's element at byte {at} does not parse"));
        };
        if id == 0x4282 {
            doc_type = Some(String::from_utf8_lossy(&head[body..body + len as usize]).trim_end_matches('\0').to_string());
        }
        at = body + len as usize;
    }
    match doc_type.as_deref() {
        Some("webm" | "matroska") => {}
        other => {
            return bad(format!("the EBML DocType is {other:?}, not webm or matroska"));
        }
    }
    let Some((0x1853_8067, segment, segment_len)) = element(head, header_end) else {
        return bad("no Segment follows the EBML header".into());
    };
    let segment_end = if segment_len == EBML_UNKNOWN { size } else { segment.saturating_add(segment_len as usize) };
    if segment_end > size {
        return bad(format!("the Segment claims {segment_len} bytes, past the file's end"));
    }
    let mut found = Found::new(mime);
    let (mut scale, mut duration) = (1_000_000u64, None::<f64>);
    let (mut seen_info, mut reached_media, mut tracks_read) = (false, false, false);
    let mut at = segment;
    while at < segment_end.min(head.len()) {
        let Some((id, body, len)) = element(head, at) else {
            if at + 12 > head.len() {
                break;
            }
            return bad(format!("the Segment's element at byte {at} does not parse"));
        };
        if id == 0x1F43_B675 {
            reached_media = true; // the first Cluster: media data follows.
            break;
        }
        if len == EBML_UNKNOWN || body.saturating_add(len as usize) > segment_end {
            return bad(format!("the element 0x{id:X} at byte {at} runs past its Segment"));
        }
        let inner = &head[body.min(head.len())..(body + len as usize).min(head.len())];
        match id {
            0x1549_A966 => {
                seen_info = true;
                for (id, value) in children(inner) {
                    match (id, value.len()) {
                        (0x2A_D7B1, 1..=8) => scale = value.iter().fold(0, |v, &b| v << 8 | u64::from(b)),
                        (0x4489, 4) => duration = Some(f64::from(f32::from_be_bytes(value.try_into().unwrap()))),
                        (0x4489, 8) => duration = Some(f64::from_be_bytes(value.try_into().unwrap())),
                        _ => {}
                    }
                }
            }
            0x1654_AE6B => {
                tracks_read = body + len as usize <= head.len();
                for (_, entry) in children(inner).filter(|(id, _)| *id == 0xAE) {
                    for (_, video) in children(entry).filter(|(id, _)| *id == 0xE0) {
                        let number = |want| {
                            children(video)
                                .find(|(id, _)| *id == want)
                                .map(|(_, v)| v.iter().fold(0u32, |n, &b| n.wrapping_shl(8) | u32::from(b)))
                        };
                        if found.width.is_none() {
                            found.width = number(0xB0).filter(|&v| v > 0);
                            found.height = number(0xBA).filter(|&v| v > 0);
                        }
                    }
                }
            }
            _ => {}
        }
        at = body + len as usize;
    }
    // Info comes before the media; past the head it may still be there.
    if !seen_info && (reached_media || at >= segment_end) {
        return bad("the Segment has no Info element before its media".into());
    }
    if let Some(d) = duration.filter(|d| d.is_finite() && *d >= 0.0) {
        found.duration_ms = Some((d * scale as f64 / 1_000_000.0) as u64);
    }
    // Whole Tracks without a video track: sound only (a browser's recorded
    // voice note); infer calls every WebM a video.
    if tracks_read && found.width.is_none() {
        found.mime = if mime == "video/webm" { "audio/webm" } else { "audio/x-matroska" }.to_string();
    }
    Outcome::Checked(Ok(found))
}

/// The child elements wholly inside `b`: (id, body).
fn children(b: &[u8]) -> impl Iterator<Item = (u64, &[u8])> {
    let mut at = 0;
    std::iter::from_fn(move || {
        let (id, body, len) = element(b, at)?;
        let end = body.checked_add(usize::try_from(len).ok()?)?;
        let value = b.get(body..end)?;
        at = end;
        Some((id, value))
    })
}

/// RIFF (WAV, AVI): the RIFF size within the file and chunks whose sizes
/// chain inside it. WAV needs a valid `fmt ` before its `data`; AVI an
/// `hdrl` list with its `avih` main header.
pub fn riff(w: &Window, mime: &str) -> Outcome {
    let bad = |why: String| Outcome::Checked(Err(Refusal::invalid(mime, why)));
    let head = w.head();
    if head.len() < 12 {
        return bad("the file is too short for a RIFF header".into());
    }
    // A streamed WAV (written to a pipe) leaves its size at 0 or the maximum.
    let riff_end = match le32(head, 4) {
        0 | u32::MAX => w.size(),
        n => u64::from(n) + 8,
    };
    if riff_end > w.size() {
        return bad(format!("the RIFF header says {riff_end} bytes but the file has {}", w.size()));
    }
    let wave = &head[8..12] == b"WAVE";
    let mut found = Found::new(mime);
    let mut byte_rate = None;
    let mut pos = 12u64;
    while pos + 8 <= riff_end {
        let chunk = match w.get(pos, 8) {
            Ok(c) => c,
            Err(missing) if found.duration_ms.is_none() && byte_rate.is_none() => {
                return missing.into();
            }
            Err(_) => break,
        };
        let id: [u8; 4] = chunk[..4].try_into().unwrap();
        let len = u64::from(le32(chunk, 4));
        if !id.iter().all(|c| (0x20..0x7F).contains(c)) {
            return bad(format!("the chunk at byte {pos} has no valid id"));
        }
        let data_len = match (&id, wave) {
            // A streamed WAV's data size may be left at its maximum.
            (b"data", true) if len == u64::from(u32::MAX) => riff_end - pos - 8,
            _ => len,
        };
        if pos + 8 + data_len > riff_end {
            return bad(format!("the '{}' chunk at byte {pos} runs past the RIFF's end", String::from_utf8_lossy(&id)));
        }
        match (&id, wave) {
            (b"fmt ", true) => {
                let Ok(fmt) = w.get(pos + 8, 16) else {
                    return bad("the fmt chunk is truncated".into());
                };
                let (channels, rate, bytes_per_sec) = (le16(fmt, 2), le32(fmt, 4), le32(fmt, 8));
                if len < 16 || channels == 0 || rate == 0 {
                    return bad(format!("the fmt chunk states {channels} channels at {rate} Hz"));
                }
                byte_rate = Some(u64::from(bytes_per_sec));
            }
            (b"data", true) => {
                let Some(rate) = byte_rate else {
                    return bad("the data chunk comes before any fmt chunk".into());
                };
                if let Some(ms) = (data_len * 1000).checked_div(rate) {
                    found.duration_ms = Some(ms);
                }
            }
            (b"LIST", false) => {
                let Ok(list) = w.get(pos + 8, 4 + 8 + 40) else {
                    break;
                };
                if &list[..4] == b"hdrl" && &list[4..8] == b"avih" {
                    let (us_per_frame, frames) = (u64::from(le32(list, 12)), u64::from(le32(list, 28)));
                    found.duration_ms = Some(us_per_frame * frames / 1000);
                    found.width = Some(le32(list, 44)).filter(|&v| v > 0);
                    found.height = Some(le32(list, 48)).filter(|&v| v > 0);
                    byte_rate = Some(0);
                }
            }
            _ => {}
        }
        pos += 8 + data_len + (data_len & 1);
    }
    if wave && byte_rate.is_none() {
        return bad("the WAV has no fmt chunk".into());
    }
    if !wave && byte_rate.is_none() {
        return bad("the AVI has no hdrl list with an avih header".into());
    }
    Outcome::Checked(Ok(found))
}

/// Ogg's CRC-32: polynomial 0x04C11DB7, not reflected, initial value 0.
fn ogg_crc(crc: u32, bytes: &[u8]) -> u32 {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut t = [0u32; 256];
        for (i, slot) in t.iter_mut().enumerate() {
            let mut r = (i as u32) << 24;
            for _ in 0..8 {
                r = if r & 0x8000_0000 != 0 { (r << 1) ^ 0x04C1_1DB7 } else { r << 1 };
            }
            *slot = r;
        }
        t
    });
    bytes.iter().fold(crc, |crc, &b| (crc << 8) ^ table[((crc >> 24) as u8 ^ b) as usize])
}

/// One Ogg page at the start of `b`: (length, granule position, serial).
fn ogg_page(b: &[u8]) -> Result<(usize, i64, u32), String> {
    if b.len() < 27 || &b[..4] != b"OggS" || b[4] != 0 {
        return Err("no Ogg page header".into());
    }
    let segments = b[26] as usize;
    let table = b.get(27..27 + segments).ok_or("the page's segment table is cut off")?;
    let len = 27 + segments + table.iter().map(|&s| s as usize).sum::<usize>();
    let page = b.get(..len).ok_or("the page is cut off")?;
    // The CRC is computed with its own field as zeros.
    let crc = ogg_crc(ogg_crc(ogg_crc(0, &page[..22]), &[0; 4]), &page[26..]);
    if crc != le32(page, 22) {
        return Err("the page fails its CRC".into());
    }
    Ok((len, le64(page, 6) as i64, le32(page, 14)))
}

/// Ogg (Vorbis, Opus, FLAC, Speex): pages whose CRCs hold and that chain
/// from the first (a beginning-of-stream page naming its codec) to the last
/// in the tail, whose granule position gives the duration.
pub fn ogg(w: &Window, mime: &str) -> Outcome {
    let bad = |why: String| Outcome::Checked(Err(Refusal::invalid(mime, why)));
    let head = w.head();
    let (first_len, _, serial) = match ogg_page(head) {
        Ok(page) => page,
        Err(why) => return bad(format!("the first page: {why}")),
    };
    if head[5] & 0x02 == 0 {
        return bad("the first page does not begin a stream".into());
    }
    let packet = &head[27 + head[26] as usize..first_len];
    let (rate, pre_skip) = if packet.starts_with(b"\x01vorbis") && packet.len() >= 16 {
        (u64::from(le32(packet, 12)), 0)
    } else if packet.starts_with(b"OpusHead") && packet.len() >= 12 {
        (48_000, u64::from(le16(packet, 10)))
    } else if packet.starts_with(b"\x7FFLAC") && packet.len() >= 30 {
        (u64::from(be32(packet, 27) >> 12), 0)
    } else if packet.starts_with(b"Speex   ") && packet.len() >= 40 {
        (u64::from(le32(packet, 36)), 0)
    } else {
        return bad("the first packet names no audio codec Sluice knows (Vorbis, Opus, FLAC, Speex)".into());
    };
    // The pages that follow in the head chain on.
    let mut pos = first_len;
    while pos + 27 <= head.len() {
        match ogg_page(&head[pos..]) {
            Ok((len, _, _)) => pos += len,
            Err(_) if pos as u64 + 27 + 255 * 256 > head.len() as u64 && !w.is_whole() => break,
            Err(why) => return bad(format!("the page at byte {pos}: {why}")),
        }
    }
    if w.is_whole() && pos as u64 != w.size() {
        return bad(format!("{} bytes after the last Ogg page", w.size() - pos as u64));
    }
    // The last page of the stream, found from the end.
    let tail = match w.tail(super::TAIL_BYTES) {
        Ok(t) => t,
        Err(missing) => return missing.into(),
    };
    // The last page starts at one of the last "OggS" of the tail (a page
    // is at most 65,307 bytes); a few candidates bound the work.
    let last = memchr::memmem::rfind_iter(tail, b"OggS").take(64).find_map(|at| {
        let (len, granule, page_serial) = ogg_page(&tail[at..]).ok()?;
        (at + len == tail.len()).then_some((granule, page_serial))
    });
    let Some((granule, last_serial)) = last else {
        return bad("the file does not end with a whole Ogg page".into());
    };
    let mut found = Found::new(mime);
    if last_serial == serial && granule > 0 && rate > 0 {
        found.duration_ms = Some((granule as u64).saturating_sub(pre_skip) * 1000 / rate);
    }
    Outcome::Checked(Ok(found))
}

/// FLAC: `fLaC`, a STREAMINFO block first, metadata blocks that chain, and
/// a frame sync code after the last one. STREAMINFO gives the duration.
pub fn flac(w: &Window) -> Outcome {
    const MIME: &str = "audio/x-flac";
    let bad = |why: String| Outcome::Checked(Err(Refusal::invalid(MIME, why)));
    let head = w.head();
    if head.len() < 42 || head[4] & 0x7F != 0 || (u32::from(head[5]) << 16 | u32::from(be16(head, 6))) != 34 {
        return bad("a FLAC must start with fLaC and a 34-byte STREAMINFO block".into());
    }
    let info = &head[8..42];
    let rate = u64::from(be32(info, 10) >> 12);
    let samples = (u64::from(info[13] & 0x0F) << 32) | u64::from(be32(info, 14));
    if rate == 0 {
        return bad("STREAMINFO states a sample rate of 0".into());
    }
    let mut found = Found::new(MIME);
    if samples > 0 {
        found.duration_ms = Some(samples * 1000 / rate);
    }
    let mut pos = 4u64;
    loop {
        let block = match w.get(pos, 4) {
            Ok(b) => b,
            Err(missing) if pos + 4 <= w.size() => return missing.into(),
            Err(_) => return bad("the metadata blocks run past the file's end".into()),
        };
        let (last, kind) = (block[0] & 0x80 != 0, block[0] & 0x7F);
        let len = u64::from(block[1]) << 16 | u64::from(be16(block, 2));
        if kind == 127 {
            return bad(format!("the metadata block at byte {pos} has the reserved type 127"));
        }
        pos += 4 + len;
        if last {
            break;
        }
    }
    match w.get(pos, 2) {
        Ok(sync) if sync[0] == 0xFF && sync[1] & 0xFE == 0xF8 => Outcome::Checked(Ok(found)),
        Ok(_) => bad(format!("no frame sync code follows the metadata at byte {pos}")),
        Err(_) if pos + 2 > w.size() => bad("the FLAC has no audio frames".into()),
        Err(missing) => missing.into(),
    }
}

/// An MPEG audio frame header: (frame length, samples per frame, sample
/// rate, bitrate in bit/s), if `h` is one.
fn mpeg_frame(h: &[u8]) -> Option<(u64, u64, u64, u64)> {
    if h.len() < 4 || h[0] != 0xFF || h[1] & 0xE0 != 0xE0 {
        return None;
    }
    let version = (h[1] >> 3) & 3; // 0: 2.5, 2: 2, 3: 1
    let layer = (h[1] >> 1) & 3; // 1: III, 2: II, 3: I
    let bitrate_index = (h[2] >> 4) as usize;
    let rate_index = ((h[2] >> 2) & 3) as usize;
    if version == 1 || layer == 0 || bitrate_index == 0 || bitrate_index == 15 || rate_index == 3 {
        return None;
    }
    const V1: [[u64; 16]; 3] = [
        [0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448, 0],
        [0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384, 0],
        [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 0],
    ];
    const V2: [[u64; 16]; 2] = [
        [0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256, 0],
        [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160, 0],
    ];
    let layer_row = (3 - layer) as usize; // 0: I, 1: II, 2: III
    let kbps = if version == 3 { V1[layer_row][bitrate_index] } else { V2[layer_row.min(1)][bitrate_index] };
    let rate = [44_100, 48_000, 32_000][rate_index]
        >> match version {
            3 => 0,
            2 => 1,
            _ => 2,
        };
    let padding = u64::from((h[2] >> 1) & 1);
    let bitrate = kbps * 1000;
    let (len, samples) = match (layer_row, version) {
        (0, _) => ((12 * bitrate / rate + padding) * 4, 384),
        (1, _) | (2, 3) => (144 * bitrate / rate + padding, 1152),
        _ => (72 * bitrate / rate + padding, 576),
    };
    Some((len, samples, rate, bitrate))
}

/// Whether `head` starts with two MPEG audio frame headers in a row.
pub(crate) fn starts_with_mpeg_frames(head: &[u8]) -> bool {
    mpeg_frame(head)
        .is_some_and(|(len, ..)| usize::try_from(len).ok().and_then(|len| head.get(len..)).is_some_and(|next| mpeg_frame(next).is_some()))
}

/// MP3: an optional ID3v2 tag whose size is valid, then an MPEG audio frame
/// header that the next frame's header follows where the bytes read reach.
/// The duration comes from a Xing/Info header, or from the bitrate.
pub fn mp3(w: &Window) -> Outcome {
    const MIME: &str = "audio/mpeg";
    let bad = |why: String| Outcome::Checked(Err(Refusal::invalid(MIME, why)));
    let head = w.head();
    let mut start = 0u64;
    if head.starts_with(b"ID3") {
        if head.len() < 10 || !(2..=4).contains(&head[3]) || head[6..10].iter().any(|b| b & 0x80 != 0) {
            return bad("the ID3v2 tag's header is not valid".into());
        }
        let size = head[6..10].iter().fold(0u64, |n, &b| n << 7 | u64::from(b));
        start = 10 + size + if head[5] & 0x10 != 0 { 10 } else { 0 };
    }
    // Some encoders pad the tag with zeros before the first frame.
    let frame = loop {
        let bytes = match w.get(start, 4) {
            Ok(b) => b,
            Err(_) if start + 4 > w.size() => {
                return bad("no MPEG audio frame follows the ID3 tag".into());
            }
            Err(missing) => return missing.into(),
        };
        if bytes[0] == 0 && start < 10 + 4096 + head.len() as u64 {
            start += 1;
            continue;
        }
        break bytes;
    };
    let Some((len, samples, rate, bitrate)) = mpeg_frame(frame) else {
        return bad(format!("no valid MPEG audio frame header at byte {start}"));
    };
    let next = start + len;
    if next + 4 <= w.size() {
        match w.get(next, 4) {
            Ok(h) if mpeg_frame(h).is_some() => {}
            Ok(_) => {
                return bad(format!("the frame at byte {start} is not followed by another at byte {next}"));
            }
            Err(_) => {}
        }
    }
    let mut found = Found::new(MIME);
    let body = w.available(start);
    let xing = [36usize, 21, 13].into_iter().find(|&at| body.get(at..at + 4).is_some_and(|t| t == b"Xing" || t == b"Info"));
    match xing {
        Some(at) if body.len() >= at + 12 && body[at + 7] & 1 != 0 => {
            found.duration_ms = Some(u64::from(be32(body, at + 8)) * samples * 1000 / rate);
        }
        _ if bitrate > 0 => found.duration_ms = Some((w.size() - start) * 8 * 1000 / bitrate),
        _ => {}
    }
    Outcome::Checked(Ok(found))
}
