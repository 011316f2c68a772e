//! Deterministic `.tgz` archives that reuse compressed files.
//!
//! A large mesh packages thousands of sub-charts whose templates are the same text; compressing
//! that text again for each archive was most of the time spent packaging. A deflate stream may
//! be split into independently compressed pieces that each start and end on a byte boundary
//! (what `pigz` does to compress in parallel), so a file every archive shares is compressed
//! once, as a [`Segment`], and each archive copies its bytes. What differs between archives
//! (tar headers, small files, padding) is coded on the spot with deflate's fixed Huffman
//! codes: literals, and runs of one byte (the zeros tar pads with) as back-references. The
//! result is one ordinary gzip member that every gzip reader takes.

use std::borrow::Cow;

/// Tar works in blocks of this many bytes: headers, and file data padded to a whole block.
const BLOCK: usize = 512;

/// Own data at least this long is compressed properly (in its own deflate segment); shorter
/// runs of data are cheaper to code with fixed codes than to set up a compressor for.
const COMPRESS_FROM: usize = 2048;

/// A file's data and tar padding, deflated once, for archives that share it.
#[derive(Debug)]
pub struct Segment {
    data: Vec<u8>,
    /// Raw deflate of `data` and its padding, ending byte-aligned (sync flush), not final.
    deflated: Vec<u8>,
}

impl Segment {
    pub fn new(data: Vec<u8>) -> Self {
        let deflated = deflate_padded(&data, flate2::Compression::best());
        Segment { data, deflated }
    }

    pub fn data(&self) -> &[u8] {
        &self.data
    }
}

/// One file of an archive.
pub enum Contents<'a> {
    Bytes(&'a [u8]),
    Shared(&'a Segment),
}

impl Contents<'_> {
    fn data(&self) -> &[u8] {
        match self {
            Contents::Bytes(bytes) => bytes,
            Contents::Shared(segment) => &segment.data,
        }
    }
}

