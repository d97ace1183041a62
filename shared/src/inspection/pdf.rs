//! PDF, scanned as a stream in constant memory: the `%PDF-` header, a
//! trailer (`startxref`, `%%EOF`) at the end, and no active content. Every
//! name outside streams is read (with its `#xx` escapes decoded, outside
//! strings and comments), and so is every name inside object streams, which
//! are inflated on the fly. A stream is skipped by its direct `/Length` when
//! it has one (by its `endstream` otherwise), so bytes inside it cannot
//! pose as syntax. Streams of other kinds (pages, images, fonts) hold no
//! dictionaries a reader acts on and are skipped.

use flate2::{Decompress, FlushDecompress, Status};

use super::{Checked, Found, Refusal};

const MIME: &str = "application/pdf";

/// Names that make a PDF run or carry something: scripts, launch actions,
/// embedded files and attachments, rich media, XFA forms and additional
/// actions.
pub const ACTIVE_NAMES: &[&[u8]] =
    &[b"JavaScript", b"JS", b"Launch", b"EmbeddedFile", b"EmbeddedFiles", b"EF", b"FileAttachment", b"RichMedia", b"XFA", b"AA"];

/// What inflating object streams may produce in all before the file is
/// taken for a decompression bomb: 16 times its size, at least 64 MiB and
/// at most 1 GiB.
fn inflate_limit(size: u64) -> u64 {
    size.saturating_mul(16).clamp(64 << 20, 1 << 30)
}

const TRAILER_WINDOW: usize = 1024;
const ENDSTREAM: &[u8] = b"endstream";
/// PDF names are at most 127 bytes; longer ones are cut (and match nothing).
const MAX_NAME: usize = 127;

/// Each byte's class in PDF syntax: regular, white space or delimiter.
const REGULAR: u8 = 0;
const SPACE: u8 = 1;
const DELIMITER: u8 = 2;
const CLASS: [u8; 256] = {
    let mut class = [REGULAR; 256];
    let spaces = b"\0\t\n\x0C\r ";
    let mut i = 0;
    while i < spaces.len() {
        class[spaces[i] as usize] = SPACE;
        i += 1;
    }
    let delimiters = b"()<>[]{}/%";
    let mut i = 0;
    while i < delimiters.len() {
        class[delimiters[i] as usize] = DELIMITER;
        i += 1;
    }
    class
};

/// The lexer's state between bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lex {
    Normal,
    Comment,
    Name,
    /// A literal string, with its nesting depth and whether `\` came last.
    Literal {
        depth: u32,
        escaped: bool,
    },
    Hex,
}

/// Reads PDF syntax a byte at a time and notes the names it meets.
#[derive(Debug)]
struct Lexer {
    state: Lex,
    name: Vec<u8>,
    /// A `#` escape inside a name: its hex digits so far.
    escape: Option<(u8, u8)>,
    /// The bare word being read (a keyword or a number).
    word: Vec<u8>,
    last_lt: bool,
    last_gt: bool,
    /// The last token closed a dictionary: only then does `stream` start one.
    after_dict: bool,
    /// Names of the object being read, for what its stream holds.
    object: ObjectFacts,
    found: Option<Vec<u8>>,
}

/// What a stream's dictionary said, as far as the scan needs.
#[derive(Debug, Clone, Copy)]
struct ObjectFacts {
    flate: u8,
    other_filter: bool,
    decode_parms: bool,
    /// `/N` and `/First`, the keys of an object stream (with or without `/Type /ObjStm`).
    n: bool,
    first: bool,
    objstm: bool,
    /// The words after `/Length`: `12` is direct, `12 0 R` is not.
    length: Option<u64>,
    length_words: u8,
    length_indirect: bool,
}

impl ObjectFacts {
    /// Nothing said yet, and no `/Length` being read.
    fn fresh() -> Self {
        Self {
            flate: 0,
            other_filter: false,
            decode_parms: false,
            n: false,
            first: false,
            objstm: false,
            length: None,
            length_words: 3,
            length_indirect: false,
        }
    }

    fn object_stream(&self) -> bool {
        self.objstm || (self.n && self.first)
    }

    fn direct_length(&self) -> Option<u64> {
        self.length.filter(|_| !self.length_indirect)
    }
}

/// A word the lexer finished: what the scanner must act on.
#[derive(Debug, PartialEq, Eq)]
enum Event {
    None,
    /// The `stream` keyword after a dictionary: raw bytes follow its end of line.
    Stream,
    /// The `endstream` keyword.
    EndStream,
}

