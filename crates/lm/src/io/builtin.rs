//! The built-in vocabularies (GPT-2's byte-level BPE, bert-base-uncased's WordPiece): compiled
//! into the crate with the `embedded-tokenizers` feature (the CLI, the tests), or supplied once
//! at run time by a caller that fetched them (the browser's worker, where the two files are
//! 4.3 MB of wasm, 0.8 MB of the download, that a user who trains with `chars` never needs).

use std::sync::OnceLock;

use crate::error::{Error, Result};

/// One built-in `tokenizer.json`: its name, where it sits under `assets/tokenizers/` (and under
/// the web app's `tokenizers/`), and its exact length and CRC-32. A supplied copy must match
/// both: a stale or wrong file would still parse and give other ids without a word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuiltinFile {
    pub name: &'static str,
    pub path: &'static str,
    pub len: usize,
    pub crc32: u32,
}

/// Names accepted by [`crate::Tokenizer::builtin`], with their files.
pub const BUILTIN_FILES: [BuiltinFile; 2] = [
    BuiltinFile { name: "gpt2", path: "gpt2/tokenizer.json", len: 3_557_681, crc32: 0xa0b7_7827 },
    BuiltinFile {
        name: "bert-base-uncased",
        path: "bert-base-uncased/tokenizer.json",
        len: 711_396,
        crc32: 0xfec4_e1bc,
    },
];

#[cfg(feature = "embedded-tokenizers")]
const EMBEDDED: [&[u8]; 2] = [
    include_bytes!("../../assets/tokenizers/gpt2/tokenizer.json"),
    include_bytes!("../../assets/tokenizers/bert-base-uncased/tokenizer.json"),
];

/// Copies supplied at run time, one per entry of [`BUILTIN_FILES`]. Set once: the files never
/// change while the process runs.
static SUPPLIED: [OnceLock<Vec<u8>>; 2] = [OnceLock::new(), OnceLock::new()];

/// The built-in file named `name`, if there is one.
pub fn builtin_file(name: &str) -> Option<&'static BuiltinFile> {
    index(name).ok().map(|i| &BUILTIN_FILES[i])
}

fn index(name: &str) -> Result<usize> {
    BUILTIN_FILES.iter().position(|file| file.name == name).ok_or_else(|| {
        let names: Vec<&str> = BUILTIN_FILES.iter().map(|file| file.name).collect();
        Error::Tokenizer(format!(
            "unknown tokenizer `{name}` (built in: {}; or give a tokenizer.json path)",
            names.join(", ")
        ))
    })
}

/// Whether `name`'s file is at hand: compiled in, or already supplied.
pub fn is_available(name: &str) -> bool {
    bytes(name).is_ok()
}

/// The bytes of a built-in `tokenizer.json`. An error names what is missing: an unknown name,
/// or a file that this build does not embed and nobody has supplied yet.
pub fn bytes(name: &str) -> Result<&'static [u8]> {
    let i = index(name)?;
    #[cfg(feature = "embedded-tokenizers")]
    {
        Ok(EMBEDDED[i])
    }
    #[cfg(not(feature = "embedded-tokenizers"))]
    {
        SUPPLIED[i].get().map(Vec::as_slice).ok_or_else(|| {
            Error::Tokenizer(format!("the built-in `{name}` tokenizer has not been loaded yet"))
        })
    }
}

/// Checks that `bytes` are exactly the built-in file `name` (length and CRC-32).
pub fn check(name: &str, bytes: &[u8]) -> Result<()> {
    let file = &BUILTIN_FILES[index(name)?];
    let crc = crc32fast::hash(bytes);
    if bytes.len() != file.len || crc != file.crc32 {
        return Err(Error::Tokenizer(format!(
            "the built-in `{name}` tokenizer file is not the one this version was built with \
             ({} bytes, CRC-32 {crc:08x}; expected {} bytes, {:08x}): reload the page",
            bytes.len(),
            file.len,
            file.crc32
        )));
    }
    Ok(())
}

/// Supplies the file `name` in a build without embedded tokenizers, after [`check`]ing it. A
/// second copy of the same file changes nothing.
pub fn supply(name: &str, bytes: Vec<u8>) -> Result<()> {
    check(name, &bytes)?;
    let _ = SUPPLIED[index(name)?].set(bytes);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_recorded_lengths_and_checksums_are_the_assets() {
        for file in BUILTIN_FILES {
            let bytes = bytes(file.name).unwrap();
            check(file.name, bytes).unwrap();
            assert_eq!(
                std::fs::read(format!("{}/assets/tokenizers/{}", env!("CARGO_MANIFEST_DIR"), file.path))
                    .unwrap(),
                bytes
            );
        }
    }

    #[test]
    fn a_wrong_file_is_refused_with_the_reason() {
        let mut gpt2 = bytes("gpt2").unwrap().to_vec();
        let last = gpt2.len() - 2;
        gpt2[last] ^= 1;
        let err = supply("gpt2", gpt2).unwrap_err().to_string();
        assert!(err.contains("not the one this version was built with"), "{err}");
        let err = check("bert-base-uncased", b"{}").unwrap_err().to_string();
        assert!(err.contains("2 bytes") && err.contains("711396 bytes"), "{err}");
        let err = check("gpt3", b"{}").unwrap_err().to_string();
        assert!(err.contains("unknown tokenizer `gpt3`") && err.contains("gpt2, bert-base-uncased"), "{err}");
        assert!(builtin_file("gpt3").is_none());
        assert_eq!(builtin_file("gpt2").unwrap().path, "gpt2/tokenizer.json");
        // The right file is taken.
        supply("bert-base-uncased", bytes("bert-base-uncased").unwrap().to_vec()).unwrap();
    }
}
