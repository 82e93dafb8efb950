//! The real GPT-2 and bert-base-uncased vocabularies give the known ids; the real chat templates
//! of SmolLM2, Llama 3.2, Qwen2.5 and Qwen3 render what transformers renders.

mod common;

use common::*;
use hearth_lm::Tokenizer;

#[test]
fn gpt2_seed_ids() {
    let t = Tokenizer::builtin("gpt2").unwrap();
    let e = t.encode("Swimming at the beach is").unwrap();
    assert_eq!(e.ids, vec![10462, 27428, 379, 262, 10481, 318]);
    assert_eq!(e.tokens, vec!["Sw", "imming", "Ġat", "Ġthe", "Ġbeach", "Ġis"]);
    assert_eq!(e.attention_mask, vec![1; 6]);
    assert_eq!(t.encode_ids("Every effort moves you").unwrap(), vec![6109, 3626, 6100, 345]);
    assert_eq!(t.encode_ids("Hello, I am").unwrap(), vec![15496, 11, 314, 716]);
    assert_eq!(t.encode_ids("<|endoftext|>").unwrap(), vec![50256]);
    assert_eq!(t.decode(&[257]).unwrap(), " a");
    assert_eq!(t.vocab_size(), 50257);
}

#[test]
fn bert_seed_ids() {
    let t = Tokenizer::builtin("bert-base-uncased").unwrap();
    let e = t.encode("Life is like a [MASK] of chocolates.").unwrap();
    assert_eq!(e.ids, vec![101, 2166, 2003, 2066, 1037, 103, 1997, 7967, 2015, 1012, 102]);
    assert_eq!(e.tokens[0], "[CLS]");
    assert_eq!(e.tokens[5], "[MASK]");
    assert_eq!(e.tokens[8], "##s");
    assert_eq!(e.special_tokens_mask, vec![1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    assert_eq!(t.decode(&[7967]).unwrap(), "chocolate");
    assert_eq!(t.vocab_size(), 30522);
}

/// The older hub format writes merges as `"a b"` strings; it must give the same ids.
#[test]
fn legacy_merge_format_loads() {
    let t = Tokenizer::from_bytes(&read(fixtures().join("tokenizer.legacy-merges.json"))).unwrap();
    assert_eq!(t.encode_ids("Swimming at the beach is").unwrap(), vec![10462, 27428, 379, 262, 10481, 318]);
}

#[test]
fn bad_tokenizers_are_clear_errors() {
    let err = Tokenizer::builtin("llama").unwrap_err().to_string();
    assert!(err.contains("unknown tokenizer `llama`"), "{err}");
    let err = Tokenizer::from_bytes(b"{not json").unwrap_err().to_string();
    assert!(err.contains("tokenizer.json"), "{err}");
    let t = Tokenizer::builtin("gpt2").unwrap();
    assert!(t.decode(&[99_999]).unwrap_err().to_string().contains("outside the vocabulary"));
}

/// Every conversation of `tests/fixtures/chat/expected.json` through each real template, with and
/// without the generation prompt: byte for byte what transformers' `apply_chat_template` renders.
#[test]
fn real_chat_templates_render_as_transformers() {
    use hearth_lm::chat::{ChatTemplate, Message, Now};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/chat");
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("expected.json")).unwrap()).unwrap();
    let now = Now { unix_seconds: expected["now_unix_seconds"].as_i64().unwrap() };
    let cases = expected["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 32);
    for case in cases {
        let name = case["template"].as_str().unwrap();
        let source = std::fs::read_to_string(dir.join(format!("{name}.jinja"))).unwrap();
        let specials = case["specials"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
            .collect();
        let template = ChatTemplate::new(source, specials).unwrap();
        let messages: Vec<Message> = serde_json::from_value(case["messages"].clone()).unwrap();
        let add = case["add_generation_prompt"].as_bool().unwrap();
        let rendered = template.render(&messages, add, now).unwrap();
        assert_eq!(
            rendered,
            case["rendered"].as_str().unwrap(),
            "{name}, {}, add_generation_prompt {add}",
            case["conversation"]
        );
    }
}
