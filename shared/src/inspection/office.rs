//! Office documents. ZIP packages (OOXML, ODF) are judged by their central
//! directory, read from the end of the object; legacy OLE documents by
//! their compound-file directory. What the package holds decides what it
//! is: the first entry's name, which `infer` looks at, proves nothing.

use super::{Checked, Found, Missing, Outcome, Refusal, Rules, Window, forbidden, le16, le32, le64};

const DOCX: &str = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";
const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
const PPTX: &str = "application/vnd.openxmlformats-officedocument.presentationml.presentation";
const ODF: &[&str] = &[
    "application/vnd.oasis.opendocument.text",
    "application/vnd.oasis.opendocument.spreadsheet",
    "application/vnd.oasis.opendocument.presentation",
];

/// Names of entries that run code where they are opened or unpacked.
const EXECUTABLE_EXTENSIONS: &[&str] = &[
    "exe",
    "dll",
    "com",
    "scr",
    "pif",
    "cpl",
    "msi",
    "msp",
    "bat",
    "cmd",
    "ps1",
    "psm1",
    "vbs",
    "vbe",
    "js",
    "jse",
    "wsf",
    "wsh",
    "hta",
    "jar",
    "sh",
    "lnk",
    "reg",
    "application",
    "gadget",
    "so",
    "dylib",
];

/// One entry of a ZIP central directory.
struct Entry {
    name: String,
    local_offset: u64,
    method: u16,
    compressed: u64,
}

/// The central directory's entries, read from the end-of-central-directory
/// record (and its ZIP64 twin) in the object's tail.
fn central_directory(w: &Window) -> Result<Result<Vec<Entry>, String>, Missing> {
    const EOCD: &[u8] = b"PK\x05\x06";
    // The record is 22 bytes plus a comment of at most 65,535.
    let tail = w.tail(22 + 65_535)?;
    let tail_start = w.size() - tail.len() as u64;
    let Some(at) = (0..tail.len().saturating_sub(21))
        .rev()
        .find(|&at| tail[at..].starts_with(EOCD) && at + 22 + le16(tail, at + 20) as usize == tail.len())
    else {
        return Ok(Err("no end-of-central-directory record closes the file".into()));
    };
    let eocd = &tail[at..];
    if le16(eocd, 4) != 0 || le16(eocd, 6) != 0 {
        return Ok(Err("multi-part archives are not accepted".into()));
    }
    let (mut count, mut cd_size, mut cd_offset) = (u64::from(le16(eocd, 10)), u64::from(le32(eocd, 12)), u64::from(le32(eocd, 16)));
    let mut cd_end = tail_start + at as u64;
    // A ZIP64 end record may stand before the plain one even when the plain
    // one's fields are not saturated (Java writes both once any entry needs it).
    let locator = at.checked_sub(20).map(|l| &tail[l..l + 20]).filter(|l| l.starts_with(b"PK\x06\x07"));
    let saturated = count == 0xFFFF || cd_size == 0xFFFF_FFFF || cd_offset == 0xFFFF_FFFF;
    match locator {
        Some(locator) => {
            let record_offset = le64(locator, 8);
            let record = w.get(record_offset, 56)?;
            if !record.starts_with(b"PK\x06\x06") {
                return Ok(Err("the ZIP64 end-of-directory record is missing".into()));
            }
            (count, cd_size, cd_offset) = (le64(record, 32), le64(record, 40), le64(record, 48));
            cd_end = record_offset;
        }
        None if saturated => {
            return Ok(Err("the ZIP64 end-of-directory locator is missing".into()));
        }
        None => {}
    }
    if cd_offset.checked_add(cd_size) != Some(cd_end) {
        return Ok(Err(format!("the central directory is said to span bytes {cd_offset}..+{cd_size} but ends at {cd_end}")));
    }
    let directory = w.get(cd_offset, cd_size)?;
    let mut entries = Vec::new();
    let mut pos = 0usize;
    while pos < directory.len() {
        let Some(header) = directory.get(pos..pos + 46).filter(|h| h.starts_with(b"PK\x01\x02")) else {
            return Ok(Err(format!("the central directory's entry at byte {} does not parse", cd_offset + pos as u64)));
        };
        let (name_len, extra_len, comment_len) = (le16(header, 28) as usize, le16(header, 30) as usize, le16(header, 32) as usize);
        let Some(name) = directory.get(pos + 46..pos + 46 + name_len) else {
            return Ok(Err("an entry's name runs past the central directory".into()));
        };
        let extra = directory.get(pos + 46 + name_len..pos + 46 + name_len + extra_len).unwrap_or_default();
        let (mut compressed, mut local_offset) = (u64::from(le32(header, 20)), u64::from(le32(header, 42)));
        // The ZIP64 extra field holds, in order, what the header saturated:
        // the uncompressed size, the compressed size, the offset.
        let mut wide = zip64_fields(extra).into_iter();
        if le32(header, 24) == 0xFFFF_FFFF {
            wide.next();
        }
        if compressed == 0xFFFF_FFFF {
            compressed = wide.next().unwrap_or(u64::MAX);
        }
        if local_offset == 0xFFFF_FFFF {
            local_offset = wide.next().unwrap_or(u64::MAX);
        }
        if local_offset >= cd_offset {
            return Ok(Err("an entry's data lies outside the archive".into()));
        }
        entries.push(Entry { name: String::from_utf8_lossy(name).into_owned(), local_offset, method: le16(header, 10), compressed });
        pos += 46 + name_len + extra_len + comment_len;
    }
    if entries.len() as u64 != count {
        return Ok(Err(format!("the directory lists {} entries, not the {count} its end record states", entries.len())));
    }
    Ok(Ok(entries))
}

