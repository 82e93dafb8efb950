//! The `hearth` binary end to end: exact JSON keys, seed ids, parity with the fixtures, and one
//! clear line (no panic, no backtrace) on bad input.

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

fn case(name: &str) -> String {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/cases").join(name);
    dir.to_string_lossy().into_owned()
}

fn hearth(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hearth")).args(args).output().expect("run hearth")
}

fn json(args: &[&str]) -> Value {
    let out = hearth(args);
    assert!(out.status.success(), "hearth {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("one JSON object")
}

fn expected(name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(format!("{}/expected.json", case(name))).unwrap()).unwrap()
}

/// The command fails with exactly one line on stderr, no panic.
fn fails_cleanly(args: &[&str], needle: &str) {
    let out = hearth(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "hearth {args:?} should fail");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line expected, got: {stderr}");
    assert!(!stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"), "{stderr}");
    assert!(stderr.contains(needle), "`{needle}` not in: {stderr}");
}

#[test]
fn tokenize_json_has_the_seed_ids() {
    let v = json(&["tokenize", "--tokenizer", "gpt2", "--json", "Swimming at the beach is"]);
    assert_eq!(v["ids"], serde_json::json!([10462, 27428, 379, 262, 10481, 318]));
    assert_eq!(v["attention_mask"], serde_json::json!([1, 1, 1, 1, 1, 1]));
    assert_eq!(v["tokens"][0], "Sw");
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["attention_mask", "ids", "tokens"]);

    let v = json(&[
        "tokenize",
        "--tokenizer",
        "bert-base-uncased",
        "--json",
        "Life is like a [MASK] of chocolates.",
    ]);
    assert_eq!(v["ids"], serde_json::json!([101, 2166, 2003, 2066, 1037, 103, 1997, 7967, 2015, 1012, 102]));
}

#[test]
fn decode_prints_text() {
    let out = hearth(&["decode", "--tokenizer", "bert-base-uncased", "--ids", "7967"]);
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "chocolate\n");
    let out = hearth(&["decode", "--tokenizer", "gpt2", "--ids", "15496,11,314,716"]);
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "Hello, I am\n");
}

#[test]
fn fill_mask_json_matches_transformers() {
    let name = "bert-tiny-mlm-perturbed";
    let exp = expected(name);
    let v = json(&["fill-mask", "--model", &case(name), "--json", "Life is like a [MASK] of chocolates."]);
    let mask = &v["masks"][0];
    assert_eq!(mask["position"], 5);
    let ids: Vec<&Value> = mask["predictions"].as_array().unwrap().iter().map(|p| &p["id"]).collect();
    let want: Vec<&Value> = exp["mask_top5_ids"].as_array().unwrap().iter().collect();
    assert_eq!(ids, want);
    for (p, w) in
        mask["predictions"].as_array().unwrap().iter().zip(exp["mask_top5_probs"].as_array().unwrap())
    {
        assert!((p["prob"].as_f64().unwrap() - w.as_f64().unwrap()).abs() < 1e-4);
        assert!(p["token"].is_string());
    }
}

#[test]
fn generate_json_matches_transformers_greedy() {
    let name = "gpt2-tiny-perturbed";
    let exp = expected(name);
    let v = json(&[
        "generate",
        "--model",
        &case(name),
        "--prompt",
        "Swimming at the beach is",
        "--max-new-tokens",
        "20",
        "--json",
    ]);
    assert_eq!(v["prompt_ids"], exp["input_ids"]);
    assert_eq!(v["new_ids"], exp["greedy_new_ids"]);
    assert!(v["text"].as_str().unwrap().starts_with("Swimming at the beach is"));
    assert!(v["timing"]["prefill_ms"].as_f64().unwrap() > 0.0);
    assert!(v["timing"]["new_tokens_per_s"].as_f64().unwrap() > 0.0);
}

#[test]
fn generate_with_seed_is_reproducible() {
    let args = [
        "generate",
        "--model",
        &case("gpt2-tiny-perturbed"),
        "--prompt",
        "Hello, I am",
        "--max-new-tokens",
        "8",
        "--temperature",
        "0.9",
        "--top-k",
        "40",
        "--top-p",
        "0.95",
        "--seed",
        "7",
        "--json",
    ];
    assert_eq!(json(&args)["new_ids"], json(&args)["new_ids"]);
}

#[test]
fn score_json_matches_transformers_loss() {
    let name = "gpt2-tiny-perturbed";
    let exp = expected(name);
    let v = json(&["score", "--model", &case(name), "--text", "Swimming at the beach is", "--json"]);
    assert_eq!(v["ids"], exp["input_ids"]);
    let loss = v["loss"].as_f64().unwrap();
    assert!((loss - exp["loss_labels_eq_input_ids"].as_f64().unwrap()).abs() < 1e-4);
    assert!((v["perplexity"].as_f64().unwrap() - loss.exp()).abs() < 1e-3);
}

#[test]
fn inspect_shows_the_module_tree() {
    let out = hearth(&["inspect", "--model", &case("gpt2-bytes-tiny")]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success());
    assert!(text.contains("c_attn") && text.contains("ln_f") && text.contains("wte"), "{text}");
    assert!(text.contains("parameters: "), "{text}");
}

#[test]
fn bad_input_gives_one_clear_line() {
    let bert = case("bert-tiny-mlm");
    let gpt2 = case("gpt2-bytes-tiny");
    fails_cleanly(&["fill-mask", "--model", &bert, "no mask in here"], "[MASK]");
    fails_cleanly(&["fill-mask", "--model", "/nonexistent/dir", "a [MASK]"], "not a directory");
    fails_cleanly(&["tokenize", "--tokenizer", "llama", "hi"], "unknown tokenizer");
    fails_cleanly(&["generate", "--model", &gpt2, "--prompt", "hi", "--top-k", "0"], "top-k");
    fails_cleanly(&["generate", "--model", &gpt2, "--prompt", "hi", "--temperature", "-1"], "temperature");
    fails_cleanly(&["generate", "--model", &gpt2, "--prompt", "hi", "--top-p", "2"], "top-p");
    fails_cleanly(&["decode", "--tokenizer", "gpt2", "--ids", "1,x"], "not a token id");

    let dir = std::env::temp_dir().join(format!("hearth-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("config.json"), "{ not json").unwrap();
    std::fs::write(dir.join("model.safetensors"), b"garbage").unwrap();
    let d = dir.to_string_lossy().into_owned();
    fails_cleanly(&["generate", "--model", &d, "--prompt", "hi"], "config.json");
    std::fs::copy(format!("{gpt2}/config.json"), dir.join("config.json")).unwrap();
    fails_cleanly(&["generate", "--model", &d, "--prompt", "hi"], "safetensors");
    std::fs::remove_dir_all(&dir).unwrap();
}
