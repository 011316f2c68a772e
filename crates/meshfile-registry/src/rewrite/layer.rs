//! One layer read and one written, streamed: a layer's entries come from its blob on disk
//! one at a time, their contents read as they pass, and a new layer goes to disk as it is
//! made, hashed on the way (its diff id over the tar, its digest over the gzip). Memory stays
//! the same whatever a layer's size.

use std::cell::Cell;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use sha2::Digest;

use super::{Budget, FileBlob, GZIP_TYPES, RewriteError, TAR_TYPES, scratch, unreadable};

/// Bytes the tar reader may read between two entries: headers, GNU long names and links,
/// PAX records. The tar crate reads those whole into memory, so they are bounded as they
/// pass; no path or set of extended attributes comes near it.
const MAX_META: u64 = 1024 * 1024;

/// Extended (PAX) records the rewrite writes itself, from the entry: never copied.
const REWRITTEN_RECORDS: &[&str] = &["path", "linkpath", "size"];

/// What a layer entry carries besides its contents.
pub(super) struct Meta {
    /// The path as the image sees it ([`normal`]).
    pub path: Vec<u8>,
    pub header: tar::Header,
    pub link: Option<Vec<u8>>,
    /// PAX records kept (extended attributes, sub-second times), as `key=value` pairs.
    pub records: Vec<(String, Vec<u8>)>,
}

/// A layer's path as the image sees it: no leading `./` or `/`, no trailing `/`.
pub(super) fn normal(path: &[u8]) -> Vec<u8> {
    let mut p = path;
    while let Some(rest) = p.strip_prefix(b"./").or_else(|| p.strip_prefix(b"/")) {
        p = rest;
    }
    p.strip_suffix(b"/").unwrap_or(p).to_vec()
}

/// A reader that refuses to give more than a set number of bytes while a limit is set: the
/// limit is set while the tar reader looks for the next entry, lifted while an entry's
/// contents are read.
struct Bounded<R> {
    inner: R,
    left: Rc<Cell<Option<u64>>>,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let Some(left) = self.left.get() else {
            return self.inner.read(buf);
        };
        if left == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "an entry's headers and extended records exceed {} KiB",
                    MAX_META >> 10
                ),
            ));
        }
        let wanted = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..wanted])?;
        self.left.set(Some(left - n as u64));
        Ok(n)
    }
}

/// Reads the layer at `blob` (of `media_type`), handing each entry's description and its
/// contents (a reader to take, or leave: what is left is skipped) to `each`, in order.
pub(super) fn read(
    media_type: &str,
    blob: &Path,
    budget: &mut Budget,
    mut each: impl FnMut(Meta, &mut dyn Read) -> Result<(), RewriteError>,
) -> Result<(), RewriteError> {
    let file = File::open(blob).map_err(scratch("reading a layer"))?;
    let file = BufReader::with_capacity(256 * 1024, file);
    let reader: Box<dyn Read> = if GZIP_TYPES.contains(&media_type) {
        Box::new(flate2::read::GzDecoder::new(file))
    } else if TAR_TYPES.contains(&media_type) {
        Box::new(file)
    } else {
        return Err(RewriteError::LayerType(media_type.to_owned()));
    };
    let limit = Rc::new(Cell::new(Some(MAX_META)));
    let mut archive = tar::Archive::new(Bounded {
        inner: reader,
        left: Rc::clone(&limit),
    });
    let mut entries = archive
        .entries()
        .map_err(unreadable("a layer is no tar archive"))?;
    loop {
        limit.set(Some(MAX_META));
        let Some(entry) = entries.next() else {
            return Ok(());
        };
        let mut entry = entry.map_err(unreadable(ENTRY))?;
        limit.set(None);
        budget.take(entry.size())?;
        let kind = entry.header().entry_type();
        if kind.is_pax_global_extensions() {
            // Records for the whole archive, which containerd ignores too (written again they
            // would change entries that come after them).
            drain(&mut entry)?;
            continue;
        }
        if kind.is_pax_local_extensions() || kind.is_gnu_longname() || kind.is_gnu_longlink() {
            // The tar reader passes these on only in a header of no known format, where other
            // readers may still apply them: the layer means different things to different
            // readers.
            return Err(RewriteError::Unreadable {
                what: ENTRY,
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!(
                        "an extended header (type `{}`) in a header of no known tar format",
                        char::from(kind.as_byte())
                    ),
                ),
            });
        }
        let records = records(&mut entry)?;
        let mut header = entry.header().clone();
        header.set_size(entry.size());
        let meta = Meta {
            path: normal(&entry.path_bytes()),
            link: entry.link_name_bytes().map(|l| l.into_owned()),
            header,
            records,
        };
        each(meta, &mut entry)?;
        drain(&mut entry)?;
    }
}

/// Reads what is left of an entry's contents here, unbounded, not by the tar reader.
fn drain(entry: &mut dyn Read) -> Result<(), RewriteError> {
    std::io::copy(entry, &mut std::io::sink())
        .map(|_| ())
        .map_err(unreadable(ENTRY))
}

