//! PDF, scanned as a stream in constant memory: the `%PDF-` header, a
//! trailer (`startxref`, `%%EOF`) at the end, and no active content. Every
//! name outside streams is read (with its `#xx` escapes decoded), and so is
//! every name inside compressed object streams, which are inflated on the
//! fly. Streams of other kinds (pages, images, fonts) hold no dictionaries
//! a reader acts on and are skipped.

use flate2::{Decompress, FlushDecompress, Status};

use super::{Checked, Found, Refusal};

const MIME: &str = "application/pdf";

/// Names that make a PDF run or carry something: scripts, launch actions,
/// embedded files, rich media, XFA forms and additional actions.
pub const ACTIVE_NAMES: &[&[u8]] = &[
    b"JavaScript",
    b"JS",
    b"Launch",
    b"EmbeddedFile",
    b"EmbeddedFiles",
    b"RichMedia",
    b"XFA",
    b"AA",
];

/// Inflating more than this many bytes per byte of PDF is taken for a
/// decompression bomb rather than scanned to the end.
const MAX_INFLATE_RATIO: u64 = 64;
const TRAILER_WINDOW: usize = 1024;
const ENDSTREAM: &[u8] = b"endstream";

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
    escape: Option<Vec<u8>>,
    /// The bare word being read (a keyword or a number).
    word: Vec<u8>,
    last_lt: bool,
    /// Names of the object being read, for what its stream holds.
    object: ObjectFacts,
    found: Option<Vec<u8>>,
}

/// What a stream's dictionary said, as far as the scan needs.
#[derive(Debug, Default, Clone, Copy)]
struct ObjectFacts {
    flate: bool,
    other_filter: bool,
    /// `/N` and `/First`, the keys of an object stream (with or without `/Type /ObjStm`).
    n: bool,
    first: bool,
    objstm: bool,
}

impl ObjectFacts {
    fn object_stream(&self) -> bool {
        self.objstm || (self.n && self.first)
    }
}

/// A word the lexer finished: what the scanner must act on.
#[derive(Debug, PartialEq, Eq)]
enum Event {
    None,
    /// The `stream` keyword: raw stream bytes follow its end of line.
    Stream,
}

impl Lexer {
    fn new() -> Self {
        Self {
            state: Lex::Normal,
            name: Vec::new(),
            escape: None,
            word: Vec::new(),
            last_lt: false,
            object: ObjectFacts::default(),
            found: None,
        }
    }

    fn is_delimiter(b: u8) -> bool {
        matches!(
            b,
            b'(' | b')' | b'<' | b'>' | b'[' | b']' | b'{' | b'}' | b'/' | b'%'
        )
    }

    fn is_space(b: u8) -> bool {
        matches!(b, b'\0' | b'\t' | b'\n' | b'\x0C' | b'\r' | b' ')
    }

    fn end_name(&mut self) {
        let name = std::mem::take(&mut self.name);
        self.escape = None;
        if self.found.is_none() && ACTIVE_NAMES.contains(&name.as_slice()) {
            self.found = Some(name.clone());
        }
        match name.as_slice() {
            b"FlateDecode" | b"Fl" => self.object.flate = true,
            b"ASCIIHexDecode" | b"AHx" | b"ASCII85Decode" | b"A85" | b"LZWDecode" | b"LZW"
            | b"RunLengthDecode" | b"RL" | b"Crypt" | b"DCTDecode" | b"DCT" | b"JPXDecode"
            | b"CCITTFaxDecode" | b"CCF" | b"JBIG2Decode" => self.object.other_filter = true,
            b"ObjStm" => self.object.objstm = true,
            b"N" => self.object.n = true,
            b"First" => self.object.first = true,
            _ => {}
        }
    }

