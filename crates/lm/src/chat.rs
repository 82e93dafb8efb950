//! Chat templates: a conversation rendered into the prompt an instruct checkpoint was trained on,
//! exactly as `transformers`' `apply_chat_template(messages, add_generation_prompt=True)` does,
//! and the checkpoint's `generation_config.json` (the ids that end a reply, its sampling defaults).
//!
//! Templates are Jinja2 programs shipped in `tokenizer_config.json` (`chat_template`) or beside it
//! (`chat_template.jinja`). They are rendered with minijinja, the Rust implementation of Jinja2
//! the ecosystem uses for this (Hugging Face's text-generation-inference and mistral.rs), set up
//! as `transformers` sets up its sandboxed environment (`utils/chat_template_utils.py`):
//! `trim_blocks` and `lstrip_blocks`, loop controls, `raise_exception`, `strftime_now`, and a
//! `tojson` that writes what Python's `json.dumps` writes (not Jinja's HTML-escaping one). Python's
//! string methods (`.strip()`, `.split()`, `.startswith()`…) come from minijinja-contrib's
//! `pycompat`. The crate does no IO: the date that `strftime_now` formats is the caller's.

use minijinja::value::{Kwargs, Value, ValueKind};
use minijinja::{Environment, ErrorKind};
use serde::{Deserialize, Serialize};

use crate::{Error, Result, Tokenizer};

/// Templates longer than this are not a chat template (the real ones are 0.3–10 KB).
const MAX_TEMPLATE_BYTES: usize = 1 << 20;

/// One turn of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub role: String,
    pub content: String,
}

impl Message {
    pub fn new(role: &str, content: &str) -> Self {
        Self { role: role.into(), content: content.into() }
    }
}

/// A checkpoint's chat template with the special tokens it may name (`bos_token`, …).
#[derive(Debug, Clone)]
pub struct ChatTemplate {
    source: String,
    /// `(name, token)`: `bos_token`, `eos_token`, `unk_token`, `pad_token` as the tokenizer's
    /// `special_tokens_map` gives them to the template.
    specials: Vec<(String, String)>,
}

/// A civil date and time for `strftime_now` (the template's "Today Date"), UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    pub unix_seconds: i64,
}

impl ChatTemplate {
    /// The template in `tokenizer_config.json` (or the separate `chat_template.jinja`, which
    /// transformers writes since 4.43 and which wins, as in transformers). `Ok(None)`: the
    /// checkpoint has no chat template (a base model).
    pub fn from_files(tokenizer_config: Option<&[u8]>, jinja: Option<&[u8]>) -> Result<Option<Self>> {
        let config: serde_json::Value = match tokenizer_config {
            Some(bytes) => serde_json::from_slice(bytes)
                .map_err(|e| Error::InvalidInput(format!("tokenizer_config.json is not JSON: {e}")))?,
            None => serde_json::Value::Null,
        };
        let source = match jinja {
            Some(bytes) => Some(
                std::str::from_utf8(bytes)
                    .map_err(|_| Error::InvalidInput("chat_template.jinja is not UTF-8 text".into()))?
                    .to_string(),
            ),
            None => template_in_config(&config)?,
        };
        let Some(source) = source else { return Ok(None) };
        let mut specials = Vec::new();
        for name in ["bos_token", "eos_token", "unk_token", "pad_token"] {
            if let Some(token) = special_token(&config, name) {
                specials.push((name.to_string(), token));
            }
        }
        Self::new(source, specials).map(Some)
    }

    /// A template from its source; `specials` as [`ChatTemplate::from_files`] reads them.
    pub fn new(source: String, specials: Vec<(String, String)>) -> Result<Self> {
        if source.len() > MAX_TEMPLATE_BYTES {
            return Err(Error::InvalidInput(format!(
                "the chat template is {} bytes; a chat template is at most {MAX_TEMPLATE_BYTES}",
                source.len()
            )));
        }
        let template = Self { source, specials };
        // Parsed now, so a broken template is refused when the model loads, not at the first turn.
        template.environment()?;
        Ok(template)
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// The special token `name` (`eos_token`…) as the template sees it.
    pub fn special(&self, name: &str) -> Option<&str> {
        self.specials.iter().find(|(n, _)| n == name).map(|(_, t)| t.as_str())
    }

    fn environment(&self) -> Result<Environment<'static>> {
        let mut env = Environment::new();
        env.set_syntax(
            minijinja::syntax::SyntaxConfig::builder()
                .trim_blocks(true)
                .lstrip_blocks(true)
                .build()
                .expect("the default delimiters"),
        );
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_filter("tojson", tojson);
        env.add_function(
            "raise_exception",
            |message: String| -> std::result::Result<Value, minijinja::Error> {
                Err(minijinja::Error::new(ErrorKind::InvalidOperation, message))
            },
        );
        env.add_template_owned("chat", self.source.clone()).map_err(|e| {
            Error::InvalidInput(format!("the chat template does not parse: {}", bounded(&e.to_string())))
        })?;
        Ok(env)
    }

