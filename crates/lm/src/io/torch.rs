//! PyTorch's checkpoint format — what `torch.save` writes and `torch.load(weights_only=True)`
//! reads — for exactly the values a Hugging Face Trainer checkpoint holds: dicts, lists, tuples,
//! numbers, strings, booleans, `None` and float32 tensors. Written and read without libtorch.
//!
//! The format: a zip of stored entries under one folder (`archive/`): `data.pkl`, a pickle
//! (protocol 2) of the value in which each tensor is `torch._utils._rebuild_tensor_v2(storage,
//! offset, size, stride, requires_grad, OrderedDict())` and each storage a persistent id
//! `("storage", torch.FloatStorage, key, "cpu", numel)` whose bytes are the entry `data/<key>`
//! (little-endian); `byteorder` and `version` beside them. The reader takes the opcodes torch's
//! pickler and Python's protocols 2–4 use for these values, and refuses every other global (no
//! code runs, as in `weights_only=True`), other storage types, non-contiguous views and anything
//! that points outside the file, with a message that quotes a bounded part of it.
//!
//! Why not a crate: `serde-pickle` cannot emit the globals and persistent ids torch needs, and the
//! crates that read torch files (candle's, burn-import's) only read; the subset is small.

use std::collections::HashMap;
use std::sync::Arc;

use super::zip::{stored_entries, zip_stored};
use crate::error::{excerpt, Error, Result};

/// A float32 tensor, row-major. The values are shared: a pickle may name one tensor twice.
#[derive(Debug, Clone, PartialEq)]
pub struct PtTensor {
    pub shape: Vec<usize>,
    pub data: Arc<Vec<f32>>,
}

impl PtTensor {
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Result<Self> {
        let numel = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
        if numel != Some(data.len()) {
            return Err(Error::InvalidInput(format!(
                "a tensor of shape {shape:?} cannot hold {} values",
                data.len()
            )));
        }
        Ok(Self { shape, data: Arc::new(data) })
    }
}

/// A value of the subset.
#[derive(Debug, Clone, PartialEq)]
pub enum PtValue {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<PtValue>),
    Tuple(Vec<PtValue>),
    /// Keys in insertion order (Python dicts keep it; Trainer's `param_groups` rely on it).
    Dict(Vec<(PtValue, PtValue)>),
    Tensor(PtTensor),
}

impl PtValue {
    /// A dict keyed by strings.
    pub fn dict<'a>(items: impl IntoIterator<Item = (&'a str, PtValue)>) -> PtValue {
        PtValue::Dict(items.into_iter().map(|(k, v)| (PtValue::Str(k.to_string()), v)).collect())
    }

    /// The value of a string key of a dict.
    pub fn get(&self, key: &str) -> Option<&PtValue> {
        match self {
            PtValue::Dict(items) => {
                items.iter().find(|(k, _)| matches!(k, PtValue::Str(s) if s == key)).map(|(_, v)| v)
            }
            _ => None,
        }
    }
}

// Pickle opcodes (Python's `pickletools`).
const PROTO: u8 = 0x80;
const FRAME: u8 = 0x95;
const STOP: u8 = b'.';
const MARK: u8 = b'(';
const NONE: u8 = b'N';
const NEWTRUE: u8 = 0x88;
const NEWFALSE: u8 = 0x89;
const BININT: u8 = b'J';
const BININT1: u8 = b'K';
const BININT2: u8 = b'M';
const LONG1: u8 = 0x8a;
const BINFLOAT: u8 = b'G';
const BINUNICODE: u8 = b'X';
const SHORT_BINUNICODE: u8 = 0x8c;
const EMPTY_LIST: u8 = b']';
const APPEND: u8 = b'a';
const APPENDS: u8 = b'e';
const EMPTY_TUPLE: u8 = b')';
const TUPLE: u8 = b't';
const TUPLE1: u8 = 0x85;
const TUPLE2: u8 = 0x86;
const TUPLE3: u8 = 0x87;
const EMPTY_DICT: u8 = b'}';
const SETITEM: u8 = b's';
const SETITEMS: u8 = b'u';
const GLOBAL: u8 = b'c';
const STACK_GLOBAL: u8 = 0x93;
const REDUCE: u8 = b'R';
const BINPERSID: u8 = b'Q';
const BINPUT: u8 = b'q';
const LONG_BINPUT: u8 = b'r';
const MEMOIZE: u8 = 0x94;
const BINGET: u8 = b'h';
const LONG_BINGET: u8 = b'j';

