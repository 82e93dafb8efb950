//! Zip archives of stored (uncompressed) files: how the page hands a trained model's Hugging
//! Face directory to the user in one download, and the container of PyTorch's checkpoint format
//! ([`super::torch`]), which torch itself writes stored. Safetensors barely compress, so storing
//! keeps this small and dependency-free (PKWARE APPNOTE 6.3.10, sections 4.3.7, 4.3.12,
//! 4.3.16). [`stored_entries`] reads such an archive back, refusing anything else by name.

const LOCAL_HEADER: u32 = 0x0403_4b50;
const CENTRAL_HEADER: u32 = 0x0201_4b50;
const END_OF_CENTRAL_DIRECTORY: u32 = 0x0605_4b50;
/// Version 2.0: plain stored entries.
const VERSION: u16 = 20;
/// Bit 11: names are UTF-8.
const UTF8_NAMES: u16 = 1 << 11;
/// 1980-01-01 00:00 in MS-DOS format: the archive carries no clock.
const DOS_DATE: u16 = (1 << 5) | 1;

/// `files` (name, bytes) as a zip under the folder `dir`. Fails above zip's 4 GiB / 65,535-entry
/// limits rather than writing a corrupt archive.
pub fn zip_stored(dir: &str, files: &[(String, Vec<u8>)]) -> Result<Vec<u8>, String> {
    if files.len() > u16::MAX as usize {
        return Err("too many files for a zip archive".into());
    }
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data) in files {
        let path = if dir.is_empty() { name.clone() } else { format!("{dir}/{name}") };
        let offset = u32::try_from(out.len()).map_err(|_| "the archive would exceed 4 GiB")?;
        let size = u32::try_from(data.len()).map_err(|_| format!("{name} exceeds 4 GiB"))?;
        let name_len = u16::try_from(path.len())
            .map_err(|_| format!("file name too long: {}…", path.chars().take(60).collect::<String>()))?;
        let crc = crc32fast::hash(data);

        put32(&mut out, LOCAL_HEADER);
        for v in [VERSION, UTF8_NAMES, 0, 0, DOS_DATE] {
            put16(&mut out, v);
        }
        for v in [crc, size, size] {
            put32(&mut out, v);
        }
        put16(&mut out, name_len);
        put16(&mut out, 0);
        out.extend_from_slice(path.as_bytes());
        out.extend_from_slice(data);

        put32(&mut central, CENTRAL_HEADER);
        for v in [VERSION, VERSION, UTF8_NAMES, 0, 0, DOS_DATE] {
            put16(&mut central, v);
        }
        for v in [crc, size, size] {
            put32(&mut central, v);
        }
        for v in [name_len, 0, 0, 0, 0] {
            put16(&mut central, v);
        }
        put32(&mut central, 0);
        put32(&mut central, offset);
        central.extend_from_slice(path.as_bytes());
    }
    let central_offset = u32::try_from(out.len()).map_err(|_| "the archive would exceed 4 GiB")?;
    let central_size = central.len() as u32;
    out.extend_from_slice(&central);
    put32(&mut out, END_OF_CENTRAL_DIRECTORY);
    let entries = files.len() as u16;
    for v in [0, 0, entries, entries] {
        put16(&mut out, v);
    }
    put32(&mut out, central_size);
    put32(&mut out, central_offset);
    put16(&mut out, 0);
    Ok(out)
}

/// The entries of a zip archive of stored files, `(name, data)` in central-directory order, each
/// checked against its CRC-32. Compressed entries, zip64, encryption and anything that points
/// outside the bytes are refused with a message; names are quoted bounded.
pub fn stored_entries(zip: &[u8]) -> Result<Vec<(String, &[u8])>, String> {
    let u16_at = |i: usize| zip.get(i..i + 2).map(|b| u16::from_le_bytes([b[0], b[1]]) as usize);
    let u32_at = |i: usize| zip.get(i..i + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize);
    let truncated = || "not a zip archive (or a truncated one)".to_string();
    // The end record has no comment in archives we read; allow a short one.
    let end = (0..zip.len().saturating_sub(21))
        .rev()
        .take(1 << 16)
        .find(|&i| u32_at(i) == Some(END_OF_CENTRAL_DIRECTORY as usize))
        .ok_or_else(truncated)?;
    let count = u16_at(end + 10).ok_or_else(truncated)?;
    let mut at = u32_at(end + 16).ok_or_else(truncated)?;
    let mut entries = Vec::with_capacity(count.min(zip.len() / 46));
    for _ in 0..count {
        if u32_at(at) != Some(CENTRAL_HEADER as usize) {
            return Err(truncated());
        }
        let field = |o: usize| u16_at(at + o).ok_or_else(truncated);
        let (flags, method) = (field(8)?, field(10)?);
        let crc = u32_at(at + 16).ok_or_else(truncated)? as u32;
        let (compressed, size) =
            (u32_at(at + 20).ok_or_else(truncated)?, u32_at(at + 24).ok_or_else(truncated)?);
        let (name_len, extra_len, comment_len) = (field(28)?, field(30)?, field(32)?);
        let local = u32_at(at + 42).ok_or_else(truncated)?;
        let name = zip.get(at + 46..at + 46 + name_len).ok_or_else(truncated)?;
        let name = String::from_utf8_lossy(name).into_owned();
        let shown: String = name.chars().take(60).collect();
        if method != 0 || compressed != size {
            return Err(format!("`{shown}` is compressed; only stored entries are read"));
        }
        if flags & 1 != 0 {
            return Err(format!("`{shown}` is encrypted"));
        }
        if size == u32::MAX as usize || local == u32::MAX as usize {
            return Err(format!("`{shown}` is a zip64 entry, which is not read"));
        }
        if u32_at(local) != Some(LOCAL_HEADER as usize) {
            return Err(truncated());
        }
        let data_at = local
            + 30
            + u16_at(local + 26).ok_or_else(truncated)?
            + u16_at(local + 28).ok_or_else(truncated)?;
        let data = zip.get(data_at..data_at + size).ok_or_else(truncated)?;
        if crc32fast::hash(data) != crc {
            return Err(format!("`{shown}` fails its CRC-32 check"));
        }
        entries.push((name, data));
        at += 46 + name_len + extra_len + comment_len;
    }
    Ok(entries)
}

