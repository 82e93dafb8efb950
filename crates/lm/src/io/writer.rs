//! Writing safetensors one tensor at a time. The header is computed from the names and shapes
//! first, the file's buffer is reserved once — fallibly, so a checkpoint that does not fit in
//! memory is an error and not an abort — and each tensor's values are appended as they are read
//! from the device, then dropped. `safetensors::serialize` needs every tensor's bytes at once:
//! with the values read as `f32`, then as bytes, then the file, a checkpoint held ~7× the f32
//! weights at its peak (the weights' and the two moments' files), which trapped a tab's first
//! autosave that the budget had admitted (issue 31). Now the peak is the files plus one tensor.
//!
//! The bytes equal `safetensors::serialize`'s for the same tensors (a unit test checks it):
//! tensors sorted by name (all `F32`), the `__metadata__` entry first, the header padded with
//! spaces to 8 bytes.

use std::collections::BTreeMap;

use safetensors::tensor::TensorInfo;
use safetensors::Dtype;
use serde::ser::{SerializeMap, Serializer};

use crate::error::{Error, Result};

/// A safetensors file being filled, tensor by tensor, in the order of [`Writer::order`].
pub struct Writer {
    out: Vec<u8>,
    /// (name, element count) in file order; `next` is the one to push.
    entries: Vec<(String, usize)>,
    next: usize,
}

/// The file's size for these tensors and metadata: what [`Writer::new`] reserves. Callers count
/// it against a memory budget before reading anything.
pub fn file_size(entries: &[(String, Vec<usize>)], metadata: &[(&str, &str)]) -> Result<usize> {
    let (header, data) = header(entries, metadata)?;
    Ok(8 + header.len() + data)
}

fn elements(shape: &[usize]) -> Result<usize> {
    shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d)).ok_or_else(|| {
        Error::Safetensors(format!(
            "a tensor of shape {:?} has more elements than can be counted",
            &shape[..shape.len().min(8)]
        ))
    })
}

/// The JSON header (padded) and the data's length, for `entries` sorted by name.
fn header(entries: &[(String, Vec<usize>)], metadata: &[(&str, &str)]) -> Result<(Vec<u8>, usize)> {
    let mut sorted: Vec<&(String, Vec<usize>)> = entries.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let json = |e: serde_json::Error| Error::Safetensors(e.to_string());
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::new(&mut out);
    let extra = usize::from(!metadata.is_empty());
    let mut map = ser.serialize_map(Some(sorted.len() + extra)).map_err(json)?;
    if !metadata.is_empty() {
        let metadata: BTreeMap<&str, &str> = metadata.iter().copied().collect();
        map.serialize_entry("__metadata__", &metadata).map_err(json)?;
    }
    let mut offset = 0usize;
    for (name, shape) in sorted {
        let bytes =
            elements(shape)?
                .checked_mul(4)
                .and_then(|b| offset.checked_add(b).map(|end| (b, end)))
                .ok_or_else(|| Error::Safetensors("the tensors are larger than memory can address".into()))?;
        let info = TensorInfo { dtype: Dtype::F32, shape: shape.clone(), data_offsets: (offset, bytes.1) };
        map.serialize_entry(name, &info).map_err(json)?;
        offset = bytes.1;
    }
    map.end().map_err(json)?;
    out.resize(out.len().next_multiple_of(8), b' ');
    Ok((out, offset))
}

impl Writer {
    /// A file for f32 tensors `entries` (name, shape), with string `metadata`. The whole file is
    /// reserved here: a file too large for memory is an error before any tensor is read.
    pub fn new(entries: &[(String, Vec<usize>)], metadata: &[(&str, &str)]) -> Result<Self> {
        let (header, data) = header(entries, metadata)?;
        let size = 8 + header.len() + data;
        let mut out = Vec::new();
        out.try_reserve_exact(size).map_err(|_| {
            Error::InvalidInput(format!(
                "writing the weights needs {} more memory than is free",
                crate::model::memory::human_bytes(size as u128)
            ))
        })?;
        out.extend_from_slice(&(header.len() as u64).to_le_bytes());
        out.extend_from_slice(&header);
        let mut order: Vec<(String, usize)> =
            entries.iter().map(|(n, s)| Ok((n.clone(), elements(s)?))).collect::<Result<_>>()?;
        order.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(Self { out, entries: order, next: 0 })
    }

    /// The names in the order their values must be pushed.
    pub fn order(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(n, _)| n.as_str())
    }

    /// Appends the next tensor's values (row-major).
    pub fn push(&mut self, values: &[f32]) -> Result<()> {
        let Some((name, count)) = self.entries.get(self.next) else {
            return Err(Error::Safetensors("more tensors pushed than the header lists".into()));
        };
        if values.len() != *count {
            return Err(Error::Safetensors(format!(
                "`{name}` has {} values, its shape says {count}",
                values.len()
            )));
        }
        for v in values {
            self.out.extend_from_slice(&v.to_le_bytes());
        }
        self.next += 1;
        Ok(())
    }

    /// The file, once every tensor is in.
    pub fn finish(self) -> Result<Vec<u8>> {
        if let Some((name, _)) = self.entries.get(self.next) {
            return Err(Error::Safetensors(format!("`{name}` was never written")));
        }
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use safetensors::tensor::TensorView;

    #[test]
    fn bytes_equal_safetensors_serialize() {
        let tensors: Vec<(String, Vec<usize>, Vec<f32>)> = vec![
            ("wte.weight".into(), vec![3, 2], vec![1.0, -2.0, 3.5, 0.0, f32::MIN_POSITIVE, 7.25]),
            ("a.bias".into(), vec![2], vec![0.5, -0.5]),
            ("h.0.ln_1.weight\"odd\"".into(), vec![1, 1, 1], vec![9.0]),
        ];
        let bytes: Vec<Vec<u8>> =
            tensors.iter().map(|(_, _, v)| v.iter().flat_map(|x| x.to_le_bytes()).collect()).collect();
        let views = tensors
            .iter()
            .zip(&bytes)
            .map(|((n, s, _), b)| (n.clone(), TensorView::new(Dtype::F32, s.clone(), b).unwrap()));
        let metadata = Some(std::collections::HashMap::from([("format".to_string(), "pt".to_string())]));
        let want = safetensors::serialize(views, metadata).unwrap();
        let entries: Vec<(String, Vec<usize>)> =
            tensors.iter().map(|(n, s, _)| (n.clone(), s.clone())).collect();
        let mut writer = Writer::new(&entries, &[("format", "pt")]).unwrap();
        let order: Vec<String> = writer.order().map(String::from).collect();
        for name in order {
            let (_, _, values) = tensors.iter().find(|(n, _, _)| *n == name).unwrap();
            writer.push(values).unwrap();
        }
        let got = writer.finish().unwrap();
        assert_eq!(got, want);
        assert_eq!(file_size(&entries, &[("format", "pt")]).unwrap(), want.len());
    }

    #[test]
    fn a_wrong_count_or_a_missing_tensor_is_an_error() {
        let entries = vec![("a".to_string(), vec![2]), ("b".to_string(), vec![1])];
        let mut writer = Writer::new(&entries, &[]).unwrap();
        assert!(writer.push(&[1.0]).is_err());
        writer.push(&[1.0, 2.0]).unwrap();
        assert!(writer.finish().is_err());
    }

    #[test]
    fn a_file_larger_than_memory_is_refused_before_reading() {
        let entries = vec![("huge".to_string(), vec![1 << 40, 1 << 20])];
        assert!(Writer::new(&entries, &[]).is_err());
    }
}