    /// The prompt a reply is generated from: `messages` rendered with the assistant's turn opened,
    /// encoded as transformers encodes a rendered template (no special tokens added: the
    /// template wrote them). Its text and ids.
    pub fn prompt(
        &self,
        tokenizer: &Tokenizer,
        messages: &[Message],
        now: Now,
    ) -> Result<(String, Vec<u32>)> {
        let text = self.render(messages, true, now)?;
        let ids = tokenizer.encode_ids_plain(&text)?;
        if ids.is_empty() {
            return Err(Error::InvalidInput("the chat template rendered an empty prompt".into()));
        }
        Ok((text, ids))
    }

    /// The ids a reply ends at: `generation_config.json`'s, or without them the template's eos
    /// token as the tokenizer spells it.
    pub fn eos_ids(&self, generation: &GenerationConfig, tokenizer: &Tokenizer) -> Vec<u32> {
        if !generation.eos_token_ids.is_empty() {
            return generation.eos_token_ids.clone();
        }
        self.special("eos_token").and_then(|t| tokenizer.token_to_id(t)).into_iter().collect()
    }

    /// The prompt for `messages`, ending with the assistant's turn opened when
    /// `add_generation_prompt` (what `hearth chat` generates from). `now` is what the template's
    /// `strftime_now` formats (Llama 3's "Today Date").
    pub fn render(&self, messages: &[Message], add_generation_prompt: bool, now: Now) -> Result<String> {
        let mut env = self.environment()?;
        env.add_function(
            "strftime_now",
            move |format: String| -> std::result::Result<String, minijinja::Error> {
                strftime(now, &format).map_err(|e| minijinja::Error::new(ErrorKind::InvalidOperation, e))
            },
        );
        let template = env.get_template("chat").expect("added above");
        let mut ctx: std::collections::BTreeMap<String, Value> =
            self.specials.iter().map(|(name, token)| (name.clone(), Value::from(token.clone()))).collect();
        ctx.insert("messages".into(), Value::from(minijinja::value::Serde(messages)));
        ctx.insert("add_generation_prompt".into(), Value::from(add_generation_prompt));
        // transformers passes these as None when there are none: defined, and none.
        ctx.insert("tools".into(), Value::from(()));
        ctx.insert("documents".into(), Value::from(()));
        template.render(Value::from(minijinja::value::Serde(ctx))).map_err(|e| {
            Error::InvalidInput(format!("the chat template failed: {}", bounded(&template_error(&e))))
        })
    }
}

/// The error and the template's own message (`raise_exception("…")`), without minijinja's
/// source listing.
fn template_error(e: &minijinja::Error) -> String {
    match e.detail() {
        Some(detail) if e.kind() == ErrorKind::InvalidOperation => detail.to_string(),
        _ => e.to_string(),
    }
}