fn put16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u16_at(b: &[u8], i: usize) -> usize {
        u16::from_le_bytes([b[i], b[i + 1]]) as usize
    }

    fn u32_at(b: &[u8], i: usize) -> usize {
        u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]) as usize
    }

    /// Reads the archive the way unzip does: end record → central directory → local headers.
    fn read_back(zip: &[u8]) -> Vec<(String, Vec<u8>, u32)> {
        let end = zip.len() - 22;
        assert_eq!(u32_at(zip, end) as u32, END_OF_CENTRAL_DIRECTORY);
        let (count, mut at) = (u16_at(zip, end + 10), u32_at(zip, end + 16));
        let mut files = Vec::new();
        for _ in 0..count {
            assert_eq!(u32_at(zip, at) as u32, CENTRAL_HEADER);
            let crc = u32_at(zip, at + 16) as u32;
            let size = u32_at(zip, at + 24);
            let name_len = u16_at(zip, at + 28);
            let local = u32_at(zip, at + 42);
            let name = String::from_utf8(zip[at + 46..at + 46 + name_len].to_vec()).unwrap();
            assert_eq!(u32_at(zip, local) as u32, LOCAL_HEADER);
            let data_at = local + 30 + u16_at(zip, local + 26) + u16_at(zip, local + 28);
            files.push((name, zip[data_at..data_at + size].to_vec(), crc));
            at += 46 + name_len;
        }
        files
    }

    #[test]
    fn the_reader_gives_back_what_the_writer_stored_and_refuses_damage() {
        let files = vec![("a.txt".to_string(), b"alpha".to_vec()), ("data/0".to_string(), vec![7u8; 300])];
        let zip = zip_stored("archive", &files).unwrap();
        let back = stored_entries(&zip).unwrap();
        assert_eq!(back[0], ("archive/a.txt".to_string(), &b"alpha"[..]));
        assert_eq!(back[1].1, &[7u8; 300][..]);
        let mut bad = zip.clone();
        let at = zip.windows(5).position(|w| w == b"alpha").unwrap();
        bad[at] = b'A';
        assert!(stored_entries(&bad).unwrap_err().contains("CRC-32"));
        assert!(stored_entries(&zip[..zip.len() - 30]).is_err());
        assert!(stored_entries(b"not a zip").is_err());
        // Every truncation and every single-byte change is read or refused, never a panic.
        for cut in 0..zip.len() {
            let _ = stored_entries(&zip[..cut]);
        }
        for i in 0..zip.len() {
            let mut z = zip.clone();
            z[i] ^= 0x5a;
            let _ = stored_entries(&z);
        }
    }

    #[test]
    fn stored_files_read_back_with_their_crc() {
        let files = vec![
            ("config.json".to_string(), b"{\"model_type\": \"gpt2\"}".to_vec()),
            ("model.safetensors".to_string(), (0..=255u8).cycle().take(5000).collect()),
            ("empty.txt".to_string(), Vec::new()),
        ];
        let zip = zip_stored("hearth-gpt2", &files).unwrap();
        let back = read_back(&zip);
        assert_eq!(back.len(), 3);
        for ((name, data), (got_name, got_data, crc)) in files.iter().zip(&back) {
            assert_eq!(got_name, &format!("hearth-gpt2/{name}"));
            assert_eq!(got_data, data);
            assert_eq!(*crc, crc32fast::hash(data));
        }
        // The CRC-32 every zip tool agrees on.
        assert_eq!(crc32fast::hash(b"hello"), 0x3610_a686);
    }

    /// 10,000 random file sets — names with any chars (some too long for zip), empty and binary
    /// contents — either refuse with a message or read back exactly.
    #[test]
    fn random_file_sets_read_back_or_are_refused() {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move |n: usize| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((state >> 33) as usize) % n.max(1)
        };
        const CHARS: [char; 8] = ['a', 'Z', '/', '.', ' ', 'é', '漢', '🦀'];
        for _ in 0..10_000 {
            let files: Vec<(String, Vec<u8>)> = (0..next(6))
                .map(|_| {
                    let len = if next(50) == 0 { 70_000 } else { next(40) };
                    let name: String = (0..len).map(|_| CHARS[next(CHARS.len())]).collect();
                    let data: Vec<u8> = (0..next(300)).map(|_| next(256) as u8).collect();
                    (name, data)
                })
                .collect();
            let dir = if next(2) == 0 { "" } else { "run" };
            match zip_stored(dir, &files) {
                Ok(zip) => {
                    let back = read_back(&zip);
                    assert_eq!(back.len(), files.len());
                    for ((name, data), (got_name, got_data, crc)) in files.iter().zip(&back) {
                        let want = if dir.is_empty() { name.clone() } else { format!("{dir}/{name}") };
                        assert_eq!((got_name, got_data, *crc), (&want, data, crc32fast::hash(data)));
                    }
                }
                Err(e) => assert!(e.contains("too long"), "{e}"),
            }
        }
    }
}