/// An entry's PAX records other than those the rewrite writes itself.
fn records<R: Read>(entry: &mut tar::Entry<'_, R>) -> Result<Vec<(String, Vec<u8>)>, RewriteError> {
    let Some(extensions) = entry.pax_extensions().map_err(unreadable(ENTRY))? else {
        return Ok(Vec::new());
    };
    let mut kept = Vec::new();
    for record in extensions {
        let record = record.map_err(unreadable(ENTRY))?;
        let key = record.key().map_err(|_| RewriteError::RecordName)?;
        if !REWRITTEN_RECORDS.contains(&key) {
            kept.push((key.to_owned(), record.value_bytes().to_vec()));
        }
    }
    Ok(kept)
}

/// A writer that hashes and counts what passes through it.
struct Hashing<W> {
    inner: W,
    hasher: sha2::Sha256,
    count: u64,
}

impl<W> Hashing<W> {
    fn new(inner: W) -> Self {
        Hashing {
            inner,
            hasher: sha2::Sha256::new(),
            count: 0,
        }
    }

    fn digest(&self) -> String {
        format!("sha256:{}", hex::encode(self.hasher.clone().finalize()))
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

type Gzip = flate2::write::GzEncoder<Hashing<BufWriter<File>>>;

/// A gzipped tar layer being written to a file, entry by entry.
pub(super) struct Writer {
    builder: tar::Builder<Hashing<Gzip>>,
    path: PathBuf,
}

/// What an unreadable entry is called in errors.
const ENTRY: &str = "a layer's entry is unreadable";

fn writing(source: std::io::Error) -> RewriteError {
    RewriteError::Scratch {
        what: "writing a layer",
        source,
    }
}

impl Writer {
    /// A new layer file in `dir`.
    pub fn create(dir: &Path) -> Result<Writer, RewriteError> {
        let (file, path) = tempfile::Builder::new()
            .prefix("layer-")
            .suffix(".tar.gz")
            .tempfile_in(dir)
            .and_then(|f| f.keep().map_err(|e| e.error))
            .map_err(writing)?;
        // Fixed level and no timestamp or name in the gzip header: same entries, same bytes.
        let gzip = flate2::GzBuilder::new().write(
            Hashing::new(BufWriter::with_capacity(256 * 1024, file)),
            flate2::Compression::new(6),
        );
        let mut builder = tar::Builder::new(Hashing::new(gzip));
        builder.mode(tar::HeaderMode::Complete);
        Ok(Writer { builder, path })
    }

    /// Appends an entry: its PAX records first when it has any, then its header under
    /// `meta.path` (a GNU long name when the path needs one), then `data`.
    pub fn append(&mut self, meta: &Meta, data: &mut dyn Read) -> Result<(), RewriteError> {
        if !meta.records.is_empty() {
            self.append_records(&meta.records)?;
        }
        let mut header = meta.header.clone();
        let path = String::from_utf8_lossy(&meta.path).into_owned();
        let path = if header.entry_type().is_dir() {
            format!("{path}/")
        } else {
            path
        };
        match &meta.link {
            Some(target)
                if header.entry_type().is_symlink() || header.entry_type().is_hard_link() =>
            {
                let target = String::from_utf8_lossy(target).into_owned();
                self.builder.append_link(&mut header, &path, &target)
            }
            _ => self.builder.append_data(&mut header, &path, data),
        }
        .map_err(writing)
    }

    /// A PAX extended header (type `x`) with `records`, for the entry that follows it.
    fn append_records(&mut self, records: &[(String, Vec<u8>)]) -> Result<(), RewriteError> {
        let mut body = Vec::new();
        for (key, value) in records {
            // Each record is "LEN KEY=VALUE\n", LEN counting the whole record, itself too.
            let rest = key.len() + value.len() + 3;
            let mut len = rest + rest.to_string().len();
            if len.to_string().len() + rest != len {
                len += 1;
            }
            body.extend_from_slice(format!("{len} {key}=").as_bytes());
            body.extend_from_slice(value);
            body.push(b'\n');
        }
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(tar::EntryType::XHeader);
        header.set_mode(0o644);
        header.set_size(body.len() as u64);
        self.builder
            .append_data(&mut header, "PaxHeaders/entry", body.as_slice())
            .map_err(writing)
    }

    /// The layer, finished: its blob on disk and its diff id (the digest of the tar).
    pub fn finish(self) -> Result<(FileBlob, String), RewriteError> {
        let tar = self.builder.into_inner().map_err(writing)?;
        let diff_id = tar.digest();
        let mut gzipped = tar.inner.finish().map_err(writing)?;
        gzipped.flush().map_err(writing)?;
        let digest = gzipped.digest();
        let size = gzipped.count;
        let file = gzipped
            .inner
            .into_inner()
            .map_err(|e| writing(e.into_error()))?;
        file.sync_all().map_err(writing)?;
        Ok((
            FileBlob {
                digest,
                size,
                path: self.path,
            },
            diff_id,
        ))
    }
}