/// `value` as the bytes of a `.pt` file whose zip folder is `archive` (torch names it after the
/// file; any name loads).
pub fn to_torch_bytes(value: &PtValue, archive: &str) -> Result<Vec<u8>> {
    let mut p = Pickler { out: vec![PROTO, 2], storages: Vec::new() };
    p.value(value);
    p.out.push(STOP);
    let mut files = vec![("data.pkl".to_string(), std::mem::take(&mut p.out))];
    files.push(("byteorder".to_string(), b"little".to_vec()));
    for (key, bytes) in p.storages.into_iter().enumerate() {
        files.push((format!("data/{key}"), bytes));
    }
    files.push(("version".to_string(), b"3\n".to_vec()));
    zip_stored(archive, &files).map_err(Error::InvalidInput)
}

struct Pickler {
    out: Vec<u8>,
    /// Each tensor's bytes, keyed by its index.
    storages: Vec<Vec<u8>>,
}

impl Pickler {
    fn int(&mut self, v: i64) {
        if (0..256).contains(&v) {
            self.out.extend([BININT1, v as u8]);
        } else if (0..65536).contains(&v) {
            self.out.push(BININT2);
            self.out.extend((v as u16).to_le_bytes());
        } else if let Ok(v) = i32::try_from(v) {
            self.out.push(BININT);
            self.out.extend(v.to_le_bytes());
        } else {
            // Two's complement, little-endian, 8 bytes (pickle's LONG1 takes any length).
            self.out.extend([LONG1, 8]);
            self.out.extend(v.to_le_bytes());
        }
    }

    fn str(&mut self, s: &str) {
        self.out.push(BINUNICODE);
        self.out.extend((s.len() as u32).to_le_bytes());
        self.out.extend(s.as_bytes());
    }

    fn global(&mut self, module: &str, name: &str) {
        self.out.push(GLOBAL);
        self.out.extend(format!("{module}\n{name}\n").as_bytes());
    }

    fn value(&mut self, v: &PtValue) {
        match v {
            PtValue::None => self.out.push(NONE),
            PtValue::Bool(b) => self.out.push(if *b { NEWTRUE } else { NEWFALSE }),
            PtValue::Int(i) => self.int(*i),
            PtValue::Float(f) => {
                self.out.push(BINFLOAT);
                self.out.extend(f.to_be_bytes());
            }
            PtValue::Str(s) => self.str(s),
            PtValue::List(items) => {
                self.out.push(EMPTY_LIST);
                if !items.is_empty() {
                    self.out.push(MARK);
                    items.iter().for_each(|x| self.value(x));
                    self.out.push(APPENDS);
                }
            }
            PtValue::Tuple(items) if items.is_empty() => self.out.push(EMPTY_TUPLE),
            PtValue::Tuple(items) => {
                self.out.push(MARK);
                items.iter().for_each(|x| self.value(x));
                self.out.push(TUPLE);
            }
            PtValue::Dict(items) => {
                self.out.push(EMPTY_DICT);
                if !items.is_empty() {
                    self.out.push(MARK);
                    for (k, x) in items {
                        self.value(k);
                        self.value(x);
                    }
                    self.out.push(SETITEMS);
                }
            }
            PtValue::Tensor(t) => self.tensor(t),
        }
    }

