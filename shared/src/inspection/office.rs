//! Office documents. ZIP packages (OOXML, ODF) are judged by their central
//! directory, read from the end of the object; legacy OLE documents by
//! their compound-file directory. What the package holds decides what it
//! is: the first entry's name, which `infer` looks at, proves nothing.

use super::{
    Checked, Found, Missing, Outcome, Refusal, Rules, Window, forbidden, le16, le32, le64,
};

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
}

/// The central directory's entries, read from the end-of-central-directory
/// record (and its ZIP64 twin) in the object's tail.
fn central_directory(w: &Window) -> Result<Result<Vec<Entry>, String>, Missing> {
    const EOCD: &[u8] = b"PK\x05\x06";
    // The record is 22 bytes plus a comment of at most 65,535.
    let tail = w.tail(22 + 65_535)?;
    let tail_start = w.size() - tail.len() as u64;
    let Some(at) = (0..tail.len().saturating_sub(21)).rev().find(|&at| {
        tail[at..].starts_with(EOCD) && at + 22 + le16(tail, at + 20) as usize == tail.len()
    }) else {
        return Ok(Err(
            "no end-of-central-directory record closes the file".into()
        ));
    };
    let eocd = &tail[at..];
    if le16(eocd, 4) != 0 || le16(eocd, 6) != 0 {
        return Ok(Err("multi-part archives are not accepted".into()));
    }
    let (mut count, mut cd_size, mut cd_offset) = (
        u64::from(le16(eocd, 10)),
        u64::from(le32(eocd, 12)),
        u64::from(le32(eocd, 16)),
    );
    let mut cd_end = tail_start + at as u64;
    if count == 0xFFFF || cd_size == 0xFFFF_FFFF || cd_offset == 0xFFFF_FFFF {
        let Some(locator) = at
            .checked_sub(20)
            .map(|l| &tail[l..l + 20])
            .filter(|l| l.starts_with(b"PK\x06\x07"))
        else {
            return Ok(Err("the ZIP64 end-of-directory locator is missing".into()));
        };
        let record_offset = le64(locator, 8);
        let record = w.get(record_offset, 56)?;
        if !record.starts_with(b"PK\x06\x06") {
            return Ok(Err("the ZIP64 end-of-directory record is missing".into()));
        }
        (count, cd_size, cd_offset) = (le64(record, 32), le64(record, 40), le64(record, 48));
        cd_end = record_offset;
    }
    if cd_offset.checked_add(cd_size) != Some(cd_end) {
        return Ok(Err(format!(
            "the central directory is said to span bytes {cd_offset}..+{cd_size} but ends at {cd_end}"
        )));
    }
    let directory = w.get(cd_offset, cd_size)?;
    let mut entries = Vec::new();
    let mut pos = 0usize;
    while pos < directory.len() {
        let Some(header) = directory
            .get(pos..pos + 46)
            .filter(|h| h.starts_with(b"PK\x01\x02"))
        else {
            return Ok(Err(format!(
                "the central directory's entry at byte {} does not parse",
                cd_offset + pos as u64
            )));
        };
        let (name_len, extra_len, comment_len) = (
            le16(header, 28) as usize,
            le16(header, 30) as usize,
            le16(header, 32) as usize,
        );
        let Some(name) = directory.get(pos + 46..pos + 46 + name_len) else {
            return Ok(Err("an entry's name runs past the central directory".into()));
        };
        let mut local_offset = u64::from(le32(header, 42));
        if local_offset == 0xFFFF_FFFF {
            // The ZIP64 extra field holds the 64-bit offset (after the sizes it replaces).
            let extra = directory
                .get(pos + 46 + name_len..pos + 46 + name_len + extra_len)
                .unwrap_or_default();
            local_offset = zip64_offset(extra, header).unwrap_or(u64::MAX);
        }
        if local_offset >= cd_offset {
            return Ok(Err("an entry's data lies outside the archive".into()));
        }
        entries.push(Entry {
            name: String::from_utf8_lossy(name).into_owned(),
            local_offset,
        });
        pos += 46 + name_len + extra_len + comment_len;
    }
    if entries.len() as u64 != count {
        return Ok(Err(format!(
            "the directory lists {} entries, not the {count} its end record states",
            entries.len()
        )));
    }
    Ok(Ok(entries))
}

