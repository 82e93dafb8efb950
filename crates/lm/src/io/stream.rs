//! A safetensors file read front to back in chunks of any size, as a download or a file picked
//! in the browser delivers them, each tensor handed over as soon as its last byte arrives. This
//! is what lets the browser move weights to the GPU tensor by tensor: it holds one tensor's
//! bytes at a time, never the whole file (GPT-2 XL's is 6 GB; wasm memory ends at 4 GiB).
//!
//! The format: an 8-byte little-endian header length, a JSON header naming each tensor's
//! dtype, shape and byte range in the data that follows, then the data. The header is
//! validated as the `safetensors` crate does (ranges contiguous from 0, sizes matching shapes)
//! before any tensor is accepted, and the sink chooses from it which tensors to keep: the
//! others are skipped as they pass, never buffered.
//!
//! The header is parsed here, not by the `safetensors` crate, because its `TensorInfo` holds
//! byte offsets as `usize`: in wasm32 that is 32 bits, and a file over 4 GiB (GPT-2 XL's is
//! 6.4 GB) failed to parse in the browser. Offsets here are `u64`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use safetensors::Dtype;
use serde::de::{self, MapAccess, Visitor};
use serde::Deserialize;

use crate::error::{excerpt, Error, Result};

/// One tensor of the header: its dtype, shape and byte range in the data section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    /// `[start, end)` in the data that follows the header.
    pub data_offsets: (u64, u64),
}

impl TensorInfo {
    /// Bytes of the tensor's data.
    pub fn byte_len(&self) -> u64 {
        self.data_offsets.1 - self.data_offsets.0
    }
}

/// A header entry as written.
#[derive(Deserialize)]
struct Entry {
    dtype: Dtype,
    shape: Vec<u64>,
    data_offsets: (u64, u64),
}

/// The header's key for free-form metadata, which the format defines as string → string.
const METADATA: &str = "__metadata__";

/// The header read straight into the format's types (no intermediate JSON values, which would
/// hold any structure a forged header nests under a key): tensor entries in the order written,
/// and `__metadata__` checked to be strings only.
struct Header(Vec<(String, Entry)>);

impl<'de> Deserialize<'de> for Header {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct HeaderVisitor;
        impl<'de> Visitor<'de> for HeaderVisitor {
            type Value = Header;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of tensor entries")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Header, A::Error> {
                let mut entries = Vec::new();
                let mut seen = BTreeSet::new();
                while let Some(name) = map.next_key::<String>()? {
                    if !seen.insert(name.clone()) {
                        return Err(de::Error::custom(format!("`{}` appears twice", excerpt(&name))));
                    }
                    if name == METADATA {
                        map.next_value::<BTreeMap<String, String>>().map_err(|e| {
                            de::Error::custom(format!("{METADATA} must map strings to strings ({e})"))
                        })?;
                    } else {
                        let entry = map
                            .next_value::<Entry>()
                            .map_err(|e| de::Error::custom(format!("`{}`: {e}", excerpt(&name))))?;
                        entries.push((name, entry));
                    }
                }
                Ok(Header(entries))
            }
        }
        deserializer.deserialize_map(HeaderVisitor)
    }
}

/// A header error; the reason quotes at most a bounded part of the header (names, values).
fn invalid_header(why: impl fmt::Display) -> Error {
    Error::Safetensors(format!("the file's header is not valid: {}", excerpt(&why.to_string())))
}

/// The header's tensors in file order, checked: ranges contiguous from 0, each the size its
/// dtype and shape give. Returns them with the data section's length.
fn parse_header(json: &[u8]) -> Result<(Vec<(String, TensorInfo)>, u64)> {
    let Header(entries) = serde_json::from_slice(json).map_err(invalid_header)?;
    let mut tensors = Vec::with_capacity(entries.len());
    for (name, entry) in entries {
        let shape = entry
            .shape
            .iter()
            .map(|&d| usize::try_from(d))
            .collect::<std::result::Result<Vec<usize>, _>>()
            .map_err(|_| {
                invalid_header(format!("`{}` has a dimension too large for this platform", excerpt(&name)))
            })?;
        tensors.push((name, TensorInfo { dtype: entry.dtype, shape, data_offsets: entry.data_offsets }));
    }
    tensors.sort_by_key(|(_, info)| info.data_offsets);
    let mut end = 0u64;
    for (name, info) in &tensors {
        let (s, e) = info.data_offsets;
        let name = excerpt(name);
        if s != end || e < s {
            return Err(invalid_header(format!("`{name}`'s byte range [{s}, {e}) does not follow at {end}")));
        }
        let bits = info.shape.iter().fold(info.dtype.bitsize() as u128, |n, &d| n.saturating_mul(d as u128));
        if bits % 8 != 0 || bits / 8 != (e - s) as u128 {
            let shape = excerpt(&format!("{:?}", info.shape)).into_owned();
            return Err(invalid_header(format!(
                "`{name}` has {} bytes for a {:?} tensor of shape {shape}",
                e - s,
                info.dtype,
            )));
        }
        end = e;
    }
    Ok((tensors, end))
}