impl Lexer {
    fn new() -> Self {
        Self {
            state: Lex::Normal,
            name: Vec::new(),
            escape: None,
            word: Vec::new(),
            last_lt: false,
            last_gt: false,
            after_dict: false,
            object: ObjectFacts::fresh(),
            found: None,
        }
    }

    fn is_delimiter(b: u8) -> bool {
        CLASS[b as usize] == DELIMITER
    }

    fn is_space(b: u8) -> bool {
        CLASS[b as usize] == SPACE
    }

    fn push_name(&mut self, b: u8) {
        if self.name.len() < MAX_NAME + 1 {
            self.name.push(b);
        }
    }

    fn end_name(&mut self) {
        self.escape = None;
        self.after_dict = false;
        self.object.length_words = 3; // a name ends what /Length said
        // Read in place and cleared after: a name costs no allocation.
        let name = self.name.as_slice();
        if self.found.is_none() && ACTIVE_NAMES.contains(&name) {
            self.found = Some(name.to_vec());
        }
        match name {
            b"FlateDecode" | b"Fl" => self.object.flate = self.object.flate.saturating_add(1),
            b"ASCIIHexDecode" | b"AHx" | b"ASCII85Decode" | b"A85" | b"LZWDecode" | b"LZW" | b"RunLengthDecode" | b"RL" | b"Crypt"
            | b"DCTDecode" | b"DCT" | b"JPXDecode" | b"CCITTFaxDecode" | b"CCF" | b"JBIG2Decode" => self.object.other_filter = true,
            b"DecodeParms" | b"DP" => self.object.decode_parms = true,
            b"ObjStm" => self.object.objstm = true,
            b"N" => self.object.n = true,
            b"First" => self.object.first = true,
            b"Length" => {
                self.object.length = None;
                self.object.length_words = 0;
                self.object.length_indirect = false;
            }
            _ => {}
        }
        self.name.clear();
    }

    fn end_word(&mut self) -> Event {
        let facts = &mut self.object;
        if facts.length_words < 3 {
            facts.length_words += 1;
            match facts.length_words {
                1 => facts.length = std::str::from_utf8(&self.word).ok().and_then(|w| w.parse().ok()),
                3 => facts.length_indirect = self.word == b"R",
                _ => {}
            }
        }
        let event = match self.word.as_slice() {
            b"obj" => {
                self.object = ObjectFacts::fresh();
                Event::None
            }
            b"stream" if self.after_dict => Event::Stream,
            b"endstream" => Event::EndStream,
            _ => Event::None,
        };
        self.after_dict = false;
        self.word.clear();
        event
    }

    /// Reads `bytes` until their end or a keyword the caller must act on;
    /// answers how many were used and the keyword's event. Runs that change
    /// nothing but the position (inside comments, strings, words, names,
    /// whitespace) are skipped a slice at a time; every byte that changes
    /// the state goes through `byte`, which is the grammar.
    fn scan(&mut self, bytes: &[u8]) -> (usize, Event) {
        let mut i = 0;
        while i < bytes.len() {
            let rest = &bytes[i..];
            let skip = match self.state {
                Lex::Comment => memchr::memchr2(b'\r', b'\n', rest),
                Lex::Hex => memchr::memchr(b'>', rest),
                Lex::Literal { escaped: false, .. } => memchr::memchr3(b'(', b')', b'\\', rest),
                Lex::Name if self.escape.is_none() => {
                    let run = rest.iter().position(|&b| CLASS[b as usize] != REGULAR || b == b'#').unwrap_or(rest.len());
                    let room = (MAX_NAME + 1).saturating_sub(self.name.len()).min(run);
                    self.name.extend_from_slice(&rest[..room]);
                    Some(run)
                }
                Lex::Normal if !self.last_lt && !self.last_gt => {
                    let class = CLASS[rest[0] as usize];
                    if class == REGULAR {
                        let run = rest.iter().position(|&b| CLASS[b as usize] != REGULAR).unwrap_or(rest.len());
                        let room = 16usize.saturating_sub(self.word.len()).min(run);
                        self.word.extend_from_slice(&rest[..room]);
                        Some(run)
                    } else if class == SPACE && self.word.is_empty() {
                        Some(rest.iter().position(|&b| CLASS[b as usize] != SPACE).unwrap_or(rest.len()))
                    } else {
                        Some(0)
                    }
                }
                _ => Some(0),
            };
            match skip {
                Some(n) => i += n,
                None => return (bytes.len(), Event::None),
            }
            if i == bytes.len() {
                break;
            }
            let event = self.byte(bytes[i]);
            i += 1;
            if event != Event::None {
                return (i, event);
            }
        }
        (bytes.len(), Event::None)
    }