/// The local-header offset in a ZIP64 extended-information extra field.
fn zip64_offset(extra: &[u8], header: &[u8]) -> Option<u64> {
    let mut at = 0;
    while at + 4 <= extra.len() {
        let (id, len) = (le16(extra, at), le16(extra, at + 2) as usize);
        if id == 0x0001 {
            let field = extra.get(at + 4..at + 4 + len)?;
            let skip = [le32(header, 24), le32(header, 20)]
                .iter()
                .filter(|&&v| v == 0xFFFF_FFFF)
                .count()
                * 8;
            return field.get(skip..skip + 8).map(|b| le64(b, 0));
        }
        at += 4 + len;
    }
    None
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
    let has = |name: &str| entries.iter().any(|e| e.name == name);
    let mime = if has("[Content_Types].xml") {
        match () {
            _ if has("word/document.xml") => DOCX,
            _ if has("xl/workbook.xml") => XLSX,
            _ if has("ppt/presentation.xml") => PPTX,
            _ => {
                return Outcome::Checked(Err(Refusal::invalid(
                    "application/zip",
                    "an Office package needs word/document.xml, xl/workbook.xml or ppt/presentation.xml",
                )));
            }
        }
    } else if let Some(entry) = entries.iter().find(|e| e.name == "mimetype") {
        match odf_mimetype(w, entry) {
            Ok(Ok(mime)) => mime,
            Ok(Err(refusal)) => return Outcome::Checked(Err(refusal)),
            Err(missing) => return missing.into(),
        }
    } else if entries.iter().any(|e| {
        e.name.starts_with("word/") || e.name.starts_with("xl/") || e.name.starts_with("ppt/")
    }) {
        return Outcome::Checked(Err(Refusal::invalid(
            "application/zip",
            "the package has Office parts but no [Content_Types].xml",
        )));
    } else {
        return Outcome::Checked(Err(forbidden("application/zip")));
    };
    Outcome::Checked(package_contents(
        mime,
        entries.iter().map(|e| e.name.as_str()),
        rules,
    ))
}

/// Refuses unsafe paths, executables, scripts and (unless allowed) macros.
fn package_contents<'a>(
    mime: &str,
    names: impl Iterator<Item = &'a str>,
    rules: &Rules,
) -> Checked {
    for name in names {
        let lower = name.to_ascii_lowercase();
        if lower.starts_with('/') || lower.split(['/', '\\']).any(|part| part == "..") {
            return Err(Refusal::invalid(
                mime,
                format!("the entry {name:?} points outside the package"),
            ));
        }
        let extension = lower.rsplit_once('.').map(|(_, e)| e).unwrap_or_default();
        if EXECUTABLE_EXTENSIONS.contains(&extension) {
            return Err(Refusal::active(
                mime,
                format!("the package carries the executable or script {name:?}"),
            ));
        }
        let macros = lower.ends_with("vbaproject.bin")
            || lower.ends_with("vbadata.xml")
            || lower.starts_with("basic/")
            || lower.starts_with("scripts/");
        if macros && !rules.allow_macros {
            return Err(Refusal::active(
                mime,
                format!("the document holds macros ({name}); ALLOW_MACROS is off"),
            ));
        }
    }
    Ok(Found::new(mime))
}

/// The ODF `mimetype` entry's content, which must be stored (not
/// compressed) and name one of the ODF types Sluice accepts.
fn odf_mimetype(w: &Window, entry: &Entry) -> Result<Result<&'static str, Refusal>, Missing> {
    let header = w.get(entry.local_offset, 30)?;
    let bad = |why: &str| Ok(Err(Refusal::invalid("application/zip", why)));
    if !header.starts_with(b"PK\x03\x04") || le16(header, 8) != 0 {
        return bad("the ODF mimetype entry must be stored uncompressed");
    }
    let (size, name_len, extra_len) = (
        le32(header, 18) as u64,
        le16(header, 26) as u64,
        le16(header, 28) as u64,
    );
    let content = w.get(
        entry.local_offset + 30 + name_len + extra_len,
        size.min(100),
    )?;
    let text = String::from_utf8_lossy(content);
    match ODF.iter().find(|m| **m == text.trim()) {
        Some(mime) => Ok(Ok(mime)),
        None => {
            bad("the mimetype entry names no OpenDocument text, spreadsheet or presentation type")
        }
    }
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
                    Missing {
                        offset: from.min(missing.offset),
                        len: w.size() - from.min(missing.offset),
                    }
                    .into()
                }
                _ => Outcome::Checked(Err(Refusal::invalid(
                    OLE,
                    format!("the compound file does not parse: {e}"),
                ))),
            };
        }
    };
    let names: Vec<(String, bool)> = file
        .walk()
        .map(|e| (e.name().to_string(), e.is_storage()))
        .collect();
    let has_stream = |want: &str| names.iter().any(|(n, storage)| !storage && n == want);
    let mime = match () {
        _ if has_stream("EncryptedPackage") => {
            return Outcome::Checked(Err(Refusal::unverifiable(
                OLE,
                "encrypted Office documents cannot be checked",
            )));
        }
        _ if has_stream("WordDocument") => "application/msword",
        _ if has_stream("Workbook") || has_stream("Book") => "application/vnd.ms-excel",
        _ if has_stream("PowerPoint Document") => "application/vnd.ms-powerpoint",
        _ => return Outcome::Checked(Err(forbidden(OLE))),
    };
    for (name, storage) in &names {
        if *storage
            && ["VBA", "_VBA_PROJECT_CUR", "Macros", "_VBA_PROJECT"].contains(&name.as_str())
            && !rules.allow_macros
        {
            return Outcome::Checked(Err(Refusal::active(
                mime,
                format!("the document holds macros ({name}); ALLOW_MACROS is off"),
            )));
        }
        if name.ends_with("Ole10Native") {
            return Outcome::Checked(Err(Refusal::active(
                mime,
                "the document embeds a package (Ole10Native), which can carry any file",
            )));
        }
    }
    Outcome::Checked(Ok(Found::new(mime)))
}