/// The `safetensors` crate's own bound on a header (it refuses larger ones).
const MAX_HEADER_BYTES: u64 = 100_000_000;

/// What receives the tensors of a [`TensorStream`].
pub trait TensorSink {
    /// The header has arrived (tensors in file order): which of them to keep, one flag each.
    /// An error here stops the stream before any tensor data is read.
    fn header(&mut self, tensors: &[(String, TensorInfo)]) -> Result<Vec<bool>>;

    /// A kept tensor is complete: its raw little-endian bytes, exactly its size.
    fn tensor(&mut self, name: &str, info: &TensorInfo, bytes: Vec<u8>) -> Result<()>;
}

/// The body once the header is known: where each tensor's bytes are.
struct Body {
    tensors: Vec<(String, TensorInfo)>,
    keep: Vec<bool>,
    /// The tensor whose bytes arrive now.
    next: usize,
    /// Bytes of that tensor received so far.
    filled: u64,
    /// Those bytes, when it is kept.
    current: Vec<u8>,
    /// Header and data together: the file's exact length.
    file_len: u64,
}

/// A safetensors file being received; see the module's documentation.
#[derive(Default)]
pub struct TensorStream {
    received: u64,
    /// The length prefix and the JSON header, until both are complete.
    prefix: Vec<u8>,
    body: Option<Body>,
}

impl TensorStream {
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes received so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// The file's length, once its header has said it.
    pub fn expected_len(&self) -> Option<u64> {
        self.body.as_ref().map(|b| b.file_len)
    }

    /// Takes the next bytes of the file, handing `sink` the header and every kept tensor they
    /// complete.
    pub fn push(&mut self, mut chunk: &[u8], sink: &mut dyn TensorSink) -> Result<()> {
        while !chunk.is_empty() {
            let taken = match self.body.as_mut() {
                None => self.take_header(chunk, sink)?,
                Some(body) => body.take_data(chunk, sink)?,
            };
            self.received += taken as u64;
            chunk = &chunk[taken..];
        }
        Ok(())
    }

    /// Checks that the whole file arrived: every tensor, nothing after the last.
    pub fn finish(&self) -> Result<()> {
        match &self.body {
            Some(body) if body.next == body.tensors.len() => Ok(()),
            Some(body) => Err(Error::Safetensors(format!(
                "the file ended after {} of its {} bytes (a download that broke off?)",
                self.received, body.file_len
            ))),
            None => Err(Error::Safetensors(format!(
                "the file ended after {} bytes, inside its header: not a complete safetensors file",
                self.received
            ))),
        }
    }

    /// Reads into the length prefix and the header; parses the header when it is complete.
    fn take_header(&mut self, chunk: &[u8], sink: &mut dyn TensorSink) -> Result<usize> {
        if self.prefix.is_empty() && chunk.first() == Some(&b'<') {
            return Err(Error::Safetensors(
                "this is an HTML page, not a safetensors file (use a /resolve/ URL, not a /blob/ page)"
                    .into(),
            ));
        }
        let header_len = self.header_len()?;
        let want = header_len.map_or(8, |n| 8 + n as usize);
        let take = (want - self.prefix.len()).min(chunk.len());
        self.prefix.extend_from_slice(&chunk[..take]);
        if header_len.is_none() {
            // The header grows as its bytes arrive: nothing is reserved from the length the
            // file claims (up to 100 MB), so a forged prefix costs only the bytes really sent.
            self.header_len()?;
            return Ok(take);
        }
        if self.prefix.len() == want {
            let (tensors, data_len) = parse_header(&self.prefix[8..])?;
            let keep = sink.header(&tensors)?;
            assert_eq!(keep.len(), tensors.len(), "the sink answers once per tensor");
            let file_len = (want as u64).saturating_add(data_len);
            let mut body = Body { tensors, keep, next: 0, filled: 0, current: Vec::new(), file_len };
            body.settle(sink)?;
            self.body = Some(body);
            self.prefix = Vec::new();
        }
        Ok(take)
    }

    /// The header's length once the 8-byte prefix is in, refused when implausible.
    fn header_len(&self) -> Result<Option<u64>> {
        let Some(prefix) = self.prefix.get(..8) else { return Ok(None) };
        let n = u64::from_le_bytes(prefix.try_into().expect("8 bytes"));
        if n == 0 || n > MAX_HEADER_BYTES {
            return Err(Error::Safetensors(format!(
                "not a safetensors file: its first 8 bytes claim a {n}-byte header"
            )));
        }
        Ok(Some(n))
    }
}

