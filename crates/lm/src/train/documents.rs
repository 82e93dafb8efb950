//! Documents from the files people have: a plain text file is one document, a `.jsonl` file one
//! per line (`{"text": …}`, the field selectable), a `.csv` file one per row (a column chosen by
//! its header). Bad rows are refused with their line numbers rather than skipped: a corpus with
//! silently missing rows trains on something other than what the user meant.

use super::corpus::{text_of, Corpus};
use crate::error::{excerpt, invalid, Result};

/// The field (JSONL) or column (CSV) that holds the text when none is named: what Hugging Face
/// `datasets` and the tutorials use.
pub const DEFAULT_TEXT_FIELD: &str = "text";

/// How a file's bytes become documents, chosen by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Text,
    JsonLines,
    Csv,
}

impl FileKind {
    /// `.jsonl`/`.ndjson` → JSON lines, `.csv` → CSV, anything else → plain text.
    pub fn of(name: &str) -> Self {
        let lower = name.to_ascii_lowercase();
        if lower.ends_with(".jsonl") || lower.ends_with(".ndjson") {
            Self::JsonLines
        } else if lower.ends_with(".csv") {
            Self::Csv
        } else {
            Self::Text
        }
    }
}

/// At most this many bad lines are named in an error (the count says how many there are).
const SHOWN_ERRORS: usize = 5;

/// The documents of one file. `field` names the JSONL field or CSV column (default `text`).
pub fn documents_of(name: &str, bytes: &[u8], field: Option<&str>) -> Result<Vec<String>> {
    let field = field.unwrap_or(DEFAULT_TEXT_FIELD);
    let text = text_of(bytes).map_err(|e| invalid!("{name}: {e}"))?;
    let docs = match FileKind::of(name) {
        FileKind::Text => Ok(vec![text.to_owned()]),
        FileKind::JsonLines => json_lines(text, field),
        FileKind::Csv => csv_column(text, field),
    }
    .map_err(|e| invalid!("{name}: {e}"))?;
    if docs.iter().all(|d| d.trim().is_empty()) {
        return Err(invalid!("{name}: there is no text in it"));
    }
    Ok(docs)
}

/// A corpus of every document of every file, in order: `(name, bytes)` pairs.
pub fn corpus_of_files(files: &[(String, Vec<u8>)], field: Option<&str>) -> Result<Corpus> {
    if files.is_empty() {
        return Err(invalid!("no corpus file was given"));
    }
    let mut documents = Vec::new();
    for (name, bytes) in files {
        documents.extend(documents_of(name, bytes, field)?);
    }
    Corpus::from_documents(documents)
}

/// One document per non-blank line, each a JSON object whose `field` is a string. Only that
/// field is kept of each line (a JSONL export with large other fields costs their bytes once, in
/// the file), and only the first [`SHOWN_ERRORS`] problems are written out.
fn json_lines(text: &str, field: &str) -> Result<Vec<String>> {
    let mut docs = Vec::new();
    let mut errors = BadRows::default();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let problem = match json_line(line, field) {
            Err(e) => Some(format!("not JSON ({})", excerpt(&e.to_string()))),
            Ok(Line::Text(s)) => {
                docs.push(s);
                None
            }
            Ok(Line::NotString(kind)) => Some(format!("\"{}\" is not a string but {kind}", excerpt(field))),
            Ok(Line::Missing(keys)) => {
                Some(format!("no \"{}\" field (it has: {})", excerpt(field), excerpt(&keys.join(", "))))
            }
            Ok(Line::NotObject(kind)) => Some(format!("not a JSON object but {kind}")),
        };
        if let Some(problem) = problem {
            errors.push(|| format!("line {}: {problem}", i + 1));
        }
    }
    errors.refuse("JSONL", "--text-field")?;
    Ok(docs)
}