fn bounded(text: &str) -> String {
    const MAX: usize = 300;
    match text.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

/// `chat_template` as a string, or the entry named "default" of a list of named templates.
fn template_in_config(config: &serde_json::Value) -> Result<Option<String>> {
    match config.get("chat_template") {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
        Some(serde_json::Value::Array(named)) => {
            let default = named.iter().find(|t| t.get("name").and_then(|n| n.as_str()) == Some("default"));
            match default.and_then(|t| t.get("template")).and_then(|t| t.as_str()) {
                Some(s) => Ok(Some(s.to_string())),
                None => Err(Error::InvalidInput(
                    "tokenizer_config.json lists chat templates but none named \"default\"".into(),
                )),
            }
        }
        Some(_) => Err(Error::InvalidInput(
            "tokenizer_config.json's chat_template is neither text nor a list".into(),
        )),
    }
}

/// A special token written as text or as an added-token object (`{"content": "<s>", …}`).
fn special_token(config: &serde_json::Value, name: &str) -> Option<String> {
    match config.get(name)? {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Object(o) => o.get("content")?.as_str().map(String::from),
        _ => None,
    }
}

/// `transformers`' `tojson`: `json.dumps(x, ensure_ascii=False, indent=None, separators=None,
/// sort_keys=False)`, the keyword arguments honoured.
fn tojson(value: Value, kwargs: Kwargs) -> std::result::Result<Value, minijinja::Error> {
    let ensure_ascii: Option<bool> = kwargs.get("ensure_ascii")?;
    let indent: Option<usize> = kwargs.get("indent")?;
    let sort_keys: Option<bool> = kwargs.get("sort_keys")?;
    let separators: Option<Vec<String>> = kwargs.get("separators")?;
    kwargs.assert_all_used()?;
    let (item, key) = match separators.as_deref() {
        Some([item, key]) => (item.clone(), key.clone()),
        Some(_) => return Err(minijinja::Error::new(ErrorKind::InvalidOperation, "separators is a pair")),
        // Python's defaults: ", " on one line, "," when indented.
        None if indent.is_some() => (",".into(), ": ".into()),
        None => (", ".into(), ": ".into()),
    };
    let style = JsonStyle {
        ensure_ascii: ensure_ascii.unwrap_or(false),
        indent,
        sort_keys: sort_keys.unwrap_or(false),
        item,
        key,
    };
    let mut out = String::new();
    style.write(&value, 0, &mut out)?;
    Ok(Value::from_safe_string(out))
}

struct JsonStyle {
    ensure_ascii: bool,
    indent: Option<usize>,
    sort_keys: bool,
    item: String,
    key: String,
}

impl JsonStyle {
    fn newline(&self, depth: usize, out: &mut String) {
        if let Some(n) = self.indent {
            out.push('\n');
            out.push_str(&" ".repeat(n * depth));
        }
    }

    fn write(
        &self,
        value: &Value,
        depth: usize,
        out: &mut String,
    ) -> std::result::Result<(), minijinja::Error> {
        if depth > 64 {
            return Err(minijinja::Error::new(ErrorKind::InvalidOperation, "tojson: nested too deeply"));
        }
        match value.kind() {
            ValueKind::Undefined | ValueKind::None => out.push_str("null"),
            ValueKind::Bool => out.push_str(if value.is_true() { "true" } else { "false" }),
            ValueKind::Number => out.push_str(&python_number(value)),
            ValueKind::String => self.string(value.as_str().unwrap_or_default(), out),
            ValueKind::Seq | ValueKind::Iterable => {
                let items: Vec<Value> = value.try_iter()?.collect();
                self.open_close('[', ']', items.len(), depth, out, |i, out| {
                    self.write(&items[i], depth + 1, out)
                })?;
            }
            ValueKind::Map => {
                let mut keys: Vec<Value> = value.try_iter()?.collect();
                if self.sort_keys {
                    keys.sort_by_key(|k| k.to_string());
                }
                self.open_close('{', '}', keys.len(), depth, out, |i, out| {
                    self.string(&keys[i].to_string(), out);
                    out.push_str(&self.key);
                    self.write(&value.get_item(&keys[i])?, depth + 1, out)
                })?;
            }
            _ => self.string(&value.to_string(), out),
        }
        Ok(())
    }

    fn open_close(
        &self,
        open: char,
        close: char,
        n: usize,
        depth: usize,
        out: &mut String,
        mut each: impl FnMut(usize, &mut String) -> std::result::Result<(), minijinja::Error>,
    ) -> std::result::Result<(), minijinja::Error> {
        out.push(open);
        if n == 0 {
            out.push(close);
            return Ok(());
        }
        for i in 0..n {
            if i > 0 {
                out.push_str(&self.item);
            }
            self.newline(depth + 1, out);
            each(i, out)?;
        }
        self.newline(depth, out);
        out.push(close);
        Ok(())
    }

    fn string(&self, s: &str, out: &mut String) {
        out.push('"');
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                c if (c as u32) < 0x20 || (self.ensure_ascii && (c as u32) > 0x7e) => {
                    let mut units = [0u16; 2];
                    for unit in c.encode_utf16(&mut units) {
                        out.push_str(&format!("\\u{unit:04x}"));
                    }
                }
                c => out.push(c),
            }
        }
        out.push('"');
    }
}