    /// `_rebuild_tensor_v2(storage, 0, size, stride, False, OrderedDict())`, as torch writes it.
    fn tensor(&mut self, t: &PtTensor) {
        let key = self.storages.len();
        self.global("torch._utils", "_rebuild_tensor_v2");
        self.out.push(MARK);
        self.out.push(MARK);
        self.str("storage");
        self.global("torch", "FloatStorage");
        self.str(&key.to_string());
        self.str("cpu");
        self.int(t.data.len() as i64);
        self.out.push(TUPLE);
        self.out.push(BINPERSID);
        self.int(0);
        let shape = PtValue::Tuple(t.shape.iter().map(|&d| PtValue::Int(d as i64)).collect());
        self.value(&shape);
        let strides = row_major_strides(&t.shape);
        self.value(&PtValue::Tuple(strides.into_iter().map(|s| PtValue::Int(s as i64)).collect()));
        self.out.push(NEWFALSE);
        self.global("collections", "OrderedDict");
        self.out.push(EMPTY_TUPLE);
        self.out.push(REDUCE);
        self.out.push(TUPLE);
        self.out.push(REDUCE);
        self.storages.push(t.data.iter().flat_map(|v| v.to_le_bytes()).collect());
    }
}

fn row_major_strides(shape: &[usize]) -> Vec<usize> {
    let mut strides = vec![1usize; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        strides[i] = strides[i + 1].saturating_mul(shape[i + 1]);
    }
    strides
}

/// The value a `.pt` file holds (`torch.load(weights_only=True)`'s subset, float32 tensors).
pub fn from_torch_bytes(bytes: &[u8]) -> Result<PtValue> {
    let bad = |m: String| Error::InvalidInput(format!("not a PyTorch checkpoint we read: {m}"));
    let entries = stored_entries(bytes).map_err(bad)?;
    let (pickle_name, pickle) = entries
        .iter()
        .find(|(name, _)| name == "data.pkl" || name.ends_with("/data.pkl"))
        .ok_or_else(|| bad("it has no data.pkl (a file from torch.save before 1.6?)".into()))?;
    let prefix = &pickle_name[..pickle_name.len() - "data.pkl".len()];
    if let Some((_, order)) = entries.iter().find(|(n, _)| *n == format!("{prefix}byteorder")) {
        if *order != b"little" {
            return Err(bad(format!("its byte order is `{}`", excerpt(&String::from_utf8_lossy(order)))));
        }
    }
    let storages: HashMap<&str, &[u8]> = entries
        .iter()
        .filter_map(|(n, d)| n.strip_prefix(prefix)?.strip_prefix("data/").map(|k| (k, *d)))
        .collect();
    Unpickler { input: pickle, at: 0, stack: Vec::new(), marks: Vec::new(), memo: HashMap::new(), storages }
        .run()
        .map_err(|e| match e {
            Error::InvalidInput(m) => bad(m),
            other => other,
        })
}

/// What the unpickler's stack holds besides finished values.
#[derive(Debug, Clone)]
enum Item {
    Value(PtValue),
    Global(Global),
    /// A storage named by a persistent id: its key and element count.
    Storage(String, usize),
    /// A tuple holding a global or a storage: a persistent id, or a tensor's arguments.
    Mixed(Vec<Item>),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Global {
    RebuildTensorV2,
    FloatStorage,
    OrderedDict,
}

struct Unpickler<'a> {
    input: &'a [u8],
    at: usize,
    stack: Vec<Item>,
    marks: Vec<usize>,
    memo: HashMap<u32, Item>,
    storages: HashMap<&'a str, &'a [u8]>,
}

fn invalid(m: impl Into<String>) -> Error {
    Error::InvalidInput(m.into())
}