    /// Takes one byte; answers what a finished word asks for.
    fn byte(&mut self, b: u8) -> Event {
        match self.state {
            Lex::Comment => {
                if b == b'\r' || b == b'\n' {
                    self.state = Lex::Normal;
                }
                Event::None
            }
            Lex::Literal { depth, escaped } => {
                self.state = match (b, escaped) {
                    (_, true) => Lex::Literal { depth, escaped: false },
                    (b'\\', false) => Lex::Literal { depth, escaped: true },
                    (b'(', false) => Lex::Literal { depth: depth.saturating_add(1), escaped: false },
                    (b')', false) if depth == 0 => Lex::Normal,
                    (b')', false) => Lex::Literal { depth: depth - 1, escaped: false },
                    _ => Lex::Literal { depth, escaped: false },
                };
                Event::None
            }
            Lex::Hex => {
                if b == b'>' {
                    self.state = Lex::Normal;
                }
                Event::None
            }
            Lex::Name => {
                if Self::is_space(b) || Self::is_delimiter(b) {
                    self.end_name();
                    self.state = Lex::Normal;
                    return self.normal(b);
                }
                match self.escape.take() {
                    None if b == b'#' => self.escape = Some((0, 0)),
                    None => self.push_name(b),
                    Some((0, _)) => self.escape = Some((1, b)),
                    Some((_, high)) => {
                        let digits = [high, b];
                        match std::str::from_utf8(&digits).ok().and_then(|t| u8::from_str_radix(t, 16).ok()) {
                            Some(decoded) => self.push_name(decoded),
                            None => digits.iter().for_each(|&d| self.push_name(d)),
                        }
                    }
                }
                Event::None
            }
            Lex::Normal => self.normal(b),
        }
    }

    fn normal(&mut self, b: u8) -> Event {
        let was_lt = std::mem::take(&mut self.last_lt);
        let was_gt = std::mem::take(&mut self.last_gt);
        if Self::is_space(b) || Self::is_delimiter(b) {
            let event = if self.word.is_empty() { Event::None } else { self.end_word() };
            match b {
                b'%' => self.state = Lex::Comment,
                b'/' => self.state = Lex::Name,
                b'(' => self.state = Lex::Literal { depth: 0, escaped: false },
                b'<' if was_lt => {}
                b'<' => self.last_lt = true,
                b'>' if was_gt => self.after_dict = true,
                b'>' => self.last_gt = true,
                _ => {}
            }
            if !Self::is_space(b) && b != b'>' {
                self.after_dict = false;
                self.object.length_words = 3;
            }
            return event;
        }
        if was_lt {
            // `<` then a non-`<`: a hex string, now past its first digit.
            self.state = Lex::Hex;
            return Event::None;
        }
        if self.word.len() < 16 {
            self.word.push(b);
        }
        Event::None
    }
}

/// Where the scanner is in the file.
enum Mode {
    Syntax,
    /// Right after `stream`: its end of line comes next.
    StreamStart,
    /// Skipping a stream's bytes: `left` of them when its length is direct,
    /// up to `endstream` otherwise.
    Skip {
        left: Option<u64>,
    },
    /// Reading an object stream's objects (inflating it first if it is
    /// compressed) with a lexer of its own.
    Objects(Box<Objects>),
}

struct Objects {
    inflater: Option<Decompress>,
    inner: Lexer,
    left: Option<u64>,
    /// The compressed data has ended; what is left is skipped.
    done: bool,
}

/// Scans a PDF fed to it in chunks of any size, in constant memory.
pub struct PdfScanner {
    size: u64,
    seen: u64,
    head: Vec<u8>,
    lexer: Lexer,
    mode: Mode,
    /// The last bytes seen, for `endstream` across chunks and the trailer.
    recent: Vec<u8>,
    inflated: u64,
    refusal: Option<Refusal>,
}

impl PdfScanner {
    pub fn new(size: u64) -> Self {
        Self {
            size,
            seen: 0,
            head: Vec::with_capacity(8),
            lexer: Lexer::new(),
            mode: Mode::Syntax,
            recent: Vec::with_capacity(2 * TRAILER_WINDOW),
            inflated: 0,
            refusal: None,
        }
    }

    /// Whether the scan has already refused the file (the rest need not be read).
    pub fn is_decided(&self) -> bool {
        self.refusal.is_some() || self.lexer.found.is_some()
    }