/// What one JSONL line holds, as far as the corpus cares.
enum Line {
    Text(String),
    /// The field is there but not a string: what it is instead.
    NotString(&'static str),
    /// No such field: the first few keys the object has.
    Missing(Vec<String>),
    NotObject(&'static str),
}

/// Keys of an object named when the text field is missing.
const SHOWN_KEYS: usize = 8;

/// Reads one line keeping only `field`: other values are skipped as they are parsed, never
/// built (a `serde_json::Value` of the whole line would hold every one of them).
fn json_line(line: &str, field: &str) -> serde_json::Result<Line> {
    let mut de = serde_json::Deserializer::from_str(line);
    let value = serde::de::DeserializeSeed::deserialize(Shape(Some(field)), &mut de)?;
    de.end()?;
    Ok(match value {
        Json::Object { field: Some(value), .. } => match *value {
            Json::Text(s) => Line::Text(s),
            other => Line::NotString(other.kind()),
        },
        Json::Object { field: None, keys } => Line::Missing(keys),
        other => Line::NotObject(other.kind()),
    })
}

/// A JSON value as far as a corpus line needs it: a string kept, an object's one field and its
/// first keys, anything else only its kind.
enum Json {
    Text(String),
    Other(&'static str),
    Object { field: Option<Box<Json>>, keys: Vec<String> },
}

impl Json {
    fn kind(&self) -> &'static str {
        match self {
            Json::Text(_) => "a string",
            Json::Other(kind) => kind,
            Json::Object { .. } => "an object",
        }
    }
}

/// Reads a value into [`Json`], looking inside an object for the field it names (`None`: the
/// object's contents are skipped, as every nested value's are).
struct Shape<'f>(Option<&'f str>);

impl<'de> serde::de::DeserializeSeed<'de> for Shape<'_> {
    type Value = Json;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> std::result::Result<Json, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Shape<'_> {
    type Value = Json;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_str<E>(self, v: &str) -> std::result::Result<Json, E> {
        Ok(Json::Text(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> std::result::Result<Json, E> {
        Ok(Json::Text(v))
    }
    fn visit_bool<E>(self, _: bool) -> std::result::Result<Json, E> {
        Ok(Json::Other("a boolean"))
    }
    fn visit_i64<E>(self, _: i64) -> std::result::Result<Json, E> {
        Ok(Json::Other("a number"))
    }
    fn visit_u64<E>(self, _: u64) -> std::result::Result<Json, E> {
        Ok(Json::Other("a number"))
    }
    fn visit_f64<E>(self, _: f64) -> std::result::Result<Json, E> {
        Ok(Json::Other("a number"))
    }
    fn visit_unit<E>(self) -> std::result::Result<Json, E> {
        Ok(Json::Other("null"))
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Json, A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(Json::Other("an array"))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> std::result::Result<Json, A::Error> {
        let Some(wanted) = self.0 else {
            while map.next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?.is_some() {}
            return Ok(Json::Other("an object"));
        };
        let mut field = None;
        let mut keys = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            if key == wanted && field.is_none() {
                field = Some(Box::new(map.next_value_seed(Shape(None))?));
            } else {
                map.next_value::<serde::de::IgnoredAny>()?;
            }
            if keys.len() < SHOWN_KEYS {
                keys.push(excerpt(&key).into_owned());
            }
        }
        Ok(Json::Object { field, keys })
    }
}

/// The bad rows of a file: how many, and the messages of the first [`SHOWN_ERRORS`] (a file of
/// a million bad rows keeps five messages, not a million).
#[derive(Default)]
struct BadRows {
    count: usize,
    shown: Vec<String>,
}

impl BadRows {
    /// Counts a bad row; its message is only written while it will be shown.
    fn push(&mut self, message: impl FnOnce() -> String) {
        self.count += 1;
        if self.shown.len() < SHOWN_ERRORS {
            self.shown.push(message());
        }
    }

    fn refuse(self, what: &str, hint: &str) -> Result<()> {
        if self.count == 0 {
            return Ok(());
        }
        let more = if self.count > self.shown.len() {
            format!(" and {} more", self.count - self.shown.len())
        } else {
            String::new()
        };
        Err(invalid!(
            "{} bad {what} row{}: {}{more} (choose the text's field with {hint})",
            self.count,
            if self.count == 1 { "" } else { "s" },
            self.shown.join("; ")
        ))
    }
}

/// One document per data row of a CSV file (RFC 4180: a header row, commas, double quotes around
/// fields that hold commas, quotes or newlines, `""` for a quote): the column named `field`.
/// Rows are read one at a time and only that column's field is kept.
fn csv_column(text: &str, field: &str) -> Result<Vec<String>> {
    let mut rows = CsvRows { chars: text.chars().peekable(), line: 1 };
    let Some((header_line, header)) = rows.next_row(None)? else {
        return Err(invalid!("the CSV file is empty"));
    };
    let names: Vec<String> = header.fields;
    let column = names.iter().position(|h| h.trim() == field).ok_or_else(|| {
        invalid!(
            "line {header_line}: the header has no \"{}\" column (it has: {})",
            excerpt(field),
            excerpt(&names.join(", "))
        )
    })?;
    let mut docs = Vec::new();
    let mut errors = BadRows::default();
    while let Some((line, row)) = rows.next_row(Some(column))? {
        if row.count == 1 && row.blank {
            continue; // a blank line
        }
        if row.count != names.len() {
            errors.push(|| format!("line {line}: {} fields where the header has {}", row.count, names.len()));
            continue;
        }
        docs.push(row.fields.into_iter().next().unwrap_or_default());
    }
    errors.refuse("CSV", "--text-field")?;
    Ok(docs)
}

/// One CSV row as read: how many fields it has, whether it is an empty line, and the fields
/// kept (every field of the header row; only the chosen column's of a data row).
struct CsvRow {
    count: usize,
    blank: bool,
    fields: Vec<String>,
}

/// The rows of a CSV text, one at a time, with the line each starts on (1-based).
struct CsvRows<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    line: usize,
}

impl CsvRows<'_> {
    /// The next row; `keep` is the one column whose field is kept (`None`: all of them).
    fn next_row(&mut self, keep: Option<usize>) -> Result<Option<(usize, CsvRow)>> {
        if self.chars.peek().is_none() {
            return Ok(None);
        }
        let start_line = self.line;
        let mut row = CsvRow { count: 0, blank: false, fields: Vec::new() };
        let mut field = String::new();
        let mut quoted = false;
        let end_field = |row: &mut CsvRow, field: &mut String| {
            if row.count == 0 {
                // A blank line is one empty field (an empty quoted field too, as before).
                row.blank = field.is_empty();
            }
            if keep.is_none_or(|k| k == row.count) {
                row.fields.push(std::mem::take(field));
            } else {
                field.clear();
            }
            row.count += 1;
        };
        loop {
            match self.chars.next() {
                None => {
                    if quoted {
                        return Err(invalid!("line {start_line}: a quoted field is never closed"));
                    }
                    end_field(&mut row, &mut field);
                    break;
                }
                Some('"') if quoted => {
                    if self.chars.peek() == Some(&'"') {
                        self.chars.next();
                        field.push('"');
                    } else {
                        quoted = false;
                    }
                }
                Some('"') if field.is_empty() => quoted = true,
                Some(',') if !quoted => end_field(&mut row, &mut field),
                Some('\r') if !quoted && self.chars.peek() == Some(&'\n') => {}
                Some('\n') if !quoted => {
                    self.line += 1;
                    end_field(&mut row, &mut field);
                    break;
                }
                Some(c) => {
                    if c == '\n' {
                        self.line += 1;
                    }
                    field.push(c);
                }
            }
        }
        Ok(Some((start_line, row)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_kinds_by_name() {
        assert_eq!(FileKind::of("a.JSONL"), FileKind::JsonLines);
        assert_eq!(FileKind::of("b.csv"), FileKind::Csv);
        assert_eq!(FileKind::of("c.txt"), FileKind::Text);
        assert_eq!(FileKind::of("README"), FileKind::Text);
    }

    #[test]
    fn json_lines_take_the_field_and_skip_blank_lines() {
        let docs = documents_of("d.jsonl", b"{\"text\": \"one\"}\n\n{\"text\": \"two\", \"id\": 2}\n", None)
            .unwrap();
        assert_eq!(docs, ["one", "two"]);
        let docs = documents_of("d.jsonl", b"{\"body\": \"x\"}\n", Some("body")).unwrap();
        assert_eq!(docs, ["x"]);
    }

    #[test]
    fn bad_json_lines_are_named_by_line_number() {
        let bytes = b"{\"text\": \"ok\"}\nnot json\n{\"title\": \"t\"}\n{\"text\": 3}\n[1]\n";
        let e = documents_of("d.jsonl", bytes, None).unwrap_err().to_string();
        assert!(e.contains("4 bad JSONL rows"), "{e}");
        assert!(e.contains("line 2: not JSON"), "{e}");
        assert!(e.contains("line 3: no \"text\" field (it has: title)"), "{e}");
        assert!(e.contains("line 4: \"text\" is not a string but a number"), "{e}");
        assert!(e.contains("line 5: not a JSON object but an array"), "{e}");
    }

    #[test]
    fn csv_quotes_commas_and_newlines() {
        let bytes = b"id,text\r\n1,plain\r\n2,\"with, comma\"\n3,\"two\nlines and \"\"quotes\"\"\"\n\n4,last";
        let docs = documents_of("d.csv", bytes, None).unwrap();
        assert_eq!(docs, ["plain", "with, comma", "two\nlines and \"quotes\"", "last"]);
    }

    #[test]
    fn bad_csv_rows_are_named_by_line_number() {
        let e = documents_of("d.csv", b"id,text\n1,a\n2\n3,\"b\nc\"\n4,d,e\n", None).unwrap_err().to_string();
        assert!(e.contains("line 3: 1 fields where the header has 2"), "{e}");
        assert!(e.contains("line 6: 3 fields"), "{e}");
        let e = documents_of("d.csv", b"id,body\n1,a\n", None).unwrap_err().to_string();
        assert!(e.contains("no \"text\" column (it has: id, body)"), "{e}");
        let e = documents_of("d.csv", b"text\n\"open\n", None).unwrap_err().to_string();
        assert!(e.contains("line 2: a quoted field is never closed"), "{e}");
    }

    #[test]
    fn several_files_are_several_documents() {
        let files = vec![
            ("a.txt".to_string(), b"first file".to_vec()),
            ("b.txt".to_string(), b"  \n".to_vec()),
            ("c.jsonl".to_string(), b"{\"text\": \"x\"}\n{\"text\": \"y\"}".to_vec()),
        ];
        let e = corpus_of_files(&files, None).unwrap_err().to_string();
        assert!(e.contains("b.txt: there is no text"), "{e}");
        let files = [&files[..1], &files[2..]].concat();
        let corpus = corpus_of_files(&files, None).unwrap();
        assert_eq!(corpus.documents(), ["first file", "x", "y"]);
    }
}
