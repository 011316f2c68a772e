//! Squashing: every layer's entries merged into one tree, whiteouts applied, written as one
//! layer sorted by path. Entries' headers and contents are spilled to a file in the scratch
//! directory as they are read; memory holds only the tree of paths, each with where its
//! entry lies in the spill file.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;

use super::layer::{self, Meta};
use super::{Budget, FileBlob, RewriteError, scratch, unreadable};

/// An entry of the merged tree, its description and contents in the spill file.
struct Spilled {
    /// Where its record starts in the spill file.
    at: u64,
    directory: bool,
}

/// The spill file: for each entry, its PAX records, header, link target and contents, one
/// after the other.
struct Spill {
    file: BufWriter<File>,
    len: u64,
}

fn spilling(source: std::io::Error) -> RewriteError {
    scratch("squashing: writing the scratch file")(source)
}

fn unspilling(source: std::io::Error) -> RewriteError {
    scratch("squashing: reading the scratch file")(source)
}

/// Appends one length-prefixed part to a spill record.
fn part(record: &mut Vec<u8>, bytes: &[u8]) {
    record.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
    record.extend_from_slice(bytes);
}

impl Spill {
    /// Spills an entry: header, whether it links, its record count, path, link target and
    /// records as length-prefixed parts, then its contents. Where it starts.
    fn put(&mut self, meta: &Meta, data: &mut dyn Read) -> Result<u64, RewriteError> {
        let at = self.len;
        let mut record = meta.header.as_bytes().to_vec();
        record.push(u8::from(meta.link.is_some()));
        record.extend_from_slice(&(meta.records.len() as u64).to_le_bytes());
        part(&mut record, &meta.path);
        part(&mut record, meta.link.as_deref().unwrap_or_default());
        for (key, value) in &meta.records {
            part(&mut record, key.as_bytes());
            part(&mut record, value);
        }
        self.file.write_all(&record).map_err(spilling)?;
        let size = meta.header.entry_size().unwrap_or(0);
        let copied = std::io::copy(&mut data.take(size), &mut self.file)
            .map_err(unreadable("a layer's entry is unreadable"))?;
        if copied != size {
            return Err(RewriteError::ShortEntry);
        }
        self.len += record.len() as u64 + size;
        Ok(at)
    }
}

/// Reads back one spilled entry's description; the reader is left at its contents.
fn take(spill: &mut BufReader<File>, at: u64) -> Result<Meta, RewriteError> {
    spill.seek(SeekFrom::Start(at)).map_err(unspilling)?;
    let mut header = tar::Header::new_old();
    spill
        .read_exact(header.as_mut_bytes())
        .map_err(unspilling)?;
    let mut fixed = [0u8; 9];
    spill.read_exact(&mut fixed).map_err(unspilling)?;
    let mut count = [0u8; 8];
    count.copy_from_slice(&fixed[1..]);
    let mut part = || -> Result<Vec<u8>, RewriteError> {
        let mut len = [0u8; 8];
        spill.read_exact(&mut len).map_err(unspilling)?;
        let mut bytes = vec![0; u64::from_le_bytes(len) as usize];
        spill.read_exact(&mut bytes).map_err(unspilling)?;
        Ok(bytes)
    };
    let (path, link) = (part()?, part()?);
    let mut records = Vec::new();
    for _ in 0..u64::from_le_bytes(count) {
        let key = String::from_utf8_lossy(&part()?).into_owned();
        records.push((key, part()?));
    }
    Ok(Meta {
        path,
        header,
        link: (fixed[0] == 1).then_some(link),
        records,
    })
}

/// Removes every path below `dir` (the whole tree for the root), found as one range of the
/// sorted tree: paths below `d` sort between `d/` and `d0` (`0` follows `/`).
fn remove_below(tree: &mut BTreeMap<Vec<u8>, Spilled>, dir: &[u8]) {
    if dir.is_empty() {
        tree.clear();
        return;
    }
    let from = [dir, b"/"].concat();
    let to = [dir, b"0"].concat();
    let gone: Vec<Vec<u8>> = tree.range(from..to).map(|(p, _)| p.clone()).collect();
    for path in gone {
        tree.remove(&path);
    }
}

/// Applies one layer's entries over the merged tree: its whiteouts remove what lower layers
/// had, then its entries replace theirs (a non-directory replaces a whole directory).
fn apply(tree: &mut BTreeMap<Vec<u8>, Spilled>, layer: Vec<(Vec<u8>, Spilled)>) {
    let (whiteouts, entries): (Vec<_>, Vec<_>) = layer.into_iter().partition(|(path, _)| {
        let name = path.rsplit(|b| *b == b'/').next().unwrap_or(path);
        name.starts_with(b".wh.")
    });
    for (path, _) in whiteouts {
        let (dir, name) = match path.iter().rposition(|b| *b == b'/') {
            Some(i) => (&path[..i], &path[i + 1..]),
            None => (&path[..0], &path[..]),
        };
        if name == b".wh..wh..opq" {
            remove_below(tree, dir);
        } else {
            let gone = [dir, if dir.is_empty() { b"" } else { b"/" }, &name[4..]].concat();
            tree.remove(&gone);
            remove_below(tree, &gone);
        }
    }
    for (path, entry) in entries {
        if !entry.directory {
            remove_below(tree, &path);
        }
        tree.insert(path, entry);
    }
}

/// The layers (media type and blob file each) squashed into one new layer in `scratch`,
/// entries `keep` refuses left out: its blob and diff id.
pub(super) fn squash(
    layers: &[(&str, &Path)],
    keep: impl Fn(&[u8]) -> bool,
    scratch: &Path,
    budget: &mut Budget,
) -> Result<(FileBlob, String), RewriteError> {
    let (file, spill_path) = tempfile::Builder::new()
        .prefix("squash-")
        .tempfile_in(scratch)
        .and_then(|f| f.keep().map_err(|e| e.error))
        .map_err(spilling)?;
    let mut spill = Spill {
        file: BufWriter::with_capacity(256 * 1024, file),
        len: 0,
    };
    let mut tree = BTreeMap::new();
    let mut names = super::MAX_NAMES;
    for (media_type, blob) in layers {
        let mut entries = Vec::new();
        layer::read(media_type, blob, budget, |meta, data| {
            if !keep(&meta.path) {
                return Ok(());
            }
            let held = meta.path.len() as u64 + 48;
            names = names.checked_sub(held).ok_or(RewriteError::TooManyNames)?;
            let at = spill.put(&meta, data)?;
            let directory = meta.header.entry_type().is_dir();
            entries.push((meta.path, Spilled { at, directory }));
            Ok(())
        })?;
        apply(&mut tree, entries);
    }
    let file = spill
        .file
        .into_inner()
        .map_err(|e| spilling(e.into_error()))?;
    let mut spilled = BufReader::with_capacity(256 * 1024, file);
    let mut writer = layer::Writer::create(scratch)?;
    for entry in tree.values() {
        let meta = take(&mut spilled, entry.at)?;
        let size = meta.header.entry_size().unwrap_or(0);
        writer.append(&meta, &mut (&mut spilled).take(size))?;
    }
    drop(spilled);
    std::fs::remove_file(&spill_path).map_err(spilling)?;
    writer.finish()
}