    fn end_word(&mut self) -> Event {
        let event = match self.word.as_slice() {
            b"obj" => {
                self.object = ObjectFacts::default();
                Event::None
            }
            b"stream" => Event::Stream,
            _ => Event::None,
        };
        self.word.clear();
        event
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
                    (_, true) => Lex::Literal {
                        depth,
                        escaped: false,
                    },
                    (b'\\', false) => Lex::Literal {
                        depth,
                        escaped: true,
                    },
                    (b'(', false) => Lex::Literal {
                        depth: depth + 1,
                        escaped: false,
                    },
                    (b')', false) if depth == 0 => Lex::Normal,
                    (b')', false) => Lex::Literal {
                        depth: depth - 1,
                        escaped: false,
                    },
                    _ => Lex::Literal {
                        depth,
                        escaped: false,
                    },
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
                match &mut self.escape {
                    Some(digits) => {
                        digits.push(b);
                        if digits.len() == 2 {
                            let text = std::str::from_utf8(digits).unwrap_or("");
                            match u8::from_str_radix(text, 16) {
                                Ok(decoded) => self.name.push(decoded),
                                Err(_) => {
                                    self.name.extend_from_slice(&[b'#', digits[0], digits[1]])
                                }
                            }
                            self.escape = None;
                        }
                    }
                    None if b == b'#' => self.escape = Some(Vec::with_capacity(2)),
                    None => {
                        if self.name.len() < 127 {
                            self.name.push(b);
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
        if Self::is_space(b) || Self::is_delimiter(b) {
            let event = if self.word.is_empty() {
                Event::None
            } else {
                self.end_word()
            };
            match b {
                b'%' => self.state = Lex::Comment,
                b'/' => self.state = Lex::Name,
                b'(' => {
                    self.state = Lex::Literal {
                        depth: 0,
                        escaped: false,
                    }
                }
                b'<' if was_lt => {}
                b'<' => self.last_lt = true,
                _ => {}
            }
            return event;
        }
        if was_lt {
            // `<` then a non-`<`: a hex string, now in its first digit.
            self.state = Lex::Hex;
            return if b == b'>' {
                self.state = Lex::Normal;
                Event::None
            } else {
                Event::None
            };
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
    /// Skipping a stream's bytes up to `endstream`.
    Skip,
    /// Inflating an object stream, whose objects the inner lexer reads.
    Inflate(Box<Inflating>),
}

struct Inflating {
    inflater: Decompress,
    inner: Lexer,
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
        if self.is_decided() {
            return;
        }
        if self.head.len() < 8 {
            let take = (8 - self.head.len()).min(chunk.len());
            self.head.extend_from_slice(&chunk[..take]);
        }
        let mut at = 0;
        while at < chunk.len() && !self.is_decided() {
            at += match &mut self.mode {
                Mode::Syntax => {
                    let mut used = 0;
                    for &b in &chunk[at..] {
                        used += 1;
                        if self.lexer.byte(b) == Event::Stream {
                            self.mode = Mode::StreamStart;
                            break;
                        }
                    }
                    self.remember(&chunk[at..at + used]);
                    used
                }
                Mode::StreamStart => {
                    // `stream` is followed by CRLF or LF; tolerate a lone CR.
                    let b = chunk[at];
                    if b == b'\r' {
                        self.remember(&chunk[at..at + 1]);
                        1
                    } else {
                        let skip_eol = usize::from(b == b'\n');
                        let facts = self.lexer.object;
                        self.mode = if facts.object_stream() {
                            if facts.other_filter || !facts.flate {
                                self.refusal = Some(Refusal::unverifiable(
                                    MIME,
                                    "an object stream is encoded with filters Sluice does not decode",
                                ));
                                return;
                            }
                            Mode::Inflate(Box::new(Inflating {
                                inflater: Decompress::new(true),
                                inner: Lexer::new(),
                                done: false,
                            }))
                        } else {
                            Mode::Skip
                        };
                        self.recent.clear();
                        self.remember(&chunk[at..at + skip_eol]);
                        skip_eol
                    }
                }
                Mode::Skip => self.skip_stream(&chunk[at..]),
                Mode::Inflate(_) => self.inflate(&chunk[at..]),
            };
        }
        self.seen += chunk.len() as u64;
    }

    /// Keeps the last bytes seen, bounded.
    fn remember(&mut self, bytes: &[u8]) {
        if bytes.len() >= TRAILER_WINDOW {
            self.recent.clear();
            self.recent
                .extend_from_slice(&bytes[bytes.len() - TRAILER_WINDOW..]);
            return;
        }
        if self.recent.len() + bytes.len() > 2 * TRAILER_WINDOW {
            let drop = self.recent.len() + bytes.len() - TRAILER_WINDOW;
            self.recent.drain(..drop.min(self.recent.len()));
        }
        self.recent.extend_from_slice(bytes);
    }

    /// Looks for `endstream` in the stream's bytes (across chunk ends);
    /// answers how many bytes of `chunk` were used.
    fn skip_stream(&mut self, chunk: &[u8]) -> usize {
        // The end of the previous chunk may hold the keyword's first bytes.
        let carry = self.recent.len().min(ENDSTREAM.len() - 1);
        let mut joined = self.recent[self.recent.len() - carry..].to_vec();
        let probe = &chunk[..chunk.len().min(ENDSTREAM.len() - 1)];
        joined.extend_from_slice(probe);
        if let Some(i) = memchr::memmem::find(&joined, ENDSTREAM) {
            let used = i + ENDSTREAM.len() - carry;
            self.end_stream(&chunk[..used]);
            return used;
        }
        match memchr::memmem::find(chunk, ENDSTREAM) {
            Some(i) => {
                let used = i + ENDSTREAM.len();
                self.end_stream(&chunk[..used]);
                used
            }
            None => {
                self.remember(chunk);
                chunk.len()
            }
        }
    }

    fn end_stream(&mut self, last: &[u8]) {
        self.remember(last);
        self.mode = Mode::Syntax;
        self.lexer.word.clear();
        self.lexer.object = ObjectFacts::default();
    }

    /// Inflates an object stream's bytes and reads its objects' names.
    fn inflate(&mut self, chunk: &[u8]) -> usize {
        let Mode::Inflate(state) = &mut self.mode else {
            return 0;
        };
        if state.done {
            return self.skip_stream(chunk);
        }
        let mut out = [0u8; 16 * 1024];
        let mut used = 0;
        while used < chunk.len() {
            let before = (state.inflater.total_in(), state.inflater.total_out());
            let status = state
                .inflater
                .decompress(&chunk[used..], &mut out, FlushDecompress::None);
            let consumed = (state.inflater.total_in() - before.0) as usize;
            let produced = (state.inflater.total_out() - before.1) as usize;
            used += consumed;
            self.inflated += produced as u64;
            for &b in &out[..produced] {
                let _ = state.inner.byte(b);
            }
            if let Some(name) = state.inner.found.take() {
                self.lexer.found = Some(name);
                return used;
            }
            if self.inflated > MAX_INFLATE_RATIO * self.size.max(1024 * 1024) {
                self.refusal = Some(Refusal::unverifiable(
                    MIME,
                    format!(
                        "its object streams inflate to more than {MAX_INFLATE_RATIO}× the file's size"
                    ),
                ));
                return used;
            }
            match status {
                Ok(Status::StreamEnd) => {
                    state.done = true;
                    self.remember(&chunk[..used]);
                    return used;
                }
                Ok(_) if consumed == 0 && produced == 0 => break,
                Ok(_) => {}
                Err(_) => {
                    self.refusal = Some(Refusal::unverifiable(
                        MIME,
                        "a compressed object stream does not inflate (damaged or encrypted), so its objects cannot be checked",
                    ));
                    return used;
                }
            }
        }
        self.remember(&chunk[..used]);
        used.max(1).min(chunk.len())
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
            return Err(Refusal::invalid(
                MIME,
                format!("the scan saw {} of {} bytes", self.seen, self.size),
            ));
        }
        let end = &self.recent[self.recent.len().saturating_sub(TRAILER_WINDOW)..];
        let eof = memchr::memmem::rfind(end, b"%%EOF");
        let startxref = memchr::memmem::rfind(end, b"startxref");
        match (startxref, eof) {
            (Some(x), Some(e)) if x < e => Ok(Found::new(MIME)),
            _ => Err(Refusal::invalid(
                MIME,
                "the PDF has no trailer (startxref and %%EOF) in its last 1024 bytes",
            )),
        }
    }
}