    pub fn feed(&mut self, chunk: &[u8]) {
        self.seen += chunk.len() as u64;
        if self.is_decided() {
            return;
        }
        if self.head.len() < 8 {
            let take = (8 - self.head.len()).min(chunk.len());
            self.head.extend_from_slice(&chunk[..take]);
        }
        let (mut at, mut stalls) = (0, 0);
        while at < chunk.len() && !self.is_decided() {
            let rest = &chunk[at..];
            let used = match self.mode {
                Mode::Syntax => self.syntax(rest),
                Mode::StreamStart => self.stream_start(rest),
                Mode::Skip { .. } => self.skip(rest),
                Mode::Objects(_) => self.objects(rest),
            };
            // A step that uses nothing changes the mode; never more than a
            // few in a row, but a byte is given up rather than loop.
            stalls = if used == 0 { stalls + 1 } else { 0 };
            at += if stalls > 4 { 1 } else { used.min(rest.len()) };
        }
    }

    fn syntax(&mut self, bytes: &[u8]) -> usize {
        let (used, event) = self.lexer.scan(bytes);
        if event == Event::Stream {
            self.mode = Mode::StreamStart;
        }
        self.remember(&bytes[..used]);
        used
    }

    /// `stream` is followed by CRLF or LF (a lone CR is tolerated); then
    /// the stream's bytes, read as its dictionary says.
    fn stream_start(&mut self, bytes: &[u8]) -> usize {
        if bytes[0] == b'\r' {
            self.remember(&bytes[..1]);
            return 1;
        }
        let eol = usize::from(bytes[0] == b'\n');
        let facts = self.lexer.object;
        let left = facts.direct_length();
        self.mode = if facts.object_stream() {
            if facts.other_filter || facts.flate > 1 || facts.decode_parms {
                self.refusal =
                    Some(Refusal::unverifiable(MIME, "an object stream is encoded with filters or predictors Sluice does not decode"));
                return bytes.len();
            }
            let inflater = (facts.flate == 1).then(|| Decompress::new(true));
            Mode::Objects(Box::new(Objects { inflater, inner: Lexer::new(), left, done: false }))
        } else {
            Mode::Skip { left }
        };
        self.recent.clear();
        self.remember(&bytes[..eol]);
        eol
    }

    /// Skips a stream's bytes; answers how many of `bytes` were used.
    fn skip(&mut self, bytes: &[u8]) -> usize {
        let Mode::Skip { left } = &mut self.mode else {
            return 0;
        };
        match left {
            Some(n) => {
                let used = (*n).min(bytes.len() as u64) as usize;
                *n -= used as u64;
                if *n == 0 {
                    self.end_stream();
                }
                self.remember(&bytes[..used]);
                used
            }
            None => self.find_endstream(bytes),
        }
    }

    /// Looks for `endstream` (across chunk ends); answers how many bytes of
    /// `bytes` were used.
    fn find_endstream(&mut self, bytes: &[u8]) -> usize {
        // The end of the previous chunk may hold the keyword's first bytes.
        let carry = self.recent.len().min(ENDSTREAM.len() - 1);
        let mut joined = self.recent[self.recent.len() - carry..].to_vec();
        joined.extend_from_slice(&bytes[..bytes.len().min(ENDSTREAM.len() - 1)]);
        let found = memchr::memmem::find(&joined, ENDSTREAM)
            .map(|i| i + ENDSTREAM.len() - carry)
            .or_else(|| memchr::memmem::find(bytes, ENDSTREAM).map(|i| i + ENDSTREAM.len()));
        let used = found.unwrap_or(bytes.len());
        self.remember(&bytes[..used]);
        if found.is_some() {
            self.end_stream();
        }
        used
    }

    fn end_stream(&mut self) {
        self.mode = Mode::Syntax;
        self.lexer.word.clear();
        self.lexer.object = ObjectFacts::fresh();
    }

