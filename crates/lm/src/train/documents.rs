//! Documents from the files people have: a plain text file is one document, a `.jsonl` file one
//! per line (`{"text": …}`, the field selectable), a `.csv` file one per row (a column chosen by
//! its header). Bad rows are refused with their line numbers rather than skipped: a corpus with
//! silently missing rows trains on something other than what the user meant.

use super::corpus::{text_of, Corpus};
use crate::error::{invalid, Result};

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

/// One document per non-blank line, each a JSON object whose `field` is a string.
fn json_lines(text: &str, field: &str) -> Result<Vec<String>> {
    let mut docs = Vec::new();
    let mut errors = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let problem = match serde_json::from_str::<serde_json::Value>(line) {
            Err(e) => Some(format!("not JSON ({e})")),
            Ok(serde_json::Value::Object(map)) => match map.get(field) {
                Some(serde_json::Value::String(s)) => {
                    docs.push(s.clone());
                    None
                }
                Some(other) => Some(format!("\"{field}\" is not a string but {}", kind(other))),
                None => {
                    let keys: Vec<&str> = map.keys().map(String::as_str).take(8).collect();
                    Some(format!("no \"{field}\" field (it has: {})", keys.join(", ")))
                }
            },
            Ok(other) => Some(format!("not a JSON object but {}", kind(&other))),
        };
        if let Some(problem) = problem {
            errors.push(format!("line {}: {problem}", i + 1));
        }
    }
    refuse_bad_rows(errors, "JSONL", "--text-field")?;
    Ok(docs)
}

fn kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

fn refuse_bad_rows(errors: Vec<String>, what: &str, hint: &str) -> Result<()> {
    if errors.is_empty() {
        return Ok(());
    }
    let more = if errors.len() > SHOWN_ERRORS {
        format!(" and {} more", errors.len() - SHOWN_ERRORS)
    } else {
        String::new()
    };
    Err(invalid!(
        "{} bad {what} row{}: {}{more} (choose the text's field with {hint})",
        errors.len(),
        if errors.len() == 1 { "" } else { "s" },
        errors[..errors.len().min(SHOWN_ERRORS)].join("; ")
    ))
}

/// One document per data row of a CSV file (RFC 4180: a header row, commas, double quotes around
/// fields that hold commas, quotes or newlines, `""` for a quote): the column named `field`.
fn csv_column(text: &str, field: &str) -> Result<Vec<String>> {
    let rows = csv_rows(text)?;
    let Some((header_line, header)) = rows.first() else {
        return Err(invalid!("the CSV file is empty"));
    };
    let column = header.iter().position(|h| h.trim() == field).ok_or_else(|| {
        invalid!("line {header_line}: the header has no \"{field}\" column (it has: {})", header.join(", "))
    })?;
    let mut docs = Vec::new();
    let mut errors = Vec::new();
    for (line, row) in &rows[1..] {
        if row.len() == 1 && row[0].is_empty() {
            continue; // a blank line
        }
        if row.len() != header.len() {
            errors.push(format!("line {line}: {} fields where the header has {}", row.len(), header.len()));
            continue;
        }
        docs.push(row[column].clone());
    }
    refuse_bad_rows(errors, "CSV", "--text-field")?;
    Ok(docs)
}

/// The rows of a CSV text with the line each starts on (1-based).
fn csv_rows(text: &str) -> Result<Vec<(usize, Vec<String>)>> {
    let mut rows = Vec::new();
    let mut chars = text.chars().peekable();
    let mut line = 1;
    while chars.peek().is_some() {
        let start_line = line;
        let mut row = Vec::new();
        let mut field = String::new();
        let mut quoted = false;
        loop {
            match chars.next() {
                None => {
                    if quoted {
                        return Err(invalid!("line {start_line}: a quoted field is never closed"));
                    }
                    row.push(std::mem::take(&mut field));
                    break;
                }
                Some('"') if quoted => {
                    if chars.peek() == Some(&'"') {
                        chars.next();
                        field.push('"');
                    } else {
                        quoted = false;
                    }
                }
                Some('"') if field.is_empty() => quoted = true,
                Some(',') if !quoted => row.push(std::mem::take(&mut field)),
                Some('\r') if !quoted && chars.peek() == Some(&'\n') => {}
                Some('\n') if !quoted => {
                    line += 1;
                    row.push(std::mem::take(&mut field));
                    break;
                }
                Some(c) => {
                    if c == '\n' {
                        line += 1;
                    }
                    field.push(c);
                }
            }
        }
        rows.push((start_line, row));
    }
    Ok(rows)
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
