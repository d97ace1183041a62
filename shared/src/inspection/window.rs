//! The ranges of an object read so far, and the plan for the next read.

use std::borrow::Cow;
use std::cell::Cell;
use std::io::{self, Read, Seek, SeekFrom};

use super::{HEAD_BYTES, MAX_READ_BYTES, MAX_READS, Refusal, Step, TAIL_BYTES};

/// A range a validator needs that the window does not hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Missing {
    pub offset: u64,
    pub len: u64,
}

/// The ranges read from an object of `size` bytes, the first at offset 0.
#[derive(Debug, Clone)]
pub struct Window<'a> {
    size: u64,
    spans: Vec<(u64, Cow<'a, [u8]>)>,
}

impl<'a> Window<'a> {
    /// The head of an object: its first bytes, read from offset 0.
    pub fn new(size: u64, head: Vec<u8>) -> Self {
        Self { size, spans: vec![(0, Cow::Owned(head))] }
    }

    /// A whole object held in memory: every range is there.
    pub fn whole(bytes: &'a [u8]) -> Self {
        Self { size: bytes.len() as u64, spans: vec![(0, Cow::Borrowed(bytes))] }
    }

    /// Adds a range read at `offset`.
    pub fn add(&mut self, offset: u64, bytes: Vec<u8>) {
        self.spans.push((offset, Cow::Owned(bytes)));
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// How many ranges were read, and how many bytes in all.
    pub fn reads(&self) -> (usize, u64) {
        (self.spans.len(), self.spans.iter().map(|(_, b)| b.len() as u64).sum())
    }

    /// The bytes read from offset 0.
    pub fn head(&self) -> &[u8] {
        &self.spans[0].1
    }

    /// `len` bytes at `offset`, if one read holds all of them. A range that
    /// runs past the object's end is never there.
    pub fn get(&self, offset: u64, len: u64) -> Result<&[u8], Missing> {
        let end = offset.checked_add(len).filter(|&end| end <= self.size);
        if let Some(end) = end {
            for (start, bytes) in &self.spans {
                let span_end = start + bytes.len() as u64;
                if *start <= offset && end <= span_end {
                    return Ok(&bytes[(offset - start) as usize..(end - start) as usize]);
                }
            }
        }
        Err(Missing { offset, len })
    }

    /// Up to `len` bytes from `offset` on, as many as one read holds
    /// contiguously (never past the object's end); empty if none.
    pub fn available(&self, offset: u64) -> &[u8] {
        for (start, bytes) in &self.spans {
            let span_end = start + bytes.len() as u64;
            if *start <= offset && offset < span_end {
                return &bytes[(offset - start) as usize..];
            }
        }
        &[]
    }

    /// The last `len` bytes of the object (all of it when shorter).
    pub fn tail(&self, len: u64) -> Result<&[u8], Missing> {
        let len = len.min(self.size);
        self.get(self.size - len, len)
    }

    /// Whether the whole object is in the window.
    pub fn is_whole(&self) -> bool {
        self.get(0, self.size).is_ok()
    }

    /// The read that brings in `missing`, widened to a useful size, or a
    /// refusal when it would go past the bounds on reads.
    pub(super) fn plan_read(&self, missing: Missing, mime: &str) -> Step {
        let (reads, read_bytes) = self.reads();
        let end = missing.offset.saturating_add(missing.len);
        if end > self.size {
            return Step::Done(Err(Refusal::invalid(
                mime,
                format!("the structure points at bytes {}..{end}, past the file's end at {}", missing.offset, self.size),
            )));
        }
        // Near the end: the whole tail, which is where directories and
        // trailers live. Elsewhere a fair share of what is left of the
        // budget (at least a head's worth), so a chain of segments (a JPEG's
        // APP segments before its frame header) can be followed in one read.
        let (offset, len) = if end + TAIL_BYTES >= self.size {
            let start = missing.offset.min(self.size.saturating_sub(TAIL_BYTES));
            (start, self.size - start)
        } else {
            let reads_left = MAX_READS.saturating_sub(reads).max(1) as u64;
            let share = MAX_READ_BYTES.saturating_sub(read_bytes) / reads_left;
            let len = missing.len.max(HEAD_BYTES).max(share);
            (missing.offset, len.min(self.size - missing.offset))
        };
        if reads >= MAX_READS || read_bytes + len > MAX_READ_BYTES {
            return Step::Done(Err(Refusal::unverifiable(
                mime,
                format!(
                    "checking it needs bytes {}..{end} of {}, more than the {MAX_READS} reads and {} KiB Sluice reads of a file",
                    missing.offset,
                    self.size,
                    MAX_READ_BYTES / 1024
                ),
            )));
        }
        Step::Read { offset, len }
    }

    /// A `Read + Seek` view for parsers that want one (cfb): reads outside
    /// the window fail, and the first range they wanted is kept.
    pub(super) fn reader(&self) -> WindowReader<'_, 'a> {
        WindowReader { window: self, pos: 0, missing: Cell::new(None) }
    }
}

pub(super) struct WindowReader<'w, 'a> {
    window: &'w Window<'a>,
    pos: u64,
    missing: Cell<Option<Missing>>,
}

impl WindowReader<'_, '_> {
    /// The first range a read wanted that the window did not hold.
    pub(super) fn missing(&self) -> Option<Missing> {
        self.missing.get()
    }
}

impl Read for WindowReader<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() || self.pos >= self.window.size {
            return Ok(0);
        }
        let there = self.window.available(self.pos);
        if there.is_empty() {
            let len = (buf.len() as u64).min(self.window.size - self.pos);
            if self.missing.get().is_none() {
                self.missing.set(Some(Missing { offset: self.pos, len }));
            }
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "not in the bytes read"));
        }
        let n = there.len().min(buf.len());
        buf[..n].copy_from_slice(&there[..n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for WindowReader<'_, '_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let pos = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.window.size.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = pos.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        Ok(self.pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_found_only_inside_one_read() {
        let mut w = Window::new(1000, vec![1; 100]);
        w.add(900, vec![2; 100]);
        assert_eq!(w.get(10, 5).unwrap(), &[1; 5]);
        assert_eq!(w.get(950, 50).unwrap(), &[2; 50]);
        assert_eq!(w.get(95, 10), Err(Missing { offset: 95, len: 10 }));
        assert!(w.get(990, 20).is_err(), "past the end");
        assert_eq!(w.tail(10).unwrap(), &[2; 10]);
        assert_eq!(w.available(950).len(), 50);
        assert!(w.available(500).is_empty());
        assert_eq!(w.reads(), (2, 200));
    }

    #[test]
    fn reads_are_planned_within_the_bounds() {
        let w = Window::new(10 * 1024 * 1024, vec![0; HEAD_BYTES as usize]);
        // Near the end: the whole tail.
        let size = w.size();
        assert_eq!(w.plan_read(Missing { offset: size - 22, len: 22 }, "x"), Step::Read { offset: size - TAIL_BYTES, len: TAIL_BYTES });
        // In the middle: a fair share of the budget left (two reads to go).
        let share = (MAX_READ_BYTES - HEAD_BYTES) / 2;
        let middle = Missing { offset: 4096 * 1024, len: 8 };
        assert_eq!(w.plan_read(middle, "x"), Step::Read { offset: 4096 * 1024, len: share });
        // More than the byte budget, or past the end, is refused.
        let huge = w.plan_read(Missing { offset: 1024, len: 2 * MAX_READ_BYTES }, "x");
        assert!(matches!(huge, Step::Done(Err(r)) if r.code == super::super::RefusalCode::UnverifiableContent));
        let past = w.plan_read(Missing { offset: size, len: 8 }, "x");
        assert!(matches!(past, Step::Done(Err(r)) if r.code == super::super::RefusalCode::InvalidContent));
    }

    #[test]
    fn the_reader_reports_the_first_range_it_lacked() {
        let w = Window::new(1000, vec![7; 100]);
        let mut r = w.reader();
        let mut buf = [0; 64];
        assert_eq!(r.read(&mut buf).unwrap(), 64);
        r.seek(SeekFrom::Start(500)).unwrap();
        assert!(r.read(&mut buf).is_err());
        assert_eq!(r.missing(), Some(Missing { offset: 500, len: 64 }));
    }
}