/// The 64-bit values of a ZIP64 extended-information extra field.
fn zip64_fields(extra: &[u8]) -> Vec<u64> {
    let mut at = 0;
    while at + 4 <= extra.len() {
        let (id, len) = (le16(extra, at), le16(extra, at + 2) as usize);
        if id == 0x0001 {
            let field = extra.get(at + 4..at + 4 + len).unwrap_or_default();
            return field.chunks_exact(8).map(|b| le64(b, 0)).collect();
        }
        at += 4 + len;
    }
    Vec::new()
}

/// An entry's bytes, inflated if they are deflated; at most `limit` of them.
fn entry_bytes(w: &Window, entry: &Entry, limit: usize) -> Result<Result<Vec<u8>, String>, Missing> {
    let header = w.get(entry.local_offset, 30)?;
    if !header.starts_with(b"PK\x03\x04") {
        return Ok(Err(format!("{}'s local header is missing", entry.name)));
    }
    if entry.compressed > super::MAX_READ_BYTES / 2 {
        return Ok(Err(format!("{} is {} bytes compressed, too large to check", entry.name, entry.compressed)));
    }
    let start = entry.local_offset + 30 + u64::from(le16(header, 26)) + u64::from(le16(header, 28));
    let data = w.get(start, entry.compressed)?;
    match entry.method {
        0 => Ok(Ok(data[..data.len().min(limit)].to_vec())),
        8 => {
            let mut out = Vec::with_capacity(limit.min(64 * 1024));
            let mut inflater = flate2::Decompress::new(false);
            let mut buf = [0u8; 16 * 1024];
            let mut used = 0;
            loop {
                let before = (inflater.total_in(), inflater.total_out());
                let status = inflater.decompress(&data[used..], &mut buf, flate2::FlushDecompress::None);
                used += (inflater.total_in() - before.0) as usize;
                let produced = (inflater.total_out() - before.1) as usize;
                out.extend_from_slice(&buf[..produced.min(limit - out.len())]);
                match status {
                    Ok(flate2::Status::StreamEnd) => break,
                    _ if out.len() >= limit => break,
                    Ok(_) if produced == 0 && used >= data.len() => break,
                    Ok(_) if produced == 0 && before.0 == inflater.total_in() => break,
                    Ok(_) => {}
                    Err(e) => return Ok(Err(format!("{} does not inflate: {e}", entry.name))),
                }
            }
            Ok(Ok(out))
        }
        other => Ok(Err(format!("{} uses compression method {other}", entry.name))),
    }
}

/// The value of `attribute` in an XML start tag's text, either quote.
fn attribute<'t>(tag: &'t str, attribute: &str) -> Option<&'t str> {
    let at = tag.find(&format!("{attribute}="))? + attribute.len() + 1;
    let quote = tag[at..].chars().next().filter(|q| *q == '"' || *q == '\'')?;
    let value = &tag[at + 1..];
    value.find(quote).map(|end| &value[..end])
}