/// A number as Python's `json.dumps` writes it: integers as integers, floats with a point.
fn python_number(value: &Value) -> String {
    if let Ok(i) = i64::try_from(value.clone()) {
        if value.to_string().parse::<i64>().is_ok() {
            return i.to_string();
        }
    }
    match f64::try_from(value.clone()) {
        Ok(f) if f.is_nan() => "NaN".into(),
        Ok(f) if f.is_infinite() => if f > 0.0 { "Infinity" } else { "-Infinity" }.into(),
        Ok(f) if f == f.trunc() && f.abs() < 1e16 => format!("{f:.1}"),
        Ok(f) => format!("{f}"),
        Err(_) => value.to_string(),
    }
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const WEEKDAYS: [&str; 7] = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];

/// Python's `datetime.strftime` for the directives chat templates use (Llama 3's is
/// `"%d %b %Y"`); another directive is refused by name rather than written wrong.
pub fn strftime(now: Now, format: &str) -> std::result::Result<String, String> {
    let days = now.unix_seconds.div_euclid(86_400);
    let secs = now.unix_seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    // 1970-01-01 was a Thursday (index 3 from Monday).
    let weekday = (days + 3).rem_euclid(7) as usize;
    let month_name = MONTHS[(month - 1) as usize];
    let mut out = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('d') => out.push_str(&format!("{day:02}")),
            Some('m') => out.push_str(&format!("{month:02}")),
            Some('Y') => out.push_str(&format!("{year}")),
            Some('y') => out.push_str(&format!("{:02}", year.rem_euclid(100))),
            Some('b') => out.push_str(&month_name[..3]),
            Some('B') => out.push_str(month_name),
            Some('a') => out.push_str(&WEEKDAYS[weekday][..3]),
            Some('A') => out.push_str(WEEKDAYS[weekday]),
            Some('H') => out.push_str(&format!("{:02}", secs / 3600)),
            Some('M') => out.push_str(&format!("{:02}", secs / 60 % 60)),
            Some('S') => out.push_str(&format!("{:02}", secs % 60)),
            Some('%') => out.push('%'),
            Some(other) => return Err(format!("strftime_now: %{other} is not supported")),
            None => return Err("strftime_now: the format ends with %".into()),
        }
    }
    Ok(out)
}

/// Days since 1970-01-01 → (year, month 1–12, day 1–31) in the proleptic Gregorian calendar
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// What a checkpoint's `generation_config.json` says about generating: the ids that end a reply
/// and the sampling it was published with (shown, and the defaults of `hearth chat`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GenerationConfig {
    pub eos_token_ids: Vec<u32>,
    pub do_sample: Option<bool>,
    pub temperature: Option<f32>,
    pub top_k: Option<usize>,
    pub top_p: Option<f32>,
}

impl GenerationConfig {
    /// What transformers generates with when a checkpoint has no `generation_config.json`: the
    /// model config's eos ids, nothing else.
    pub fn from_model_config(config: &crate::model::config::ModelConfig) -> Self {
        Self { eos_token_ids: config.eos_token_ids(), ..Self::default() }
    }

    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        let v: serde_json::Value = serde_json::from_slice(bytes)
            .map_err(|e| Error::InvalidInput(format!("generation_config.json is not JSON: {e}")))?;
        let eos_token_ids = match v.get("eos_token_id") {
            None | Some(serde_json::Value::Null) => Vec::new(),
            Some(one @ serde_json::Value::Number(_)) => vec![token_id(one)?],
            Some(serde_json::Value::Array(ids)) => ids.iter().map(token_id).collect::<Result<_>>()?,
            Some(_) => {
                return Err(Error::InvalidInput(
                    "generation_config.json: eos_token_id is not an id or a list".into(),
                ))
            }
        };
        let float = |name: &str| v.get(name).and_then(|x| x.as_f64()).map(|x| x as f32);
        Ok(Self {
            eos_token_ids,
            do_sample: v.get("do_sample").and_then(|x| x.as_bool()),
            temperature: float("temperature").filter(|t| t.is_finite() && *t >= 0.0),
            top_k: v.get("top_k").and_then(|x| x.as_u64()).map(|k| k as usize).filter(|&k| k > 0),
            top_p: float("top_p").filter(|p| *p > 0.0 && *p <= 1.0),
        })
    }
}