impl<'a> Unpickler<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.input.len());
        let end = end.ok_or_else(|| invalid("the pickle ends in the middle of a value"))?;
        let bytes = &self.input[self.at..end];
        self.at = end;
        Ok(bytes)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn line(&mut self) -> Result<&'a str> {
        let rest = &self.input[self.at..];
        let end = rest
            .iter()
            .take(256)
            .position(|&b| b == b'\n')
            .ok_or_else(|| invalid("a global's name is cut"))?;
        let line = std::str::from_utf8(&rest[..end]).map_err(|_| invalid("a global's name is not UTF-8"))?;
        self.at += end + 1;
        Ok(line)
    }

    fn pop(&mut self) -> Result<Item> {
        if self.marks.last().is_some_and(|&m| m >= self.stack.len()) {
            return Err(invalid("a value is missing before a mark"));
        }
        self.stack.pop().ok_or_else(|| invalid("the pickle pops an empty stack"))
    }

    fn pop_value(&mut self) -> Result<PtValue> {
        match self.pop()? {
            Item::Value(v) => Ok(v),
            other => Err(invalid(format!("{} where a value belongs", describe(&other)))),
        }
    }

    /// The items since the last mark, which is removed.
    fn pop_mark(&mut self) -> Result<Vec<Item>> {
        let mark = self.marks.pop().ok_or_else(|| invalid("no mark to pop to"))?;
        Ok(self.stack.split_off(mark.min(self.stack.len())))
    }

    fn values(items: Vec<Item>) -> Result<Vec<PtValue>> {
        items
            .into_iter()
            .map(|i| match i {
                Item::Value(v) => Ok(v),
                other => Err(invalid(format!("{} inside a container", describe(&other)))),
            })
            .collect()
    }

    fn top_container(&mut self) -> Result<&mut PtValue> {
        match self.stack.last_mut() {
            Some(Item::Value(v @ (PtValue::List(_) | PtValue::Dict(_)))) => Ok(v),
            _ => Err(invalid("items appended to something that is not a list or dict")),
        }
    }

    fn global(module: &str, name: &str) -> Result<Global> {
        match (module, name) {
            ("torch._utils", "_rebuild_tensor_v2") => Ok(Global::RebuildTensorV2),
            ("torch", "FloatStorage") => Ok(Global::FloatStorage),
            ("collections", "OrderedDict") => Ok(Global::OrderedDict),
            ("torch", storage) if storage.ends_with("Storage") => Err(invalid(format!(
                "a tensor is stored as torch.{}; only float32 tensors (FloatStorage) are read",
                excerpt(storage)
            ))),
            _ => {
                Err(invalid(format!("it names `{}.{}`, which is not loaded", excerpt(module), excerpt(name))))
            }
        }
    }

    fn run(mut self) -> Result<PtValue> {
        loop {
            let op = self.u8()?;
            match op {
                PROTO => {
                    let v = self.u8()?;
                    if v > 5 {
                        return Err(invalid(format!("pickle protocol {v} is unknown")));
                    }
                }
                FRAME => {
                    self.take(8)?;
                }
                STOP => {
                    let v = self.pop_value()?;
                    return if self.stack.is_empty() {
                        Ok(v)
                    } else {
                        Err(invalid("values are left after the end"))
                    };
                }
                MARK => self.marks.push(self.stack.len()),
                NONE => self.stack.push(Item::Value(PtValue::None)),
                NEWTRUE => self.stack.push(Item::Value(PtValue::Bool(true))),
                NEWFALSE => self.stack.push(Item::Value(PtValue::Bool(false))),
                BININT => {
                    let v = self.u32()? as i32;
                    self.stack.push(Item::Value(PtValue::Int(v as i64)));
                }
                BININT1 => {
                    let v = self.u8()?;
                    self.stack.push(Item::Value(PtValue::Int(v as i64)));
                }
                BININT2 => {
                    let b = self.take(2)?;
                    self.stack.push(Item::Value(PtValue::Int(u16::from_le_bytes([b[0], b[1]]) as i64)));
                }
                LONG1 => {
                    let n = self.u8()? as usize;
                    let b = self.take(n)?;
                    if n > 8 {
                        return Err(invalid(format!("an integer of {n} bytes is beyond 64 bits")));
                    }
                    let fill = if b.last().is_some_and(|&x| x & 0x80 != 0) { 0xff } else { 0 };
                    let mut eight = [fill; 8];
                    eight[..n].copy_from_slice(b);
                    self.stack.push(Item::Value(PtValue::Int(i64::from_le_bytes(eight))));
                }
                BINFLOAT => {
                    let b = self.take(8)?;
                    let v = f64::from_be_bytes(b.try_into().expect("eight bytes"));
                    self.stack.push(Item::Value(PtValue::Float(v)));
                }
                BINUNICODE | SHORT_BINUNICODE => {
                    let n = if op == BINUNICODE { self.u32()? as usize } else { self.u8()? as usize };
                    let b = self.take(n)?;
                    let s = std::str::from_utf8(b).map_err(|_| invalid("a string is not UTF-8"))?;
                    self.stack.push(Item::Value(PtValue::Str(s.to_string())));
                }
                EMPTY_LIST => self.stack.push(Item::Value(PtValue::List(Vec::new()))),
                EMPTY_TUPLE => self.stack.push(Item::Value(PtValue::Tuple(Vec::new()))),
                EMPTY_DICT => self.stack.push(Item::Value(PtValue::Dict(Vec::new()))),
                APPEND => {
                    let v = self.pop_value()?;
                    match self.top_container()? {
                        PtValue::List(items) => items.push(v),
                        _ => return Err(invalid("APPEND to a dict")),
                    }
                }
                APPENDS => {
                    let items = Self::values(self.pop_mark()?)?;
                    match self.top_container()? {
                        PtValue::List(list) => list.extend(items),
                        _ => return Err(invalid("APPENDS to a dict")),
                    }
                }
                SETITEM => {
                    let v = self.pop_value()?;
                    let k = self.pop_value()?;
                    match self.top_container()? {
                        PtValue::Dict(d) => d.push((k, v)),
                        _ => return Err(invalid("SETITEM on a list")),
                    }
                }
                SETITEMS => {
                    let items = Self::values(self.pop_mark()?)?;
                    if items.len() % 2 != 0 {
                        return Err(invalid("SETITEMS with a key but no value"));
                    }
                    let mut it = items.into_iter();
                    let pairs: Vec<(PtValue, PtValue)> =
                        std::iter::from_fn(|| Some((it.next()?, it.next()?))).collect();
                    match self.top_container()? {
                        PtValue::Dict(d) => d.extend(pairs),
                        _ => return Err(invalid("SETITEMS on a list")),
                    }
                }
                TUPLE => {
                    let items = self.pop_mark()?;
                    self.push_tuple(items);
                }
                TUPLE1 | TUPLE2 | TUPLE3 => {
                    let n = (op - TUPLE1 + 1) as usize;
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(self.pop()?);
                    }
                    items.reverse();
                    self.push_tuple(items);
                }
                GLOBAL => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.stack.push(Item::Global(Self::global(module, name)?));
                }
                STACK_GLOBAL => {
                    let name = self.pop_value()?;
                    let module = self.pop_value()?;
                    let (PtValue::Str(module), PtValue::Str(name)) = (module, name) else {
                        return Err(invalid("STACK_GLOBAL of something that is not a name"));
                    };
                    self.stack.push(Item::Global(Self::global(&module, &name)?));
                }
                BINPERSID => {
                    let pid = self.pop()?;
                    let storage = self.persistent(pid)?;
                    self.stack.push(storage);
                }
                REDUCE => {
                    let args = self.pop()?;
                    let func = self.pop()?;
                    let v = self.reduce(func, args)?;
                    self.stack.push(Item::Value(v));
                }
                BINPUT | LONG_BINPUT | MEMOIZE => {
                    let key = match op {
                        BINPUT => self.u8()? as u32,
                        LONG_BINPUT => self.u32()?,
                        _ => self.memo.len() as u32,
                    };
                    let top = self.stack.last().ok_or_else(|| invalid("memoizing an empty stack"))?.clone();
                    self.memo.insert(key, top);
                }
                BINGET | LONG_BINGET => {
                    let key = if op == BINGET { self.u8()? as u32 } else { self.u32()? };
                    let v = self
                        .memo
                        .get(&key)
                        .ok_or_else(|| invalid(format!("memo {key} was never stored")))?
                        .clone();
                    self.stack.push(v);
                }
                other => {
                    return Err(invalid(format!(
                        "pickle opcode 0x{other:02x} at byte {} is not one a checkpoint of tensors uses",
                        self.at - 1
                    )))
                }
            }
        }
    }

    /// A tuple of values, or of items among which a global or a storage.
    fn push_tuple(&mut self, items: Vec<Item>) {
        if items.iter().all(|i| matches!(i, Item::Value(_))) {
            let values = items
                .into_iter()
                .filter_map(|i| match i {
                    Item::Value(v) => Some(v),
                    _ => None,
                })
                .collect();
            self.stack.push(Item::Value(PtValue::Tuple(values)));
        } else {
            self.stack.push(Item::Mixed(items));
        }
    }

    /// `("storage", torch.FloatStorage, key, location, numel)`, checked against its entry.
    fn persistent(&mut self, pid: Item) -> Result<Item> {
        let Item::Mixed(items) = pid else {
            return Err(invalid("a persistent id that is not a storage"));
        };
        match items.as_slice() {
            [Item::Value(PtValue::Str(kind)), Item::Global(Global::FloatStorage), Item::Value(PtValue::Str(key)), Item::Value(PtValue::Str(_)), Item::Value(PtValue::Int(numel))]
                if kind == "storage" =>
            {
                let numel = usize::try_from(*numel).map_err(|_| invalid("a storage of negative size"))?;
                let bytes = self
                    .storages
                    .get(key.as_str())
                    .ok_or_else(|| invalid(format!("the storage `data/{}` is missing", excerpt(key))))?;
                if numel.checked_mul(4) != Some(bytes.len()) {
                    return Err(invalid(format!(
                        "the storage `data/{}` holds {} bytes, not {numel} float32 values",
                        excerpt(key),
                        bytes.len()
                    )));
                }
                Ok(Item::Storage(key.clone(), numel))
            }
            _ => Err(invalid("a persistent id that is not a float32 storage")),
        }
    }

    fn reduce(&mut self, func: Item, args: Item) -> Result<PtValue> {
        match (func, args) {
            (Item::Global(Global::OrderedDict), Item::Value(PtValue::Tuple(args))) if args.is_empty() => {
                Ok(PtValue::Dict(Vec::new()))
            }
            (Item::Global(Global::RebuildTensorV2), Item::Mixed(args)) => self.rebuild_tensor(args),
            _ => Err(invalid("REDUCE of something other than a tensor or an OrderedDict")),
        }
    }

    /// `_rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata])` of
    /// a contiguous float32 tensor: its values copied out of the storage.
    fn rebuild_tensor(&mut self, args: Vec<Item>) -> Result<PtValue> {
        let index = |v: &PtValue| match v {
            PtValue::Int(i) => usize::try_from(*i).map_err(|_| invalid("a negative offset, size or stride")),
            _ => Err(invalid("a tensor's offset, size or stride is not an integer")),
        };
        let indices = |v: &Item| match v {
            Item::Value(PtValue::Tuple(xs)) => xs.iter().map(index).collect::<Result<Vec<usize>>>(),
            _ => Err(invalid("a tensor's size or stride is not a tuple")),
        };
        let [Item::Storage(key, total), Item::Value(offset), size, stride, ..] = args.as_slice() else {
            return Err(invalid("_rebuild_tensor_v2 without a storage, an offset, a size and a stride"));
        };
        let (offset, shape, stride) = (index(offset)?, indices(size)?, indices(stride)?);
        let numel = shape
            .iter()
            .try_fold(1usize, |n, &d| n.checked_mul(d))
            .ok_or_else(|| invalid("a tensor's size overflows"))?;
        if stride.len() != shape.len() || (numel > 1 && stride != row_major_strides(&shape)) {
            return Err(invalid(format!(
                "a tensor of shape {:?} is a strided view (stride {:?})",
                &shape[..shape.len().min(8)],
                &stride[..stride.len().min(8)]
            )));
        }
        if offset.checked_add(numel).is_none_or(|end| end > *total) {
            return Err(invalid(format!(
                "a tensor of {numel} values at offset {offset} overruns its storage of {total}"
            )));
        }
        let bytes = &self.storages[key.as_str()][offset * 4..(offset + numel) * 4];
        let data = bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        Ok(PtValue::Tensor(PtTensor { shape, data: Arc::new(data) }))
    }
}