/// The tar archive of `files` (path inside the archive, contents; in the order given), with
/// owner, mode and time fixed, gzip-compressed without a timestamp.
pub fn tar_gz<'a>(files: impl IntoIterator<Item = (String, Contents<'a>)>) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    // Where data deflated on its own sits in the tar: (start, end, its deflate).
    let mut deflated: Vec<(usize, usize, Cow<'_, [u8]>)> = Vec::new();
    for (path, contents) in files {
        let data = contents.data();
        match short_header(&path, data.len()) {
            Some(header) => {
                let out = tar.get_mut();
                out.extend_from_slice(&header);
                out.extend_from_slice(data);
                out.resize(out.len() + padded(data.len()) - data.len(), 0);
            }
            None => {
                // Writing into memory cannot fail; callers pass paths a tar can hold.
                let _ = tar.append_data(&mut regular_file(data.len()), path, data);
            }
        }
        let end = tar.get_ref().len();
        let start = end - padded(data.len());
        match contents {
            Contents::Shared(segment) => {
                deflated.push((start, end, Cow::Borrowed(&segment.deflated)));
            }
            Contents::Bytes(bytes) if bytes.len() >= COMPRESS_FROM => {
                let own = deflate_padded(bytes, flate2::Compression::default());
                deflated.push((start, end, Cow::Owned(own)));
            }
            Contents::Bytes(_) => {}
        }
    }
    let tar = tar.into_inner().unwrap_or_default();

    let mut crc = flate2::Crc::new();
    crc.update(&tar);
    // Header: deflate, no name or time, unknown system (as Go, and so Helm, writes it).
    let mut out = Bits::new(vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
    let mut at = 0;
    for (start, end, segment) in &deflated {
        if *start > at {
            out.fixed_block(&tar[at..*start], false);
        }
        out.align();
        out.bytes.extend_from_slice(segment);
        at = *end;
    }
    out.fixed_block(&tar[at..], true);
    let mut archive = out.bytes;
    archive.extend_from_slice(&crc.sum().to_le_bytes());
    archive.extend_from_slice(&(tar.len() as u32).to_le_bytes());
    archive
}

/// The header of a regular file as the tar crate writes it (GNU format, mode 0644, owner 0,
/// time 0), without its help (it formats each number through a string).
fn regular_file(size: usize) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_size(size as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    header.set_entry_type(tar::EntryType::Regular);
    header
}

/// [`regular_file`]'s header with `path` in it, built directly: `None` for a path the name
/// field cannot hold (the tar crate then adds a GNU long-name entry) or a size it cannot.
fn short_header(path: &str, size: usize) -> Option<[u8; BLOCK]> {
    const NAME: usize = 100;
    const SIZE: std::ops::Range<usize> = 124..136;
    const CHECKSUM: std::ops::Range<usize> = 148..156;
    static TEMPLATE: std::sync::LazyLock<[u8; BLOCK]> = std::sync::LazyLock::new(|| {
        let mut bytes = [0; BLOCK];
        bytes.copy_from_slice(regular_file(0).as_bytes());
        bytes
    });
    if path.len() > NAME || path.is_empty() || size >= 1 << 33 {
        return None;
    }
    let mut header = *TEMPLATE;
    header[..path.len()].copy_from_slice(path.as_bytes());
    octal(&mut header[SIZE], size as u64);
    header[CHECKSUM].fill(b' ');
    let checksum: u64 = header.iter().map(|&b| u64::from(b)).sum();
    octal(&mut header[CHECKSUM], checksum);
    Some(header)
}

/// `value` in octal, zero-padded, ending with a NUL, as tar's numeric fields are written.
fn octal(field: &mut [u8], mut value: u64) {
    let Some((last, digits)) = field.split_last_mut() else {
        return;
    };
    *last = 0;
    for digit in digits.iter_mut().rev() {
        *digit = b'0' + (value & 7) as u8;
        value >>= 3;
    }
}

fn padded(len: usize) -> usize {
    len.div_ceil(BLOCK) * BLOCK
}

/// Raw deflate of `data` and the zeros that pad it to a tar block, ending byte-aligned and
/// not final, so that more deflate data can follow.
fn deflate_padded(data: &[u8], level: flate2::Compression) -> Vec<u8> {
    let mut input = data.to_vec();
    input.resize(padded(data.len()), 0);
    let mut compress = flate2::Compress::new(level, false);
    let mut out = Vec::with_capacity(input.len() / 2 + 64);
    while compress.total_in() < input.len() as u64 || out.is_empty() {
        out.reserve(input.len() / 4 + 64);
        let consumed = compress.total_in() as usize;
        // Compressing into memory with room to spare does not fail.
        let _ = compress.compress_vec(&input[consumed..], &mut out, flate2::FlushCompress::Sync);
    }
    // A sync flush may need more room than was left: finish it.
    while !out.ends_with(&[0, 0, 0xff, 0xff]) {
        out.reserve(64);
        let _ = compress.compress_vec(&[], &mut out, flate2::FlushCompress::Sync);
    }
    out
}

/// How many bytes `data` starts with that equal `byte`, eight at a time where it can (tar
/// pads with long runs of zeros).
fn run_length(data: &[u8], byte: u8) -> usize {
    let eight = u64::from_ne_bytes([byte; 8]);
    let whole = data
        .chunks_exact(8)
        .take_while(|&chunk| {
            <[u8; 8]>::try_from(chunk).is_ok_and(|c| u64::from_ne_bytes(c) == eight)
        })
        .count()
        * 8;
    whole + data[whole..].iter().take_while(|&&b| b == byte).count()
}

/// A deflate bit stream being written, least significant bit first.
struct Bits {
    bytes: Vec<u8>,
    pending: u64,
    count: u32,
}

/// Lengths of back-references: the base of each length code (257 + index) and its extra bits.
const LENGTH_BASE: [u16; 29] = [
    3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131,
    163, 195, 227, 258,
];
const LENGTH_EXTRA: [u32; 29] = [
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
];
const END_OF_BLOCK: u32 = 256;

/// The fixed literal/length code (RFC 1951, 3.2.6) of every symbol, bits in writing order.
const FIXED_CODES: [(u16, u8); 288] = {
    let mut codes = [(0, 0); 288];
    let mut symbol = 0;
    while symbol < 288 {
        let (code, count) = match symbol {
            0..=143 => (0x30 + symbol, 8),
            144..=255 => (0x190 + symbol - 144, 9),
            256..=279 => (symbol - 256, 7),
            _ => (0xc0 + symbol - 280, 8),
        };
        codes[symbol as usize] = (reversed(code, count) as u16, count as u8);
        symbol += 1;
    }
    codes
};

const fn reversed(code: u32, count: u32) -> u32 {
    code.reverse_bits() >> (32 - count)
}

impl Bits {
    fn new(bytes: Vec<u8>) -> Self {
        Bits {
            bytes,
            pending: 0,
            count: 0,
        }
    }

    fn put(&mut self, value: u32, count: u32) {
        self.pending |= u64::from(value) << self.count;
        self.count += count;
        while self.count >= 8 {
            self.bytes.push(self.pending as u8);
            self.pending >>= 8;
            self.count -= 8;
        }
    }

    /// A Huffman code: stored most significant bit first.
    fn put_code(&mut self, code: u32, count: u32) {
        self.put(reversed(code, count), count);
    }

    /// A literal/length symbol in the fixed code.
    fn symbol(&mut self, symbol: u32) {
        let (bits, count) = FIXED_CODES[symbol as usize];
        self.put(u32::from(bits), u32::from(count));
    }

    /// A back-reference of `length` (3 to 258) bytes at distance 1: the last byte repeated.
    fn repeat(&mut self, length: usize) {
        let index = LENGTH_BASE.partition_point(|&base| usize::from(base) <= length) - 1;
        self.symbol(257 + index as u32);
        self.put(
            (length - usize::from(LENGTH_BASE[index])) as u32,
            LENGTH_EXTRA[index],
        );
        self.put_code(0, 5);
    }

    /// `data` as one block of fixed codes: each byte a literal, the rest of a run of one byte
    /// as back-references to the byte before.
    fn fixed_block(&mut self, data: &[u8], last: bool) {
        self.put(u32::from(last), 1);
        self.put(1, 2);
        let mut i = 0;
        while i < data.len() {
            let byte = data[i];
            let run = run_length(&data[i..], byte);
            self.symbol(u32::from(byte));
            let mut rest = run - 1;
            while rest >= 3 {
                let length = rest.min(258);
                self.repeat(length);
                rest -= length;
            }
            for _ in 0..rest {
                self.symbol(u32::from(byte));
            }
            i += run;
        }
        self.symbol(END_OF_BLOCK);
        if last {
            self.flush();
        }
    }

    /// Ends the stream's current byte with an empty stored block, as a sync flush does, so
    /// that bytes deflated elsewhere can follow.
    fn align(&mut self) {
        self.put(0, 3);
        self.flush();
        self.bytes.extend_from_slice(&[0, 0, 0xff, 0xff]);
    }

    fn flush(&mut self) {
        if self.count > 0 {
            self.bytes.push(self.pending as u8);
            self.pending = 0;
            self.count = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn unpack(archive: &[u8]) -> Vec<(String, Vec<u8>)> {
        let mut gz = Vec::new();
        flate2::read::GzDecoder::new(archive)
            .read_to_end(&mut gz)
            .expect("gzip");
        let mut tar = tar::Archive::new(gz.as_slice());
        tar.entries()
            .expect("tar")
            .map(|e| {
                let mut e = e.expect("entry");
                let path = e.path().expect("path").display().to_string();
                let mut data = Vec::new();
                e.read_to_end(&mut data).expect("data");
                (path, data)
            })
            .collect()
    }

    #[test]
    fn shared_and_own_files_unpack_as_written() {
        let shared = Segment::new(b"{{ include \"x\" . }}\n".repeat(200));
        let long_path = format!("chart/{}/file.txt", "deep".repeat(40));
        let files: Vec<(String, Vec<u8>)> = vec![
            ("chart/a".into(), b"aaaa\0\0\0\0\0\0zzz".to_vec()),
            ("chart/shared".into(), shared.data().to_vec()),
            ("chart/empty".into(), Vec::new()),
            (
                "chart/big".into(),
                (0..5000u32).map(|i| (i % 251) as u8).collect(),
            ),
            (long_path, vec![0; 1000]),
            ("chart/shared-again".into(), shared.data().to_vec()),
        ];
        let archive = tar_gz(files.iter().map(|(path, data)| {
            let contents = if path.starts_with("chart/shared") {
                Contents::Shared(&shared)
            } else {
                Contents::Bytes(data)
            };
            (path.clone(), contents)
        }));
        assert_eq!(unpack(&archive), files);
        assert!(shared.deflated.len() < shared.data().len() / 10);
    }

    #[test]
    fn every_run_length_codes_back() {
        for run in 0..600 {
            let mut data = b"x".to_vec();
            data.extend(std::iter::repeat_n(0u8, run));
            data.push(b'y');
            let archive = tar_gz([("f".to_owned(), Contents::Bytes(&data))]);
            assert_eq!(unpack(&archive), vec![("f".to_owned(), data)], "run {run}");
        }
    }

    #[test]
    fn headers_are_the_tar_crates() {
        for (path, size) in [
            ("a", 0),
            ("chart/templates/deployment.yaml", 1648),
            (&*"x".repeat(100), 512),
            ("ü/é", 1 << 30),
        ] {
            let mut theirs = regular_file(size);
            theirs.set_path(path).expect("path");
            theirs.set_cksum();
            assert_eq!(
                short_header(path, size).expect("fits")[..],
                theirs.as_bytes()[..],
                "{path}"
            );
        }
        assert_eq!(short_header(&"x".repeat(101), 1), None);
    }

    #[test]
    fn same_files_same_bytes() {
        let make = || tar_gz([("c/x".to_owned(), Contents::Bytes(b"one"))]);
        assert_eq!(make(), make());
        assert_eq!(&make()[..10], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
    }
}