impl Body {
    /// Reads into the current tensor; hands it over when complete.
    fn take_data(&mut self, chunk: &[u8], sink: &mut dyn TensorSink) -> Result<usize> {
        let Some((_, info)) = self.tensors.get(self.next) else {
            return Err(Error::Safetensors(format!(
                "the file goes on past the {} bytes its header describes",
                self.file_len
            )));
        };
        let size = info.byte_len();
        let take = usize::try_from(size - self.filled).map_or(chunk.len(), |left| left.min(chunk.len()));
        if self.keep[self.next] {
            if self.current.capacity() == 0 {
                // Exactly the tensor's size: no doubling on the way (a GPT-2 XL embedding is 321 MB).
                // A kept tensor passed the sink's size check, so it fits memory.
                let size = usize::try_from(size).map_err(|_| {
                    Error::Safetensors(format!("tensor of {size} bytes is too large to hold"))
                })?;
                self.current.reserve_exact(size);
            }
            self.current.extend_from_slice(&chunk[..take]);
        }
        self.filled += take as u64;
        self.settle(sink)?;
        Ok(take)
    }

    /// Hands over every tensor that is complete (empty tensors are complete without bytes).
    fn settle(&mut self, sink: &mut dyn TensorSink) -> Result<()> {
        while let Some((name, info)) = self.tensors.get(self.next) {
            if self.filled < info.byte_len() {
                break;
            }
            if self.keep[self.next] {
                sink.tensor(name, info, std::mem::take(&mut self.current))?;
            }
            self.next += 1;
            self.filled = 0;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use safetensors::tensor::TensorView;
    use safetensors::Dtype;

    use super::*;

    #[derive(Default)]
    struct Collect {
        keep_only: Option<&'static str>,
        got: Vec<(String, Vec<u8>)>,
    }

    impl TensorSink for Collect {
        fn header(&mut self, tensors: &[(String, TensorInfo)]) -> Result<Vec<bool>> {
            Ok(tensors.iter().map(|(n, _)| self.keep_only.is_none_or(|k| k == n)).collect())
        }
        fn tensor(&mut self, name: &str, _: &TensorInfo, bytes: Vec<u8>) -> Result<()> {
            self.got.push((name.to_string(), bytes));
            Ok(())
        }
    }

    fn file() -> Vec<u8> {
        let a: Vec<u8> = (0..24).collect();
        let b: Vec<u8> = (100..108).collect();
        let views = vec![
            ("a".to_string(), TensorView::new(Dtype::F32, vec![2, 3], &a).unwrap()),
            ("empty".to_string(), TensorView::new(Dtype::F32, vec![0, 4], &[]).unwrap()),
            ("b".to_string(), TensorView::new(Dtype::F16, vec![4], &b).unwrap()),
        ];
        safetensors::serialize(views, None).unwrap()
    }

    fn feed(bytes: &[u8], chunk: usize, sink: &mut Collect) -> Result<()> {
        let mut stream = TensorStream::new();
        for part in bytes.chunks(chunk) {
            stream.push(part, sink)?;
        }
        assert_eq!(stream.received(), bytes.len() as u64);
        stream.finish()
    }

    #[test]
    fn every_chunk_size_gives_the_same_tensors() {
        let bytes = file();
        for chunk in [1, 3, 8, 9, 64, bytes.len()] {
            let mut sink = Collect::default();
            feed(&bytes, chunk, &mut sink).unwrap();
            let mut got = sink.got;
            got.sort();
            assert_eq!(got.len(), 3, "chunk {chunk}");
            assert_eq!(got[0], ("a".to_string(), (0..24).collect::<Vec<u8>>()));
            assert_eq!(got[1], ("b".to_string(), (100..108).collect::<Vec<u8>>()));
            assert_eq!(got[2], ("empty".to_string(), vec![]));
        }
    }

    #[test]
    fn skipped_tensors_are_not_handed_over() {
        let mut sink = Collect { keep_only: Some("b"), ..Collect::default() };
        feed(&file(), 5, &mut sink).unwrap();
        assert_eq!(sink.got, vec![("b".to_string(), (100..108).collect::<Vec<u8>>())]);
    }

    /// GPT-2 XL's file is 6.4 GB: offsets past 4 GiB, which a 32-bit usize (wasm32) cannot hold,
    /// are read as u64, and the file's length comes out whole.
    #[test]
    fn offsets_past_four_gibibytes_are_read() {
        let header = br#"{"__metadata__":{"format":"pt"},"b":{"dtype":"F32","shape":[2],"data_offsets":[4800000000,4800000008]},"a":{"dtype":"F16","shape":[2400000000],"data_offsets":[0,4800000000]}}"#;
        let (tensors, data_len) = parse_header(header).unwrap();
        assert_eq!(data_len, 4_800_000_008);
        assert_eq!(tensors[0].0, "a");
        assert_eq!(tensors[1].1.data_offsets, (4_800_000_000, 4_800_000_008));
        let mut file = (header.len() as u64).to_le_bytes().to_vec();
        file.extend_from_slice(header);
        let mut stream = TensorStream::new();
        stream.push(&file, &mut Collect { keep_only: Some("b"), ..Collect::default() }).unwrap();
        assert_eq!(stream.expected_len(), Some(8 + header.len() as u64 + 4_800_000_008));
        // A gap, an overlap and a wrong size are refused, naming the tensor.
        for (bad, needle) in [
            (br#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#.as_slice(), "does not follow"),
            (br#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#.as_slice(), "has 8 bytes"),
            (br#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}"#.as_slice(), "does not follow"),
            (br#"{"a":{"dtype":"Q9","shape":[2],"data_offsets":[0,8]}}"#.as_slice(), "`a`"),
        ] {
            let err = parse_header(bad).unwrap_err().to_string();
            assert!(err.contains("header is not valid") && err.contains(needle), "{err}");
        }
    }

    #[test]
    fn truncated_extended_and_foreign_files_are_refused() {
        let bytes = file();
        let err = feed(&bytes[..bytes.len() - 1], 7, &mut Collect::default()).unwrap_err().to_string();
        assert!(err.contains("ended after"), "{err}");
        let err = feed(&bytes[..20], 7, &mut Collect::default()).unwrap_err().to_string();
        assert!(err.contains("inside its header"), "{err}");
        let mut longer = bytes.clone();
        longer.push(0);
        let err = feed(&longer, 7, &mut Collect::default()).unwrap_err().to_string();
        assert!(err.contains("goes on past"), "{err}");
        let err = feed(b"<!DOCTYPE html><html></html>", 4, &mut Collect::default()).unwrap_err().to_string();
        assert!(err.contains("HTML page"), "{err}");
        let err = feed(&[0xff; 64], 4, &mut Collect::default()).unwrap_err().to_string();
        assert!(err.contains("-byte header"), "{err}");
        // A header whose ranges do not match its shapes.
        let mut bad = bytes.clone();
        let header = String::from_utf8_lossy(&bad[8..]).into_owned();
        let at = header.find("[2,3]").unwrap();
        bad[8 + at..8 + at + 5].copy_from_slice(b"[3,3]");
        let err = feed(&bad, 7, &mut Collect::default()).unwrap_err().to_string();
        assert!(err.contains("header is not valid"), "{err}");
    }

    /// `__metadata__` is string → string (the format's type); any other JSON under it, a
    /// duplicated name, and names or values the size of the file are refused with a bounded
    /// message.
    #[test]
    fn headers_hold_only_the_formats_types_and_messages_stay_short() {
        for (bad, needle) in [
            (r#"{"__metadata__":{"format":{"nested":[1,2,3]}}}"#.to_string(), "must map strings to strings"),
            (r#"{"__metadata__":[1,2]}"#.to_string(), "must map strings to strings"),
            (r#"{"a":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"a":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}}"#.to_string(), "appears twice"),
        ] {
            let err = parse_header(bad.as_bytes()).expect_err(&bad).to_string();
            assert!(err.contains(needle), "{err}");
        }
        let long = "x".repeat(100_000);
        for bad in [
            format!(r#"{{"{long}":{{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}}}"#),
            format!(r#"{{"{long}":{{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}}}"#),
            format!(r#"{{"a":{{"dtype":"{long}","shape":[2],"data_offsets":[0,8]}}}}"#),
            format!(r#"{{"{long}":7}}"#),
            format!(
                r#"{{"__metadata__":{{"k":"v"}},"{long}":{{"dtype":"F32","shape":[2],"data_offsets":[0,8]}},"{long}":{{}}}}"#
            ),
        ] {
            let err = parse_header(bad.as_bytes()).expect_err("refused").to_string();
            assert!(err.len() < 600, "a {}-byte message: {}", err.len(), &err[..300]);
            assert!(err.contains("header is not valid"), "{err}");
        }
        // Metadata of strings is accepted and not taken for a tensor.
        let ok = br#"{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#;
        let (tensors, len) = parse_header(ok).unwrap();
        assert_eq!((tensors.len(), len), (1, 8));
    }

    /// A prefix claiming a 100 MB header reserves nothing: memory follows the bytes received.
    #[test]
    fn a_claimed_header_length_reserves_nothing() {
        let mut stream = TensorStream::new();
        stream.push(&99_999_999u64.to_le_bytes(), &mut Collect::default()).unwrap();
        stream.push(b"{", &mut Collect::default()).unwrap();
        assert!(stream.prefix.capacity() < 1 << 20, "{} bytes reserved", stream.prefix.capacity());
    }
}
