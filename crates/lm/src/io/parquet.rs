//! Apache Parquet, written: the columns a hand-off's data needs (`io::handoff`) — a required
//! int32 column, or a column of int32 lists (token windows, `list<int32>` as `datasets`,
//! pandas and pyarrow read it) — in one row group, PLAIN-encoded and uncompressed.
//!
//! Why by hand: the `parquet` crate brings the Arrow stack (dozens of crates, minutes of every
//! fresh CI build) for two column kinds. The format is the file's magic `PAR1`, the pages of each
//! column, then the footer (`FileMetaData`) in Thrift's compact protocol and its length. A list
//! column's pages carry repetition levels (0 starts a row, 1 continues it) and definition levels
//! (all 1: no list is empty or null) in the RLE/bit-packing hybrid, as runs.

use crate::error::{invalid, Result};

/// One column of a file; every column holds the same number of rows.
pub enum Column<'a> {
    /// `required int32`.
    Int32 { name: &'a str, values: Vec<i32> },
    /// `required group (LIST) { repeated group list { required int32 element } }`: one list per
    /// row, none empty (token ids, each at most `i32::MAX`).
    Int32Lists { name: &'a str, rows: Vec<&'a [u32]> },
    /// The same type from signed values (a masked LM's labels, -100 where nothing is predicted).
    SignedLists { name: &'a str, rows: Vec<Vec<i32>> },
}

impl Column<'_> {
    fn name(&self) -> &str {
        match self {
            Column::Int32 { name, .. }
            | Column::Int32Lists { name, .. }
            | Column::SignedLists { name, .. } => name,
        }
    }

    fn rows(&self) -> usize {
        match self {
            Column::Int32 { values, .. } => values.len(),
            Column::Int32Lists { rows, .. } => rows.len(),
            Column::SignedLists { rows, .. } => rows.len(),
        }
    }

    /// Leaf values (one per row, or every element of every list).
    fn leaf_values(&self) -> usize {
        match self {
            Column::Int32 { values, .. } => values.len(),
            Column::Int32Lists { rows, .. } => rows.iter().map(|r| r.len()).sum(),
            Column::SignedLists { rows, .. } => rows.iter().map(|r| r.len()).sum(),
        }
    }
}

/// Leaf values per data page: pages hold whole rows, and a page's sizes are 32-bit in the format.
const PAGE_VALUES: usize = 1 << 20;

const PLAIN: i32 = 0;
const RLE: i32 = 3;
const INT32: i32 = 1;
const REQUIRED: i32 = 0;
const REPEATED: i32 = 2;
const CONVERTED_LIST: i32 = 3;

/// The file's bytes for `columns` (at least one; equal row counts; no empty list).
pub fn to_parquet(columns: &[Column]) -> Result<Vec<u8>> {
    let rows = columns.first().map(Column::rows).ok_or_else(|| invalid!("a parquet file needs a column"))?;
    if let Some(c) = columns.iter().find(|c| c.rows() != rows) {
        return Err(invalid!("column `{}` has {} rows where the first has {rows}", c.name(), c.rows()));
    }
    let mut file = b"PAR1".to_vec();
    let mut chunks = Vec::with_capacity(columns.len());
    for column in columns {
        let start = file.len();
        match column {
            Column::Int32 { values, .. } => {
                for chunk in values.chunks(PAGE_VALUES) {
                    let body: Vec<u8> = chunk.iter().flat_map(|v| v.to_le_bytes()).collect();
                    write_page(&mut file, chunk.len(), &body)?;
                }
            }
            Column::Int32Lists { name, rows } => write_lists(&mut file, name, rows, |v: u32| {
                i32::try_from(v).map_err(|_| invalid!("token id {v} is over int32"))
            })?,
            Column::SignedLists { name, rows } => write_lists(&mut file, name, rows, Ok)?,
        }
        chunks.push((start, file.len() - start));
    }
    let footer = file_metadata(columns, rows, &chunks);
    let footer_len = u32::try_from(footer.len()).map_err(|_| invalid!("the parquet footer is over 4 GB"))?;
    file.extend_from_slice(&footer);
    file.extend_from_slice(&footer_len.to_le_bytes());
    file.extend_from_slice(b"PAR1");
    Ok(file)
}