fn token_id(v: &serde_json::Value) -> Result<u32> {
    v.as_u64().and_then(|id| u32::try_from(id).ok()).ok_or_else(|| {
        Error::InvalidInput(format!("generation_config.json: {} is not a token id", bounded(&v.to_string())))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_pythons() {
        // 2026-12-03 20:15:42 UTC, a Thursday.
        let now = Now { unix_seconds: 1_796_328_942 };
        assert_eq!(strftime(now, "%d %b %Y").unwrap(), "03 Dec 2026");
        assert_eq!(strftime(now, "%A %B %y %H:%M:%S %%").unwrap(), "Thursday December 26 20:15:42 %");
        assert_eq!(strftime(Now { unix_seconds: 0 }, "%a %d %m %Y").unwrap(), "Thu 01 01 1970");
        // A leap day, and before 1970.
        assert_eq!(strftime(Now { unix_seconds: 951_782_400 }, "%d %b %Y").unwrap(), "29 Feb 2000");
        assert_eq!(strftime(Now { unix_seconds: -86_400 }, "%d %b %Y").unwrap(), "31 Dec 1969");
        assert!(strftime(now, "%Z").unwrap_err().contains("%Z"));
    }

    #[test]
    fn tojson_writes_what_json_dumps_writes() {
        let t = ChatTemplate::new(
            "{{ x | tojson }}|{{ x | tojson(indent=2) }}|{{ 'é\"\n' | tojson }}|{{ 'é' | tojson(ensure_ascii=true) }}".into(),
            Vec::new(),
        )
        .unwrap();
        let mut env = t.environment().unwrap();
        env.add_global(
            "x",
            Value::from(minijinja::value::Serde(serde_json::json!({"b": [1, 2.5, true, null], "a": "<x>"}))),
        );
        let out = env.get_template("chat").unwrap().render(()).unwrap();
        // json.dumps({"b": [1, 2.5, True, None], "a": "<x>"}) and with indent=2 (keys in order).
        assert_eq!(
            out,
            "{\"a\": \"<x>\", \"b\": [1, 2.5, true, null]}|{\n  \"a\": \"<x>\",\n  \"b\": [\n    1,\n    2.5,\n    true,\n    null\n  ]\n}|\"é\\\"\\n\"|\"\\u00e9\""
        );
    }

    #[test]
    fn broken_templates_and_configs_are_refused_with_the_reason() {
        let e = ChatTemplate::new("{% for m in messages %}".into(), Vec::new()).unwrap_err().to_string();
        assert!(e.contains("does not parse"), "{e}");
        let t = ChatTemplate::new(
            "{{ raise_exception('Conversation roles must alternate') }}".into(),
            Vec::new(),
        )
        .unwrap();
        let e = t.render(&[], true, Now { unix_seconds: 0 }).unwrap_err().to_string();
        assert!(e.contains("Conversation roles must alternate"), "{e}");
        assert!(ChatTemplate::from_files(Some(b"{not json"), None).is_err());
        assert!(ChatTemplate::from_files(Some(br#"{"chat_template": 3}"#), None).is_err());
        assert!(ChatTemplate::from_files(Some(br#"{"bos_token": "<s>"}"#), None).unwrap().is_none());
        let named = br#"{"chat_template": [{"name": "tool_use", "template": "x"}, {"name": "default", "template": "{{ bos_token }}hi"}], "bos_token": {"content": "<s>"}}"#;
        let t = ChatTemplate::from_files(Some(named), None).unwrap().unwrap();
        assert_eq!(t.render(&[], false, Now { unix_seconds: 0 }).unwrap(), "<s>hi");
        let huge = "x".repeat(MAX_TEMPLATE_BYTES + 1);
        assert!(ChatTemplate::new(huge, Vec::new()).unwrap_err().to_string().contains("at most"));
    }

    #[test]
    fn generation_configs_give_their_eos_ids_and_sampling() {
        let g = GenerationConfig::from_json(br#"{"eos_token_id": [151645, 151643], "do_sample": true, "temperature": 0.7, "top_k": 20, "top_p": 0.8}"#).unwrap();
        assert_eq!(g.eos_token_ids, vec![151645, 151643]);
        assert_eq!(
            (g.do_sample, g.temperature, g.top_k, g.top_p),
            (Some(true), Some(0.7), Some(20), Some(0.8))
        );
        assert_eq!(GenerationConfig::from_json(br#"{"eos_token_id": 2}"#).unwrap().eos_token_ids, vec![2]);
        assert!(GenerationConfig::from_json(br#"{"eos_token_id": -1}"#).is_err());
        assert!(GenerationConfig::from_json(br#"{"eos_token_id": "2"}"#).is_err());
    }
}
