//! Deterministic `.tgz` archives, as `helm package` makes them: GNU tar entries with owner,
//! mode and time fixed, gzip without a timestamp.

use std::io::Write;

/// The tar archive of `files` (path inside the archive, data; in the order given),
/// gzip-compressed. The same files give the same bytes.
pub fn tar_gz<'a>(files: impl IntoIterator<Item = (String, &'a [u8])>) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    for (path, data) in files {
        // Writing into memory cannot fail; callers pass paths a tar can hold (a long one gets
        // a GNU long-name entry).
        let _ = tar.append_data(&mut regular_file(data.len()), path, data);
    }
    let tar = tar.into_inner().unwrap_or_default();
    // No name or time, unknown system (as Go, and so Helm, writes it).
    let mut gz = flate2::GzBuilder::new()
        .operating_system(255)
        .write(Vec::new(), flate2::Compression::best());
    // Compressing into memory cannot fail.
    let _ = gz.write_all(&tar);
    gz.finish().unwrap_or_default()
}

/// The header of a regular file: GNU format, mode 0644, owner 0, time 0.
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
    fn files_unpack_as_written() {
        let long_path = format!("chart/{}/file.txt", "deep".repeat(40));
        let files: Vec<(String, Vec<u8>)> = vec![
            ("chart/a".into(), b"aaaa\0\0\0\0\0\0zzz".to_vec()),
            ("chart/empty".into(), Vec::new()),
            (
                "chart/big".into(),
                (0..5000u32).map(|i| (i % 251) as u8).collect(),
            ),
            (long_path, vec![0; 1000]),
        ];
        let archive = tar_gz(
            files
                .iter()
                .map(|(path, data)| (path.clone(), data.as_slice())),
        );
        assert_eq!(unpack(&archive), files);
    }

    #[test]
    fn entries_have_fixed_owner_mode_and_time() {
        let archive = tar_gz([("c/x".to_owned(), b"one".as_slice())]);
        let mut gz = Vec::new();
        flate2::read::GzDecoder::new(archive.as_slice())
            .read_to_end(&mut gz)
            .expect("gzip");
        let mut tar = tar::Archive::new(gz.as_slice());
        let entry = tar
            .entries()
            .expect("tar")
            .next()
            .expect("one")
            .expect("entry");
        let header = entry.header();
        assert_eq!(header.mode().expect("mode"), 0o644);
        assert_eq!(header.mtime().expect("mtime"), 0);
        assert_eq!(
            (header.uid().expect("uid"), header.gid().expect("gid")),
            (0, 0)
        );
    }

    #[test]
    fn same_files_same_bytes() {
        let make = || tar_gz([("c/x".to_owned(), b"one".as_slice())]);
        assert_eq!(make(), make());
        // gzip, deflate, no name, no time, best compression, unknown system.
        assert_eq!(&make()[..10], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 0xff]);
    }
}