/// `(part name or extension, content type)` of every Override and Default
/// in `[Content_Types].xml`.
fn content_types(xml: &str) -> Vec<(bool, String, String)> {
    let mut out = Vec::new();
    for (element, is_override) in [("<Override", true), ("<Default", false)] {
        for (at, _) in xml.match_indices(element) {
            let tag = &xml[at..xml[at..].find('>').map_or(xml.len(), |e| at + e)];
            let key = if is_override { "PartName" } else { "Extension" };
            if let (Some(name), Some(kind)) = (attribute(tag, key), attribute(tag, "ContentType")) {
                out.push((is_override, name.trim_start_matches('/').to_string(), kind.to_ascii_lowercase()));
            }
        }
    }
    out
}

/// An OOXML package's type from its main part's content type (wherever
/// Word, Excel or PowerPoint put it: `word/document2.xml` is Word Online's),
/// and the parts whose content types mean macros or embedded objects.
fn ooxml(entries: &[Entry], xml: &str, rules: &Rules) -> Checked {
    const ZIP: &str = "application/zip";
    let types = content_types(xml);
    let has = |name: &str| entries.iter().any(|e| e.name.eq_ignore_ascii_case(name));
    let main = types.iter().find(|(o, name, kind)| *o && kind.ends_with(".main+xml") && has(name));
    let Some((_, part, kind)) = main else {
        return Err(Refusal::invalid(ZIP, "[Content_Types].xml names no main document part that the package holds"));
    };
    let mime = if kind.contains("wordprocessingml") || kind.contains("ms-word") {
        DOCX
    } else if kind.contains("spreadsheetml") || kind.contains("ms-excel") {
        XLSX
    } else if kind.contains("presentationml") || kind.contains("ms-powerpoint") {
        PPTX
    } else {
        return Err(Refusal::invalid(ZIP, format!("the main part {part} is {kind}, no Word, Excel or PowerPoint document")));
    };
    // A content type only matters for the parts the package really holds.
    let used = |is_override: bool, name: &str| {
        if is_override {
            has(name)
        } else {
            entries.iter().any(|e| e.name.to_ascii_lowercase().ends_with(&format!(".{}", name.to_ascii_lowercase())))
        }
    };
    for (is_override, name, kind) in &types {
        if !used(*is_override, name) {
            continue;
        }
        let macros = kind.contains("vbaproject") || kind.contains("macroenabled") || kind.contains("vbadata");
        if macros && !rules.allow_macros {
            return Err(Refusal::active(mime, format!("the document holds macros ({name}: {kind}); ALLOW_MACROS is off")));
        }
        if kind.contains("oleobject") || kind.contains("activex") {
            return Err(Refusal::active(
                mime,
                format!("the document embeds an OLE or ActiveX object ({name}), which can carry any file or program"),
            ));
        }
    }
    package_contents(mime, entries.iter().map(|e| e.name.as_str()), rules)
}

/// OOXML (`[Content_Types].xml` and its main part) or ODF (a `mimetype`
/// entry naming an ODF type). Packages holding executables or scripts are
/// refused, and so are macro projects unless `rules.allow_macros`. Any
/// other ZIP is an archive, and archives are refused.
pub fn zip_package(w: &Window, rules: &Rules) -> Outcome {
    let entries = match central_directory(w) {
        Ok(Ok(entries)) => entries,
        Ok(Err(why)) => return Outcome::Checked(Err(Refusal::invalid("application/zip", why))),
        Err(missing) => return missing.into(),
    };
    let find = |name: &str| entries.iter().find(|e| e.name == name);
    let checked = if let Some(types) = find("[Content_Types].xml") {
        match entry_bytes(w, types, 1 << 20) {
            Ok(Ok(xml)) => ooxml(&entries, &String::from_utf8_lossy(&xml), rules),
            Ok(Err(why)) => Err(Refusal::unverifiable("application/zip", why)),
            Err(missing) => return missing.into(),
        }
    } else if let Some(entry) = find("mimetype") {
        match entry_bytes(w, entry, 100) {
            Ok(Ok(text)) => match ODF.iter().find(|m| **m == String::from_utf8_lossy(&text).trim()) {
                Some(mime) if entry.method == 0 => package_contents(mime, entries.iter().map(|e| e.name.as_str()), rules),
                _ => Err(Refusal::invalid(
                    "application/zip",
                    "the mimetype entry must be stored and name an OpenDocument text, spreadsheet or presentation",
                )),
            },
            Ok(Err(why)) => Err(Refusal::invalid("application/zip", why)),
            Err(missing) => return missing.into(),
        }
    } else if entries.iter().any(|e| e.name.starts_with("word/") || e.name.starts_with("xl/") || e.name.starts_with("ppt/")) {
        Err(Refusal::invalid("application/zip", "the package has Office parts but no [Content_Types].xml"))
    } else {
        Err(forbidden("application/zip"))
    };
    Outcome::Checked(checked)
}