    /// Reads an object stream's objects, inflating them first if need be.
    fn objects(&mut self, bytes: &[u8]) -> usize {
        let Mode::Objects(state) = &mut self.mode else {
            return 0;
        };
        let take = state.left.map_or(bytes.len(), |n| n.min(bytes.len() as u64) as usize);
        let input = &bytes[..take];
        let mut used = 0;
        let mut ended = false;
        if state.done {
            used = take;
        } else if let Some(inflater) = &mut state.inflater {
            let mut out = [0u8; 16 * 1024];
            while used < input.len() {
                let before = (inflater.total_in(), inflater.total_out());
                let status = inflater.decompress(&input[used..], &mut out, FlushDecompress::None);
                let consumed = (inflater.total_in() - before.0) as usize;
                let produced = (inflater.total_out() - before.1) as usize;
                used += consumed;
                self.inflated += produced as u64;
                let mut read = 0;
                while read < produced {
                    read += state.inner.scan(&out[read..produced]).0;
                }
                // Decided as soon as seen, whatever follows in this chunk.
                if let Some(name) = state.inner.found.take() {
                    self.lexer.found = Some(name);
                    return bytes.len();
                }
                if self.inflated > inflate_limit(self.size) {
                    self.refusal = Some(Refusal::unverifiable(
                        MIME,
                        format!("its object streams inflate to more than {} bytes", inflate_limit(self.size)),
                    ));
                    return bytes.len();
                }
                match status {
                    Ok(Status::StreamEnd) => {
                        state.done = true;
                        // Without a direct length, the rest is found by its endstream.
                        ended = state.left.is_none();
                        break;
                    }
                    Ok(_) if consumed == 0 && produced == 0 => break,
                    Ok(_) => {}
                    Err(_) => {
                        self.refusal = Some(Refusal::unverifiable(
                            MIME,
                            "an object stream does not inflate (damaged or encrypted), so its objects cannot be checked",
                        ));
                        return bytes.len();
                    }
                }
            }
            if state.left.is_some() {
                used = take;
            }
        } else {
            // Not compressed: its objects are read as they come.
            while used < input.len() {
                let (read, event) = state.inner.scan(&input[used..]);
                used += read;
                if event == Event::EndStream && state.left.is_none() {
                    ended = true;
                    break;
                }
            }
        }
        if let Some(name) = state.inner.found.take() {
            self.lexer.found = Some(name);
        }
        if let Some(n) = &mut state.left {
            *n -= used as u64;
            if *n == 0 {
                if !state.done && state.inflater.is_some() {
                    self.refusal = Some(Refusal::unverifiable(MIME, "an object stream's compressed data ends before its /Length"));
                }
                ended = true;
            }
        }
        self.remember(&bytes[..used]);
        if ended {
            if state_needs_search(&self.mode) {
                self.mode = Mode::Skip { left: None };
            } else {
                self.end_stream();
            }
        }
        used
    }

    /// Keeps the last bytes seen, bounded.
    fn remember(&mut self, bytes: &[u8]) {
        if bytes.len() >= TRAILER_WINDOW {
            self.recent.clear();
            self.recent.extend_from_slice(&bytes[bytes.len() - TRAILER_WINDOW..]);
            return;
        }
        if self.recent.len() + bytes.len() > 2 * TRAILER_WINDOW {
            let drop = self.recent.len() + bytes.len() - TRAILER_WINDOW;
            self.recent.drain(..drop.min(self.recent.len()));
        }
        self.recent.extend_from_slice(bytes);
    }

    /// The verdict once every byte was fed (or the scan decided early).
    pub fn finish(self) -> Checked {
        if let Some(refusal) = self.refusal {
            return Err(refusal);
        }
        if let Some(name) = self.lexer.found {
            return Err(Refusal::active(
                MIME,
                format!(
                    "the PDF holds /{} (scripts, launch actions, embedded files and rich media are refused)",
                    String::from_utf8_lossy(&name)
                ),
            ));
        }
        if !self.head.starts_with(b"%PDF-") {
            return Err(Refusal::invalid(MIME, "a PDF must start with %PDF-"));
        }
        if self.seen != self.size {
            return Err(Refusal::invalid(MIME, format!("the scan saw {} of {} bytes", self.seen, self.size)));
        }
        let end = &self.recent[self.recent.len().saturating_sub(TRAILER_WINDOW)..];
        let eof = memchr::memmem::rfind(end, b"%%EOF");
        let startxref = memchr::memmem::rfind(end, b"startxref");
        match (startxref, eof) {
            (Some(x), Some(e)) if x < e => Ok(Found::new(MIME)),
            _ => Err(Refusal::invalid(MIME, "the PDF has no trailer (startxref and %%EOF) in its last 1024 bytes")),
        }
    }
}

/// An inflated object stream with no direct length: what follows its
/// compressed data is skipped up to `endstream`. An uncompressed one has
/// already met its `endstream`.
fn state_needs_search(mode: &Mode) -> bool {
    matches!(mode, Mode::Objects(state) if state.inflater.is_some() && state.left.is_none())
}