/// A data page (v1) of `values` level entries: its header, then `body`.
fn write_page(file: &mut Vec<u8>, values: usize, body: &[u8]) -> Result<()> {
    let size = i32::try_from(body.len()).map_err(|_| invalid!("a parquet page is over 2 GB"))?;
    let values = i32::try_from(values).map_err(|_| invalid!("a parquet page holds too many values"))?;
    let mut t = Thrift::default();
    t.i32(1, 0); // type: DATA_PAGE
    t.i32(2, size); // uncompressed_page_size
    t.i32(3, size); // compressed_page_size (no compression)
    t.begin_struct(5); // data_page_header
    t.i32(1, values);
    t.i32(2, PLAIN);
    t.i32(3, RLE);
    t.i32(4, RLE);
    t.end_struct();
    t.stop();
    file.extend_from_slice(&t.out);
    file.extend_from_slice(body);
    Ok(())
}

/// A list column's pages: whole rows up to a page's budget each (a longer row goes alone).
fn write_lists<T: Copy, R: AsRef<[T]>>(
    file: &mut Vec<u8>,
    name: &str,
    rows: &[R],
    value: impl Fn(T) -> Result<i32> + Copy,
) -> Result<()> {
    if rows.iter().any(|r| r.as_ref().is_empty()) {
        return Err(invalid!("column `{name}` has an empty list"));
    }
    let mut first = 0;
    while first < rows.len() {
        let mut last = first + 1;
        let mut values = rows[first].as_ref().len();
        while last < rows.len() && values + rows[last].as_ref().len() <= PAGE_VALUES {
            values += rows[last].as_ref().len();
            last += 1;
        }
        write_page(file, values, &list_page_body(&rows[first..last], values, value)?)?;
        first = last;
    }
    Ok(())
}

/// A list column's page body: repetition levels, definition levels (each length-prefixed),
/// then the values.
fn list_page_body<T: Copy, R: AsRef<[T]>>(
    rows: &[R],
    values: usize,
    value: impl Fn(T) -> Result<i32>,
) -> Result<Vec<u8>> {
    let mut repetition = Vec::new();
    for row in rows {
        rle_run(&mut repetition, 1, 0);
        if row.as_ref().len() > 1 {
            rle_run(&mut repetition, row.as_ref().len() - 1, 1);
        }
    }
    let mut definition = Vec::new();
    rle_run(&mut definition, values, 1);
    let mut body = Vec::with_capacity(8 + repetition.len() + definition.len() + 4 * values);
    for levels in [&repetition, &definition] {
        let len = u32::try_from(levels.len()).map_err(|_| invalid!("parquet levels are over 4 GB"))?;
        body.extend_from_slice(&len.to_le_bytes());
        body.extend_from_slice(levels);
    }
    for row in rows {
        for &v in row.as_ref() {
            body.extend_from_slice(&value(v)?.to_le_bytes());
        }
    }
    Ok(body)
}