/// Refuses unsafe paths, executables, scripts and (unless allowed) macros.
fn package_contents<'a>(mime: &str, names: impl Iterator<Item = &'a str>, rules: &Rules) -> Checked {
    for name in names {
        // Windows drops trailing dots and spaces: `setup.exe.` is `setup.exe`.
        let lower = name.to_ascii_lowercase().trim_end_matches(['.', ' ']).to_string();
        if lower.starts_with('/') || lower.split(['/', '\\']).any(|part| part == "..") {
            return Err(Refusal::invalid(mime, format!("the entry {name:?} points outside the package")));
        }
        let extension = lower.rsplit_once('.').map(|(_, e)| e).unwrap_or_default();
        if EXECUTABLE_EXTENSIONS.contains(&extension) {
            return Err(Refusal::active(mime, format!("the package carries the executable or script {name:?}")));
        }
        let macros = lower.ends_with("vbaproject.bin")
            || lower.ends_with("vbadata.xml")
            || lower.starts_with("basic/")
            || lower.starts_with("scripts/");
        if macros && !rules.allow_macros {
            return Err(Refusal::active(mime, format!("the document holds macros ({name}); ALLOW_MACROS is off")));
        }
    }
    Ok(Found::new(mime))
}

/// Legacy OLE documents (.doc, .xls, .ppt): a compound file whose header
/// and directory parse (`cfb`), with the document's main stream. A `VBA`
/// storage (macros) is refused unless allowed; so is an embedded package
/// (`Ole10Native`), which can carry any file. A directory that cannot be
/// read within the bounded reads is refused as unverifiable.
pub fn ole(w: &Window, rules: &Rules) -> Outcome {
    const OLE: &str = "application/x-ole-storage";
    let mut reader = w.reader();
    let file = match cfb::CompoundFile::open(&mut reader) {
        Ok(file) => file,
        Err(e) => {
            return match reader.missing() {
                // Read the rest at once: a directory is spread through the file.
                Some(missing) if !w.is_whole() => {
                    let from = w.head().len() as u64;
                    Missing { offset: from.min(missing.offset), len: w.size() - from.min(missing.offset) }.into()
                }
                _ => Outcome::Checked(Err(Refusal::invalid(OLE, format!("the compound file does not parse: {e}")))),
            };
        }
    };
    let names: Vec<(String, bool)> = file.walk().map(|e| (e.name().to_string(), e.is_storage())).collect();
    let has_stream = |want: &str| names.iter().any(|(n, storage)| !storage && n == want);
    let mime = match () {
        _ if has_stream("EncryptedPackage") => {
            return Outcome::Checked(Err(Refusal::unverifiable(OLE, "encrypted Office documents cannot be checked")));
        }
        _ if has_stream("WordDocument") => "application/msword",
        _ if has_stream("Workbook") || has_stream("Book") => "application/vnd.ms-excel",
        _ if has_stream("PowerPoint Document") => "application/vnd.ms-powerpoint",
        _ => return Outcome::Checked(Err(forbidden(OLE))),
    };
    for (name, storage) in &names {
        if *storage && ["VBA", "_VBA_PROJECT_CUR", "Macros", "_VBA_PROJECT"].contains(&name.as_str()) && !rules.allow_macros {
            return Outcome::Checked(Err(Refusal::active(mime, format!("the document holds macros ({name}); ALLOW_MACROS is off"))));
        }
        if name.ends_with("Ole10Native") {
            return Outcome::Checked(Err(Refusal::active(mime, "the document embeds a package (Ole10Native), which can carry any file")));
        }
    }
    Outcome::Checked(Ok(Found::new(mime)))
}