fn describe(item: &Item) -> &'static str {
    match item {
        Item::Value(_) => "a value",
        Item::Global(_) => "a global",
        Item::Storage(..) => "a storage",
        Item::Mixed(_) => "a tuple of globals",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn optimizer_like() -> PtValue {
        let t = |shape: Vec<usize>, seed: f32| {
            let n = shape.iter().product::<usize>();
            PtValue::Tensor(PtTensor::new(shape, (0..n).map(|i| seed + i as f32 * 0.25).collect()).unwrap())
        };
        let state = PtValue::Dict(vec![
            (
                PtValue::Int(0),
                PtValue::dict([
                    ("step", t(vec![], 3.0)),
                    ("exp_avg", t(vec![2, 3], -1.0)),
                    ("exp_avg_sq", t(vec![2, 3], 0.5)),
                ]),
            ),
            (PtValue::Int(1), PtValue::dict([("step", t(vec![], 3.0)), ("exp_avg", t(vec![4], 2.0))])),
        ]);
        let group = PtValue::dict([
            ("lr", PtValue::Float(5e-5)),
            ("betas", PtValue::Tuple(vec![PtValue::Float(0.9), PtValue::Float(0.999)])),
            ("eps", PtValue::Float(1e-8)),
            ("weight_decay", PtValue::Float(0.0)),
            ("amsgrad", PtValue::Bool(false)),
            ("foreach", PtValue::None),
            ("maximize", PtValue::Bool(false)),
            ("params", PtValue::List(vec![PtValue::Int(0), PtValue::Int(1)])),
            ("name", PtValue::Str("decay · ünïcode".into())),
            ("big", PtValue::Int(-(1i64 << 40))),
            ("mid", PtValue::Int(70_000)),
        ]);
        PtValue::dict([("state", state), ("param_groups", PtValue::List(vec![group]))])
    }

    /// With `HEARTH_TORCH_OUT=FILE` the file is also written there, for
    /// `torch.load(FILE, weights_only=True)` to open (DEVELOPERS.md has the check).
    #[test]
    fn what_is_written_reads_back_the_same() {
        let v = optimizer_like();
        let bytes = to_torch_bytes(&v, "optimizer").unwrap();
        if let Ok(path) = std::env::var("HEARTH_TORCH_OUT") {
            std::fs::write(path, &bytes).unwrap();
        }
        assert_eq!(from_torch_bytes(&bytes).unwrap(), v);
        let names: Vec<String> = stored_entries(&bytes).unwrap().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names[0], "optimizer/data.pkl");
        assert!(
            names.contains(&"optimizer/data/4".to_string())
                && names.contains(&"optimizer/version".to_string())
        );
    }

    /// Every truncation of the pickle and thousands of mutated files are read or refused with a
    /// short message, never a panic or a hang.
    #[test]
    fn damaged_files_are_refused_with_short_messages() {
        let bytes = to_torch_bytes(&optimizer_like(), "archive").unwrap();
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n.max(1) as u64) as usize
        };
        for i in 0..4000 {
            let mut b = bytes.clone();
            for _ in 0..1 + next(4) {
                let at = next(b.len());
                b[at] = next(256) as u8;
            }
            if i % 7 == 0 {
                b.truncate(next(b.len()));
            }
            if let Err(e) = from_torch_bytes(&b) {
                assert!(e.to_string().len() < 400, "{e}");
            }
        }
    }

    #[test]
    fn code_and_other_storages_are_refused_by_name() {
        let pickle = |body: &[u8]| {
            let mut p = vec![PROTO, 2];
            p.extend_from_slice(body);
            p.push(STOP);
            zip_stored("archive", &[("data.pkl".to_string(), p)]).unwrap()
        };
        let err = from_torch_bytes(&pickle(b"cos\nsystem\n(X\x02\x00\x00\x00lst")).unwrap_err().to_string();
        assert!(err.contains("os.system"), "{err}");
        let err = from_torch_bytes(&pickle(b"ctorch\nHalfStorage\n")).unwrap_err().to_string();
        assert!(err.contains("HalfStorage") && err.contains("float32"), "{err}");
        let err = from_torch_bytes(&pickle(&[0xffu8])).unwrap_err().to_string();
        assert!(err.contains("0xff"), "{err}");
        assert!(from_torch_bytes(b"PK not really").is_err());
    }
}