/// One RLE run of `count` copies of a bit-width-1 level: the header `count << 1` as a varint,
/// then the value in one byte.
fn rle_run(out: &mut Vec<u8>, count: usize, value: u8) {
    varint(out, (count as u64) << 1);
    out.push(value);
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// `FileMetaData`: the schema, one row group, each column chunk's place and size.
fn file_metadata(columns: &[Column], rows: usize, chunks: &[(usize, usize)]) -> Vec<u8> {
    let mut t = Thrift::default();
    t.i32(1, 1); // version
    let elements: usize =
        1 + columns.iter().map(|c| if matches!(c, Column::Int32 { .. }) { 1 } else { 3 }).sum::<usize>();
    t.begin_list(2, STRUCT, elements); // schema, depth first
    t.begin_element();
    t.binary(4, b"schema");
    t.i32(5, columns.len() as i32);
    t.end_struct();
    for column in columns {
        match column {
            Column::Int32 { name, .. } => {
                t.begin_element();
                t.i32(1, INT32);
                t.i32(3, REQUIRED);
                t.binary(4, name.as_bytes());
                t.end_struct();
            }
            Column::Int32Lists { name, .. } | Column::SignedLists { name, .. } => {
                t.begin_element();
                t.i32(3, REQUIRED);
                t.binary(4, name.as_bytes());
                t.i32(5, 1);
                t.i32(6, CONVERTED_LIST);
                t.end_struct();
                t.begin_element();
                t.i32(3, REPEATED);
                t.binary(4, b"list");
                t.i32(5, 1);
                t.end_struct();
                t.begin_element();
                t.i32(1, INT32);
                t.i32(3, REQUIRED);
                t.binary(4, b"element");
                t.end_struct();
            }
        }
    }
    t.i64(3, rows as i64); // num_rows
    t.begin_list(4, STRUCT, 1); // row_groups
    t.begin_element();
    t.begin_list(1, STRUCT, columns.len()); // columns
    for (column, &(offset, size)) in columns.iter().zip(chunks) {
        t.begin_element();
        t.i64(2, offset as i64); // file_offset
        t.begin_struct(3); // meta_data
        t.i32(1, INT32);
        t.begin_list(2, I32, 2); // encodings
        t.list_i32(PLAIN);
        t.list_i32(RLE);
        let path: &[&[u8]] = match column {
            Column::Int32 { name, .. } => &[name.as_bytes()],
            Column::Int32Lists { name, .. } | Column::SignedLists { name, .. } => {
                &[name.as_bytes(), b"list", b"element"]
            }
        };
        t.begin_list(3, BINARY, path.len()); // path_in_schema
        for part in path {
            t.list_binary(part);
        }
        t.i32(4, 0); // codec: UNCOMPRESSED
        t.i64(5, column.leaf_values() as i64);
        t.i64(6, size as i64);
        t.i64(7, size as i64);
        t.i64(9, offset as i64); // data_page_offset
        t.end_struct();
        t.end_struct();
    }
    let total: usize = chunks.iter().map(|c| c.1).sum();
    t.i64(2, total as i64); // total_byte_size
    t.i64(3, rows as i64);
    t.end_struct();
    t.binary(6, b"hearth");
    t.stop();
    t.out
}

const I32: u8 = 5;
const I64: u8 = 6;
const BINARY: u8 = 8;
const LIST: u8 = 9;
const STRUCT: u8 = 12;

/// Thrift's compact protocol, for writing: field headers carry the id's delta from the previous
/// field of the same struct.
#[derive(Default)]
struct Thrift {
    out: Vec<u8>,
    /// The last field id of each open struct.
    last: Vec<i16>,
    current: i16,
}

impl Thrift {
    fn field(&mut self, id: i16, kind: u8) {
        let delta = id - self.current;
        if (1..=15).contains(&delta) {
            self.out.push(((delta as u8) << 4) | kind);
        } else {
            self.out.push(kind);
            varint(&mut self.out, zigzag(id as i64));
        }
        self.current = id;
    }

    fn i32(&mut self, id: i16, v: i32) {
        self.field(id, I32);
        varint(&mut self.out, zigzag(v as i64));
    }

    fn i64(&mut self, id: i16, v: i64) {
        self.field(id, I64);
        varint(&mut self.out, zigzag(v));
    }

    fn binary(&mut self, id: i16, v: &[u8]) {
        self.field(id, BINARY);
        self.list_binary(v);
    }

    fn begin_struct(&mut self, id: i16) {
        self.field(id, STRUCT);
        self.begin_element();
    }

    /// A struct as a list element (no field header).
    fn begin_element(&mut self) {
        self.last.push(self.current);
        self.current = 0;
    }

    fn end_struct(&mut self) {
        self.out.push(0);
        self.current = self.last.pop().unwrap_or(0);
    }

    fn begin_list(&mut self, id: i16, kind: u8, len: usize) {
        self.field(id, LIST);
        if len < 15 {
            self.out.push(((len as u8) << 4) | kind);
        } else {
            self.out.push(0xF0 | kind);
            varint(&mut self.out, len as u64);
        }
    }

    fn list_i32(&mut self, v: i32) {
        varint(&mut self.out, zigzag(v as i64));
    }

    fn list_binary(&mut self, v: &[u8]) {
        varint(&mut self.out, v.len() as u64);
        self.out.extend_from_slice(v);
    }

    /// The end of the top-level struct.
    fn stop(&mut self) {
        self.out.push(0);
    }
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The layout around the pages: magic at both ends, the footer's length before the last
    /// magic, each page header's sizes, and the levels of a list page.
    #[test]
    fn files_are_framed_as_parquet() {
        let windows: Vec<u32> = (0..12).collect();
        let rows: Vec<&[u32]> = windows.chunks(4).collect();
        let bytes = to_parquet(&[
            Column::Int32Lists { name: "input_ids", rows },
            Column::Int32 { name: "window", values: vec![2, 0, 1] },
        ])
        .unwrap();
        assert_eq!(&bytes[..4], b"PAR1");
        assert_eq!(&bytes[bytes.len() - 4..], b"PAR1");
        let footer_len =
            u32::from_le_bytes(bytes[bytes.len() - 8..bytes.len() - 4].try_into().unwrap()) as usize;
        let footer = &bytes[bytes.len() - 8 - footer_len..bytes.len() - 8];
        assert_eq!(footer[0], 0x15, "field 1 (version) as i32");
        assert!(footer.windows(9).any(|w| w == b"input_ids"));
        // The first page: header (type 0, sizes), then repetition levels 0,1,1,1 per row (runs
        // [2,0],[6,1]) ×3, definition levels one run of 12 ones ([24,1]), then 12 values.
        let body_len = 4 + 12 + 4 + 2 + 12 * 4;
        let mut header = vec![0x15, 0x00, 0x15];
        varint(&mut header, zigzag(body_len));
        header.push(0x15);
        varint(&mut header, zigzag(body_len));
        assert_eq!(&bytes[4..4 + header.len()], &header[..]);
        let levels = [12, 0, 0, 0, 2, 0, 6, 1, 2, 0, 6, 1, 2, 0, 6, 1, 2, 0, 0, 0, 24, 1];
        assert!(bytes.windows(levels.len()).any(|w| w == levels));
    }

    /// Two pages per column (more values than a page holds). With `HEARTH_PARQUET_OUT` set the
    /// file is written there, for pyarrow to read (`DEVELOPERS.md`).
    #[test]
    fn what_is_written() {
        let rows: usize = 300_000;
        let flat: Vec<u32> = (0..rows * 5).map(|i| (i % 50_257) as u32).collect();
        let lists: Vec<&[u32]> = flat.chunks(5).collect();
        let bytes = to_parquet(&[
            Column::Int32Lists { name: "input_ids", rows: lists },
            Column::Int32 { name: "window", values: (0..rows as i32).rev().collect() },
        ])
        .unwrap();
        if let Ok(path) = std::env::var("HEARTH_PARQUET_OUT") {
            std::fs::write(path, &bytes).unwrap();
        }
        assert!(bytes.windows(2).filter(|w| w == &[0x15, 0x00]).count() >= 3);
    }

    #[test]
    fn mismatched_or_empty_columns_are_refused() {
        let rows: Vec<&[u32]> = vec![&[1, 2], &[]];
        let e = to_parquet(&[Column::Int32Lists { name: "ids", rows }]).unwrap_err().to_string();
        assert!(e.contains("empty list"), "{e}");
        let e = to_parquet(&[
            Column::Int32 { name: "a", values: vec![1] },
            Column::Int32 { name: "b", values: vec![1, 2] },
        ])
        .unwrap_err()
        .to_string();
        assert!(e.contains("`b` has 2 rows"), "{e}");
        assert!(to_parquet(&[]).is_err());
        let big = [u32::MAX];
        let e = to_parquet(&[Column::Int32Lists { name: "ids", rows: vec![&big] }]).unwrap_err().to_string();
        assert!(e.contains("over int32"), "{e}");
    }
}
