//! The real GPT-2 and bert-base-uncased vocabularies give the known ids.

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
