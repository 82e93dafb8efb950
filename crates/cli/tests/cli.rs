//! The `hearth` binary end to end: exact JSON keys, seed ids, parity with the fixtures, and one
//! clear line (no panic, no backtrace) on bad input.

use std::path::{Path, PathBuf};
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
fn a_reader_that_stops_early_ends_it_quietly() {
    // `hearth ... | head`: the pipe is closed before hearth prints (the read end is dropped at
    // once), so its first line meets EPIPE every time, with no race.
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    let out = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["tokenize", "--tokenizer", "gpt2", "Swimming at the beach is"])
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .expect("run hearth");
    assert!(out.status.success(), "exit {:?}", out.status.code());
    assert_eq!(String::from_utf8_lossy(&out.stderr), "", "nothing to report on stderr");
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
    fails_cleanly(&["fill-mask", "--model", &bert, "--top-k", "-1", "a [MASK]"], "--top-k");
    fails_cleanly(
        &["generate", "--model", &gpt2, "--prompt", "hi", "--max-new-tokens", "lots"],
        "--max-new-tokens",
    );
    fails_cleanly(
        &["generate", "--model", &gpt2, "--prompt", "hi", "--max-new-tokens", "0"],
        "max-new-tokens",
    );
    fails_cleanly(&["generate", "--model", &gpt2], "--prompt");

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

fn corpus_slice(chars: usize) -> PathBuf {
    let text = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../web/corpus/tiny_shakespeare_like.txt"),
    )
    .unwrap();
    let path = std::env::temp_dir().join(format!("hearth-corpus-{chars}-{}.txt", std::process::id()));
    std::fs::write(&path, &text[..chars]).unwrap();
    path
}

/// `hearth train --json` prints stats, evaluation lines with the documented keys, and leaves a
/// Hugging Face directory that `generate`, `score` and `eval` open; `--resume` continues.
#[test]
fn train_writes_a_usable_checkpoint_and_resumes() {
    let corpus = corpus_slice(20_000);
    let out = std::env::temp_dir().join(format!("hearth-train-{}", std::process::id()));
    let corpus_s = corpus.to_string_lossy().into_owned();
    let out_s = out.to_string_lossy().into_owned();
    let base = [
        "train",
        "--corpus",
        &corpus_s,
        "--arch",
        "gpt2",
        "--tokenizer",
        "chars",
        "--n-layer",
        "2",
        "--n-head",
        "2",
        "--n-embd",
        "32",
        "--context",
        "32",
        "--batch-size",
        "4",
        "--lr",
        "3e-3",
        "--warmup",
        "2",
        "--eval-every",
        "5",
        "--eval-batches",
        "2",
        "--sample-tokens",
        "10",
        "--out",
        &out_s,
        "--json",
    ];
    let mut args = base.to_vec();
    args.extend(["--steps", "10"]);
    let run = hearth(&args);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let lines: Vec<Value> =
        String::from_utf8(run.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines[0]["event"], "stats");
    assert!(lines[0]["stats"]["train_windows"].as_u64().unwrap() > 0);
    let evals: Vec<&Value> = lines.iter().filter(|l| l["event"] == "eval").collect();
    assert_eq!(evals.len(), 2);
    for key in ["step", "tokens_seen", "train_loss", "val_loss", "perplexity", "lr", "tokens_per_s", "sample"]
    {
        assert!(!evals[1][key].is_null(), "eval line lacks {key}: {}", evals[1]);
    }
    assert_eq!(evals[1]["step"], 10);
    assert_eq!(evals[1]["tokens_seen"], 10 * 4 * 32);
    for file in [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "generation_config.json",
        "optimizer.safetensors",
        "trainer_state.json",
    ] {
        assert!(out.join(file).exists(), "checkpoint lacks {file}");
    }

    let v = json(&["generate", "--model", &out_s, "--prompt", "ROMEO:", "--max-new-tokens", "5", "--json"]);
    assert_eq!(v["new_ids"].as_array().unwrap().len(), 5);
    let v = json(&["eval", "--model", &out_s, "--corpus", &corpus_s, "--json"]);
    assert!(v["loss"].as_f64().unwrap() > 0.0 && v["tokens"].as_u64().unwrap() > 1000);

    let mut args = base.to_vec();
    // Resumed with its batch split across two threads (the thread count is not part of a run).
    args.extend(["--steps", "15", "--resume", &out_s, "--batch-threads", "2"]);
    let run = hearth(&args);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let last: Value =
        serde_json::from_str(String::from_utf8(run.stdout).unwrap().lines().last().unwrap()).unwrap();
    assert_eq!(last["event"], "done");
    assert_eq!(last["step"], 15);
    assert_eq!(last["threads"], 2);
    std::fs::remove_dir_all(&out).unwrap();
    std::fs::remove_file(&corpus).unwrap();
}

#[test]
fn train_rejects_bad_corpora() {
    let dir = std::env::temp_dir().join(format!("hearth-badcorpus-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("out").to_string_lossy().into_owned();
    for (name, bytes, needle) in [
        ("empty.txt", &b""[..], "empty"),
        ("binary.bin", &[0x89, b'P', b'N', b'G', 0, 0, 0xff, 0xfe][..], "UTF-8"),
        ("short.txt", &b"hello there"[..], "tokens"),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        fails_cleanly(&["train", "--corpus", &path.to_string_lossy(), "--out", &out, "--steps", "2"], needle);
    }
    fails_cleanly(&["train", "--corpus", "/no/such/file.txt", "--out", &out], "cannot read");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// [`fails_cleanly`] with the exit code too: 1 for bad input, 2 for a malformed command line.
fn fails_with_code(code: i32, args: &[&str], needle: &str) {
    fails_cleanly(args, needle);
    assert_eq!(hearth(args).status.code(), Some(code), "hearth {args:?}");
}

/// A copy of a fixture directory with `edit` applied to its config.json.
fn edited_model(name: &str, tag: &str, edit: impl FnOnce(&mut Value)) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hearth-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = PathBuf::from(case(name));
    std::fs::copy(src.join("model.safetensors"), dir.join("model.safetensors")).unwrap();
    let mut config: Value = serde_json::from_slice(&std::fs::read(src.join("config.json")).unwrap()).unwrap();
    edit(&mut config);
    std::fs::write(dir.join("config.json"), serde_json::to_vec(&config).unwrap()).unwrap();
    dir
}

#[test]
fn hostile_model_configs_exit_1_with_one_line() {
    let cases: [(&str, &str, &str, Value, &str); 4] = [
        ("gpt2-tiny", "layers", "n_layer", Value::from(1_000_000_000u64), "does not belong"),
        (
            "bert-tiny-mlm",
            "bert-layers",
            "num_hidden_layers",
            Value::from(1_000_000_000u64),
            "does not belong",
        ),
        ("gpt2-tiny", "pdrop", "resid_pdrop", Value::from(7), "resid_pdrop"),
        ("gpt2-tiny", "eps", "layer_norm_epsilon", Value::from(-1), "layer_norm_epsilon"),
    ];
    for (name, tag, field, value, needle) in cases {
        let dir = edited_model(name, tag, |c| c[field] = value);
        let d = dir.to_string_lossy().into_owned();
        let command: &[&str] = if name.starts_with("bert") {
            &["fill-mask", "--model", &d, "a [MASK] b"]
        } else {
            &["score", "--model", &d, "--text", "hello there"]
        };
        fails_with_code(1, command, needle);
        std::fs::remove_dir_all(dir).unwrap();
    }
}

#[test]
fn a_tokenizer_bigger_than_the_model_is_refused_by_score_and_eval() {
    // gpt2-bytes-tiny has 256 tokens and no tokenizer.json: the built-in GPT-2 one (50,257)
    // would embed ids past the table.
    let gpt2 = case("gpt2-bytes-tiny");
    fails_with_code(1, &["score", "--model", &gpt2, "--text", "hello there"], "50257");
    let corpus = corpus_slice(2_000);
    fails_with_code(1, &["eval", "--model", &gpt2, "--corpus", &corpus.to_string_lossy()], "50257");
    std::fs::remove_file(corpus).unwrap();
}

#[test]
fn training_that_cannot_fit_is_refused_before_allocating() {
    let corpus = corpus_slice(5_000);
    let c = corpus.to_string_lossy().into_owned();
    let out = std::env::temp_dir().join(format!("hearth-fit-{}", std::process::id()));
    let o = out.to_string_lossy().into_owned();
    fails_with_code(1, &["train", "--corpus", &c, "--out", &o, "--batch-size", "1000000000000"], "needs");
    fails_with_code(1, &["train", "--corpus", &c, "--out", &o, "--context", "1000000000"], "needs");
    fails_with_code(
        1,
        &[
            "train",
            "--corpus",
            &c,
            "--out",
            &o,
            "--preset",
            "gpt2",
            "--tokenizer",
            "gpt2",
            "--max-memory",
            "1G",
        ],
        "choose a smaller model",
    );
    fails_with_code(1, &["train", "--corpus", &c, "--out", &o, "--max-memory", "lots"], "--max-memory");
    fails_with_code(1, &["train", "--corpus", &c, "--out", &o, "--dropout", "1.5"], "dropout");
    fails_with_code(2, &["train", "--corpus", &c, "--out", &o, "--batch-size=-3"], "--batch-size");
    assert!(!out.exists(), "nothing is written for a refused run");
    std::fs::remove_file(corpus).unwrap();
}

/// A run's checkpoint is protected: another run may not overwrite it without --overwrite, a
/// resume with conflicting flags lists them, and neither touches a byte of it.
#[test]
fn checkpoints_are_protected_from_other_runs_and_conflicting_resumes() {
    let corpus = corpus_slice(8_000);
    let c = corpus.to_string_lossy().into_owned();
    let out = std::env::temp_dir().join(format!("hearth-protect-{}", std::process::id()));
    let o = out.to_string_lossy().into_owned();
    let small = ["--n-layer", "1", "--n-head", "2", "--n-embd", "16", "--context", "16", "--batch-size", "2"];
    let mut args = vec!["train", "--corpus", &c, "--out", &o, "--steps", "2", "--eval-every", "2", "--json"];
    args.extend(small);
    let run = hearth(&args);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let snapshot = |dir: &PathBuf| -> Vec<(String, Vec<u8>)> {
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap())
            .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap()))
            .collect();
        files.sort();
        files
    };
    let before = snapshot(&out);

    fails_with_code(1, &args, "already holds another run's checkpoint");
    let mut resume = args.clone();
    resume.extend(["--resume", &o, "--lr", "0.5", "--seed", "7"]);
    fails_with_code(1, &resume, "--lr 0.5 (saved 0.001), --seed 7 (saved 1337)");
    let mut shorter = args.clone();
    shorter.extend(["--resume", &o]);
    shorter[6] = "1"; // --steps 1 < the planned 2
    fails_with_code(1, &shorter, "can only be extended");
    assert_eq!(snapshot(&out), before, "the checkpoint is untouched");

    let mut again = args.clone();
    again.push("--overwrite");
    let run = hearth(&again);
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let siblings: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name().to_string_lossy().starts_with(&format!(".hearth-protect-{}", std::process::id()))
        })
        .collect();
    assert!(siblings.is_empty(), "no temporary directory is left beside --out");
    std::fs::remove_dir_all(&out).unwrap();
    std::fs::remove_file(corpus).unwrap();
}

fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hearth-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The JSON lines of a `--json` run.
fn json_lines(args: &[&str]) -> Vec<Value> {
    let out = hearth(args);
    assert!(out.status.success(), "hearth {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// Text of exactly `k × context + 1` GPT-2 tokens of the sample, cut before a token that starts
/// with a space so it encodes back to the same tokens: `hearth eval`'s windows of that text are
/// then exactly the trainer's rows.
fn aligned_gpt2_text(context: usize, k: usize) -> String {
    let sample = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../web/corpus/tiny_shakespeare_like.txt"),
    )
    .unwrap();
    let text: String = sample.chars().take(4000).collect();
    let v = json(&["tokenize", "--tokenizer", "gpt2", "--json", &text]);
    let tokens = v["tokens"].as_array().unwrap();
    let ids: Vec<String> = v["ids"].as_array().unwrap().iter().map(|i| i.to_string()).collect();
    let mut n = k * context + 1;
    while !tokens[n].as_str().unwrap().starts_with('Ġ') {
        n += context;
    }
    let out = hearth(&["decode", "--tokenizer", "gpt2", "--ids", &ids[..n].join(",")]);
    let text = String::from_utf8(out.stdout).unwrap();
    text.strip_suffix('\n').unwrap().to_string()
}

#[test]
fn fine_tune_starts_at_the_models_eval_loss_and_exports() {
    let dir = scratch("finetune");
    let corpus = dir.join("corpus.txt");
    std::fs::write(&corpus, aligned_gpt2_text(16, 6)).unwrap();
    let corpus = corpus.to_string_lossy().into_owned();
    let out = dir.join("run").to_string_lossy().into_owned();
    let model = case("gpt2-tiny-perturbed");
    let lines = json_lines(&[
        "train",
        "--init-from",
        &model,
        "--corpus",
        &corpus,
        "--context",
        "16",
        "--val-fraction",
        "0",
        "--batch-size",
        "1",
        "--eval-batches",
        "1000",
        "--steps",
        "2",
        "--eval-every",
        "2",
        "--seed",
        "0",
        "--sample-tokens",
        "2",
        "--json",
        "--out",
        &out,
    ]);
    let stats = &lines[0];
    assert_eq!(stats["config"]["tokenizer"], "Pretrained");
    assert_eq!(stats["config"]["lr"], 5e-5);
    assert_eq!(stats["config"]["decay"], "linear");
    let evals: Vec<&Value> = lines.iter().filter(|l| l["event"] == "eval").collect();
    assert_eq!(evals[0]["step"], 0, "the first evaluation is before any step");
    let step0 = evals[0]["train_loss"].as_f64().unwrap();
    let eval = json(&["eval", "--model", &model, "--corpus", &corpus, "--context", "16", "--json"]);
    let want = eval["loss"].as_f64().unwrap();
    assert!((step0 - want).abs() < 1e-4, "step 0 loss {step0} vs hearth eval {want}");
    assert_eq!(evals.last().unwrap()["step"], 2);
    // The exported directory reopens with the model's tokenizer.
    let v = json(&["generate", "--model", &out, "--prompt", "ROMEO:", "--max-new-tokens", "3", "--json"]);
    assert_eq!(v["new_ids"].as_array().unwrap().len(), 3);
    // Shape and tokenizer come from the model.
    fails_cleanly(
        &[
            "train",
            "--init-from",
            &model,
            "--corpus",
            &corpus,
            "--preset",
            "nano",
            "--out",
            &out,
            "--overwrite",
        ],
        "--preset cannot be used with --init-from",
    );
    // A resumed fine-tune refuses a second --init-from.
    fails_cleanly(
        &["train", "--resume", &out, "--init-from", &model, "--corpus", &corpus, "--out", &out],
        "--init-from",
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn several_files_jsonl_and_csv_are_documents() {
    let dir = scratch("documents");
    let sample: String = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../web/corpus/tiny_shakespeare_like.txt"),
    )
    .unwrap()
    .chars()
    .take(6000)
    .collect();
    let (a, rest) = sample.split_at(2000);
    let (b, c) = rest.split_at(2000);
    std::fs::write(dir.join("a.txt"), a).unwrap();
    std::fs::write(dir.join("b.txt"), b).unwrap();
    let jsonl: String = c.split("\n\n").map(|p| format!("{}\n", serde_json::json!({ "body": p }))).collect();
    std::fs::write(dir.join("c.jsonl"), &jsonl).unwrap();
    let paths: Vec<String> =
        ["a.txt", "b.txt", "c.jsonl"].iter().map(|f| dir.join(f).to_string_lossy().into_owned()).collect();
    let out = dir.join("run").to_string_lossy().into_owned();
    let mut args = vec!["train"];
    for p in &paths {
        args.extend(["--corpus", p.as_str()]);
    }
    args.extend([
        "--text-field",
        "body",
        "--packing",
        "per-doc",
        "--tokenizer",
        "bytes",
        "--n-layer",
        "1",
        "--n-head",
        "1",
        "--n-embd",
        "16",
        "--context",
        "32",
        "--batch-size",
        "4",
        "--epochs",
        "1",
        "--eval-every",
        "1000",
        "--val-fraction",
        "0.3",
        "--eval-batches",
        "1",
        "--sample-tokens",
        "2",
        "--json",
        "--out",
        &out,
    ]);
    let lines = json_lines(&args);
    let stats = &lines[0]["stats"];
    let docs = 2 + c.split("\n\n").filter(|p| !p.trim().is_empty()).count();
    assert_eq!(stats["documents"].as_u64().unwrap() as usize, docs);
    assert!(stats["val_documents"].as_u64().unwrap() >= 1);
    assert!(stats["dropped_tokens"].as_u64().unwrap() > 0, "per-doc drops each document's remainder");
    let train_rows = stats["train_windows"].as_u64().unwrap();
    let steps = lines[0]["config"]["steps"].as_u64().unwrap();
    assert_eq!(steps, train_rows.div_ceil(4), "one epoch");
    let done = lines.last().unwrap();
    assert_eq!(done["event"], "done");
    // trainer_state.json keeps the run's history for comparing runs: curves, epoch, time.
    let state: Value =
        serde_json::from_slice(&std::fs::read(dir.join("run/trainer_state.json")).unwrap()).unwrap();
    assert!(state["train_seconds"].as_f64().unwrap() > 0.0);
    let last_eval = state["history"].as_array().unwrap().last().unwrap();
    assert!((last_eval["epoch"].as_f64().unwrap() - 1.0).abs() < 0.2, "{last_eval}");
    assert_eq!(state["config"]["data"]["packing"], "per-doc");

    // A bad row is refused with its line number; nothing is written.
    std::fs::write(dir.join("bad.jsonl"), "{\"text\": \"fine\"}\n{\"txt\": \"typo\"}\n").unwrap();
    let bad = dir.join("bad.jsonl").to_string_lossy().into_owned();
    let out2 = dir.join("run2").to_string_lossy().into_owned();
    fails_cleanly(&["train", "--corpus", &bad, "--out", &out2], "line 2: no \"text\" field");
    assert!(!dir.join("run2").exists());
    std::fs::write(dir.join("bad.csv"), "id,text\n1,ok\n2,\"open\n").unwrap();
    let bad = dir.join("bad.csv").to_string_lossy().into_owned();
    fails_cleanly(&["train", "--corpus", &bad, "--out", &out2], "line 3: a quoted field is never closed");
    fails_cleanly(&["train", "--corpus", &paths[0], "--packing", "zip", "--out", &out2], "unknown packing");
    fails_cleanly(
        &["train", "--corpus", &paths[0], "--epochs=0", "--out", &out2],
        "--epochs must be a positive number",
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn attention_and_lens_json() {
    let v = json(&[
        "attention",
        "--model",
        &case("gpt2-tiny-perturbed"),
        "--text",
        "Swimming at the beach is",
        "--json",
    ]);
    assert_eq!(v["tokens"].as_array().unwrap().len(), 6);
    let a = &v["attentions"];
    assert_eq!((a.as_array().unwrap().len(), a[0].as_array().unwrap().len()), (2, 4), "[layer][head]");
    let row: f64 = a[1][3][5].as_array().unwrap().iter().map(|w| w.as_f64().unwrap()).sum();
    assert!((row - 1.0).abs() < 1e-5, "each query's weights sum to 1, got {row}");
    let v =
        json(&["attention", "--model", &case("bert-tiny-mlm"), "--text", "Life is like a box.", "--json"]);
    assert_eq!(v["tokens"][0], "[CLS]");
    let v = json(&[
        "lens",
        "--model",
        &case("gpt2-tiny-perturbed"),
        "--text",
        "Swimming at the beach is",
        "--top-k",
        "2",
        "--json",
    ]);
    let lens = v["lens"].as_array().unwrap();
    assert_eq!(
        (lens.len(), lens[0].as_array().unwrap().len(), lens[0][0].as_array().unwrap().len()),
        (2, 6, 2)
    );
    assert!(lens[1][5][0]["prob"].as_f64().unwrap() > 0.0);
    fails_cleanly(&["lens", "--model", &case("bert-tiny-mlm"), "--text", "x"], "needs a causal LM");
    fails_cleanly(&["attention", "--model", &case("gpt2-tiny"), "--text", ""], "no tokens");
}

/// `hearth score --per-token`: the per-token losses average to the score's loss; `hearth embed`
/// lists neighbours by falling cosine.
#[test]
fn per_token_surprisal_and_embedding_neighbours() {
    let model = case("gpt2-tiny-perturbed");
    let v =
        json(&["score", "--model", &model, "--text", "Swimming at the beach is", "--per-token", "--json"]);
    let tokens = v["tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 5);
    let mean = tokens.iter().map(|t| t["loss"].as_f64().unwrap()).sum::<f64>() / 5.0;
    assert!((mean - v["loss"].as_f64().unwrap()).abs() < 1e-5, "{mean} vs {}", v["loss"]);
    assert_eq!(tokens[0]["top"].as_array().unwrap().len(), 3);
    assert!(tokens.iter().all(|t| t["rank"].as_u64().unwrap() >= 1));
    let v = json(&["embed", "--model", &model, "--token", " the", "--top-k", "4", "--json"]);
    assert_eq!(v["id"], 262);
    let cos: Vec<f64> =
        v["nearest"].as_array().unwrap().iter().map(|n| n["cosine"].as_f64().unwrap()).collect();
    assert_eq!(cos.len(), 4);
    assert!(cos.windows(2).all(|w| w[0] >= w[1]), "{cos:?}");
    fails_cleanly(&["embed", "--model", &model, "--token", "Swimming at the beach"], "not one");
}

/// `--weights f16` stores the matrices in f16 (Flex computes in it): the greedy ids and the
/// loss are transformers' within f16's tolerance (hearth-lm's `tests/f16_weights.rs` states it);
/// a device without f16 (ndarray) and an unknown dtype are one line and exit 1 or 2.
#[test]
fn f16_weights_generate_and_score_like_transformers() {
    let gpt2 = case("gpt2-tiny-perturbed");
    let exp = expected("gpt2-tiny-perturbed");
    let v = json(&[
        "--weights",
        "f16",
        "generate",
        "--model",
        &gpt2,
        "--prompt",
        "Swimming at the beach is",
        "--max-new-tokens",
        "20",
        "--json",
    ]);
    assert_eq!(v["new_ids"], exp["greedy_new_ids"]);
    let v = json(&[
        "--weights",
        "f16",
        "score",
        "--model",
        &gpt2,
        "--text",
        "Swimming at the beach is",
        "--json",
    ]);
    let (got, want) = (v["loss"].as_f64().unwrap(), exp["loss_labels_eq_input_ids"].as_f64().unwrap());
    assert!((got - want).abs() <= 1e-2, "loss {got} vs {want}");
    fails_cleanly(
        &["--device", "ndarray", "--weights", "f16", "score", "--model", &gpt2, "--text", "hi"],
        "cannot store weights as f16",
    );
    fails_with_code(2, &["--weights", "int4", "score", "--model", &gpt2, "--text", "hi"], "f32 or f16");
}

/// The Llama family through the CLI: `generate` (greedy, with the cache) and `score` on the bf16,
/// sharded Llama 3 fixture and the Qwen3 one, read with their own tokenizer.json.
#[test]
fn llama_family_generates_and_scores_as_transformers() {
    for name in ["llama3-scaled-bf16-sharded", "qwen3-qknorm-headdim"] {
        let exp = expected(name);
        let prompt = "Swimming at the beach is";
        let v = json(&[
            "generate",
            "--model",
            &case(name),
            "--prompt",
            prompt,
            "--max-new-tokens",
            "20",
            // The fixtures' ids are transformers' with `eos_token_id=None, min_new_tokens=20`.
            "--ignore-eos",
            "--json",
        ]);
        assert_eq!(v["prompt_ids"], exp["input_ids"], "{name}");
        assert_eq!(v["new_ids"], exp["greedy_new_ids"], "{name}");
        let v = json(&["score", "--model", &case(name), "--text", prompt, "--json"]);
        let loss = v["loss"].as_f64().unwrap();
        assert!(
            (loss - exp["loss_labels_eq_input_ids"].as_f64().unwrap()).abs() < 1e-4,
            "{name}: loss {loss}"
        );
    }
}

/// A shard index that points outside the directory, a config asking for what is not implemented,
/// and a fine-tune of the family (not built yet) each get one line and exit code 1.
#[test]
fn llama_family_bad_input_exits_1_with_one_line() {
    let dir = scratch("llama-bad-index");
    let src = PathBuf::from(case("llama3-scaled-bf16-sharded"));
    std::fs::copy(src.join("config.json"), dir.join("config.json")).unwrap();
    std::fs::write(
        dir.join("model.safetensors.index.json"),
        br#"{"weight_map": {"lm_head.weight": "../secret.safetensors"}}"#,
    )
    .unwrap();
    std::fs::copy(src.join("tokenizer.json"), dir.join("tokenizer.json")).unwrap();
    fails_with_code(
        1,
        &["score", "--model", &dir.to_string_lossy(), "--text", "hi there"],
        "not a shard file",
    );

    let windowed = edited_model("qwen2-mqa-bias", "qwen2-window", |c| c["use_sliding_window"] = true.into());
    fails_with_code(
        1,
        &["score", "--model", &windowed.to_string_lossy(), "--text", "hi there"],
        "use_sliding_window",
    );

    // --arch llama's knobs: key/value heads that do not divide the query heads, and on another
    // architecture.
    let corpus = corpus_slice(2000);
    let out = scratch("llama-knobs");
    let run = out.join("run").to_string_lossy().into_owned();
    let corpus = corpus.to_string_lossy().into_owned();
    let base = ["train", "--corpus", &corpus, "--out", &run, "--preset", "micro"];
    fails_with_code(
        1,
        &[&base[..], &["--arch", "llama", "--n-kv-head", "3"]].concat(),
        "must divide --n-head",
    );
    fails_with_code(1, &[&base[..], &["--n-kv-head", "1"]].concat(), "--arch llama's");
    fails_with_code(1, &[&base[..], &["--arch", "llama", "--rope-theta", "0"]].concat(), "--rope-theta");
    let _ = std::fs::remove_dir_all(&out);
}

/// Fine-tuning a Qwen3 (QK-norm, free head_dim, untied) and pretraining `--arch llama` from
/// scratch: each starts at the loss `hearth score` gives the model it starts from, lowers it,
/// and exports a directory of its own family that Hearth reopens with the loss of its last
/// evaluation. (The training math against PyTorch step by step: hearth-lm's train_parity.rs;
/// transformers reopening these exports with the same loss: the closing note of issue 32.)
#[test]
fn the_llama_family_fine_tunes_and_pretrains() {
    let out = scratch("llama-train");
    // Its own copy: another test deletes the shared slice when it ends.
    let corpus = out.join("corpus.txt");
    let text = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../web/corpus/tiny_shakespeare_like.txt"),
    )
    .unwrap();
    std::fs::write(&corpus, &text[..20_000]).unwrap();
    let corpus = corpus.to_string_lossy().into_owned();
    let ft = out.join("ft").to_string_lossy().into_owned();
    let lines = json_lines(&[
        "train",
        "--corpus",
        &corpus,
        "--init-from",
        &case("qwen3-qknorm-headdim"),
        "--context",
        "32",
        "--batch-size",
        "4",
        "--steps",
        "20",
        "--lr",
        "1e-3",
        "--eval-every",
        "10",
        "--eval-batches",
        "4",
        "--sample-tokens",
        "4",
        "--out",
        &ft,
        "--json",
    ]);
    let evals: Vec<&Value> = lines.iter().filter(|l| l["event"] == "eval").collect();
    assert_eq!(evals.len(), 3, "{lines:?}");
    let (first, last) = (evals[0]["val_loss"].as_f64().unwrap(), evals[2]["val_loss"].as_f64().unwrap());
    assert!(last < first, "the fine-tune lowered the loss: {first} → {last}");
    let config: Value = serde_json::from_slice(&std::fs::read(format!("{ft}/config.json")).unwrap()).unwrap();
    assert_eq!((config["model_type"].as_str(), config["head_dim"].as_u64()), (Some("qwen3"), Some(16)));
    assert_eq!(config["tie_word_embeddings"], false);

    let pre = out.join("pre").to_string_lossy().into_owned();
    let lines = json_lines(&[
        "train",
        "--corpus",
        &corpus,
        "--arch",
        "llama",
        "--preset",
        "micro",
        "--n-kv-head",
        "1",
        "--rope-theta",
        "500000",
        "--untie-embeddings",
        "--steps",
        "40",
        "--eval-every",
        "20",
        "--eval-batches",
        "4",
        "--sample-tokens",
        "4",
        "--out",
        &pre,
        "--json",
    ]);
    let evals: Vec<&Value> = lines.iter().filter(|l| l["event"] == "eval").collect();
    let (first, last) =
        (evals[0]["val_loss"].as_f64().unwrap(), evals.last().unwrap()["val_loss"].as_f64().unwrap());
    assert!(last < first, "pretraining lowered the loss: {first} → {last}");
    let config: Value =
        serde_json::from_slice(&std::fs::read(format!("{pre}/config.json")).unwrap()).unwrap();
    assert_eq!(config["model_type"], "llama");
    assert_eq!(
        (config["num_attention_heads"].as_u64(), config["num_key_value_heads"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(config["rope_parameters"]["rope_theta"], 500000.0);
    assert_eq!(config["tie_word_embeddings"], false);
    // The export opens as a model again: `hearth eval` on the corpus gives a finite loss near the
    // run's last validation loss (same model; the eval's windows are the whole file's).
    let eval = json(&["eval", "--model", &pre, "--corpus", &corpus, "--json"]);
    let loss = eval["loss"].as_f64().unwrap();
    assert!(loss.is_finite() && (loss - last).abs() < 0.3, "eval {loss} vs the run's {last}");
    let _ = std::fs::remove_dir_all(&out);
}

/// ModernBERT from the CLI: fill-mask as transformers with the checkpoint's own tokenizer (its
/// window shorter than the text), a fine-tune that lowers the loss, `--arch modernbert` from
/// scratch exporting what `eval` and `fill-mask` open, and a config asking for what is not
/// implemented refused in one line.
#[test]
fn modernbert_fills_masks_fine_tunes_and_pretrains() {
    let name = "modernbert-local";
    let exp = expected(name);
    let v = json(&["fill-mask", "--model", &case(name), "--json", exp["text"].as_str().unwrap()]);
    let mask = &v["masks"][0];
    assert_eq!(mask["position"], exp["mask_position"]);
    let ids: Vec<&Value> = mask["predictions"].as_array().unwrap().iter().map(|p| &p["id"]).collect();
    assert_eq!(ids, exp["mask_top5_ids"].as_array().unwrap().iter().collect::<Vec<_>>());
    for (p, w) in
        mask["predictions"].as_array().unwrap().iter().zip(exp["mask_top5_probs"].as_array().unwrap())
    {
        assert!((p["prob"].as_f64().unwrap() - w.as_f64().unwrap()).abs() < 1e-4);
    }
    fails_cleanly(&["fill-mask", "--model", &case("llama-gqa-tied"), "a [MASK]"], "needs a masked LM");

    let out = scratch("modernbert-train");
    let corpus = out.join("corpus.txt");
    let text = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../web/corpus/tiny_shakespeare_like.txt"),
    )
    .unwrap();
    std::fs::write(&corpus, &text[..20_000]).unwrap();
    let corpus = corpus.to_string_lossy().into_owned();
    let ft = out.join("ft").to_string_lossy().into_owned();
    let lines = json_lines(&[
        "train",
        "--corpus",
        &corpus,
        "--init-from",
        &case(name),
        "--context",
        "32",
        "--batch-size",
        "4",
        "--steps",
        "20",
        "--lr",
        "1e-3",
        "--eval-every",
        "10",
        "--eval-batches",
        "4",
        "--sample-tokens",
        "4",
        "--out",
        &ft,
        "--json",
    ]);
    let evals: Vec<&Value> = lines.iter().filter(|l| l["event"] == "eval").collect();
    assert_eq!(evals.len(), 3, "{lines:?}");
    let (first, last) = (evals[0]["val_loss"].as_f64().unwrap(), evals[2]["val_loss"].as_f64().unwrap());
    assert!(last < first, "the fine-tune lowered the loss: {first} → {last}");
    let config: Value = serde_json::from_slice(&std::fs::read(format!("{ft}/config.json")).unwrap()).unwrap();
    assert_eq!(
        (config["model_type"].as_str(), config["local_attention"].as_u64()),
        (Some("modernbert"), Some(8))
    );

    let pre = out.join("pre").to_string_lossy().into_owned();
    let lines = json_lines(&[
        "train",
        "--corpus",
        &corpus,
        "--arch",
        "modernbert",
        "--preset",
        "micro",
        "--steps",
        "40",
        "--eval-every",
        "20",
        "--eval-batches",
        "4",
        "--sample-tokens",
        "4",
        "--out",
        &pre,
        "--json",
    ]);
    let evals: Vec<&Value> = lines.iter().filter(|l| l["event"] == "eval").collect();
    let (first, last) =
        (evals[0]["val_loss"].as_f64().unwrap(), evals.last().unwrap()["val_loss"].as_f64().unwrap());
    assert!(last < first, "pretraining lowered the loss: {first} → {last}");
    let config: Value =
        serde_json::from_slice(&std::fs::read(format!("{pre}/config.json")).unwrap()).unwrap();
    assert_eq!(config["architectures"][0], "ModernBertForMaskedLM");
    assert_eq!(config["layer_types"][1], "sliding_attention");
    let eval = json(&["eval", "--model", &pre, "--corpus", &corpus, "--json"]);
    assert!(eval["loss"].as_f64().unwrap().is_finite());
    let v = json(&["fill-mask", "--model", &pre, "--json", "First [MASK]itizen"]);
    assert_eq!(v["masks"][0]["predictions"].as_array().unwrap().len(), 5);

    let bad = edited_model(name, "modernbert-yarn", |c| {
        c["rope_parameters"]["sliding_attention"]["rope_type"] = "yarn".into();
    });
    fails_with_code(1, &["fill-mask", "--model", &bad.to_string_lossy(), "a [MASK]"], "yarn");
    let _ = std::fs::remove_dir_all(&out);
}

/// `hearth chat --message --json` on an instruct-shaped Qwen3 (its template in
/// tokenizer_config.json, eos ids in generation_config.json): the prompt ids of transformers'
/// `apply_chat_template(..., add_generation_prompt=True)`, then transformers' greedy reply, which
/// ends at an eos id; the reply's text is decoded without special tokens.
#[test]
fn chat_renders_the_template_and_stops_at_eos_as_transformers() {
    let dir = case("qwen3-chat");
    let chat: Value = serde_json::from_slice(&std::fs::read(format!("{dir}/chat.json")).unwrap()).unwrap();
    let v = json(&[
        "chat",
        "--model",
        &dir,
        "--system",
        chat["messages"][0]["content"].as_str().unwrap(),
        "--message",
        chat["messages"][1]["content"].as_str().unwrap(),
        "--max-new-tokens",
        "40",
        "--json",
    ]);
    assert_eq!(v["prompt_ids"], chat["prompt_ids"]);
    assert!(v["prompt"].as_str().unwrap().ends_with("<|im_start|>assistant\n"), "{}", v["prompt"]);
    assert_eq!(v["new_ids"], chat["new_ids"]);
    assert_eq!(v["eos_token_ids"], chat["eos_token_ids"]);
    assert_eq!(v["stop"], "eos");
    assert_eq!(v["reply"], chat["reply"]);
    assert_eq!(v["sampling"], "greedy");

    // `hearth generate` on the rendered prompt stops at the same eos id, as transformers'
    // `generate` does (these ids are its output); --ignore-eos goes on to the limit.
    let prompt = v["prompt"].as_str().unwrap();
    let g = json(&["generate", "--model", &dir, "--prompt", prompt, "--max-new-tokens", "40", "--json"]);
    assert_eq!(g["prompt_ids"], chat["prompt_ids"]);
    assert_eq!(g["new_ids"], chat["new_ids"]);
    assert_eq!(g["stop"], "eos");
    assert_eq!(g["eos_token_ids"], chat["eos_token_ids"]);
    let on = json(&[
        "generate",
        "--model",
        &dir,
        "--prompt",
        prompt,
        "--max-new-tokens",
        "16",
        "--ignore-eos",
        "--json",
    ]);
    let (on, stopped) = (on["new_ids"].as_array().unwrap(), chat["new_ids"].as_array().unwrap());
    assert_eq!((on.len(), &on[..stopped.len()]), (16, &stopped[..]));

    // A base model has no template: one line saying so, exit 1. A broken template is refused at
    // load with the parser's reason.
    fails_with_code(
        1,
        &["chat", "--model", &case("qwen3-qknorm-headdim"), "--message", "hi"],
        "no chat template",
    );
    let broken = scratch("chat-broken-template");
    for f in ["config.json", "model.safetensors", "tokenizer.json"] {
        std::fs::copy(format!("{dir}/{f}"), broken.join(f)).unwrap();
    }
    std::fs::write(broken.join("tokenizer_config.json"), r#"{"chat_template": "{% for m in messages %}"}"#)
        .unwrap();
    fails_with_code(1, &["chat", "--model", &broken.to_string_lossy(), "--message", "hi"], "does not parse");
    std::fs::write(broken.join("chat_template.jinja"), "{{ raise_exception('Only user turns, please') }}")
        .unwrap();
    fails_with_code(
        1,
        &["chat", "--model", &broken.to_string_lossy(), "--message", "hi"],
        "Only user turns, please",
    );
    let _ = std::fs::remove_dir_all(&broken);
}

/// The interactive session: each stdin line is a turn answered in the template's format, the
/// second with the first reply in its prompt; `/prompt` shows it; end of input ends the session.
/// A fine-tune of an instruct checkpoint keeps what makes it chat: the run's directory holds the
/// source's tokenizer_config.json (its template) and generation_config.json (its eos ids) as they
/// were, `hearth chat` renders the source's prompt on it, and a resumed run keeps them.
#[test]
fn a_fine_tuned_instruct_model_still_chats() {
    let dir = case("qwen3-chat");
    let chat: Value = serde_json::from_slice(&std::fs::read(format!("{dir}/chat.json")).unwrap()).unwrap();
    let out = scratch("chat-finetune");
    let corpus = out.join("corpus.txt");
    let text = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../web/corpus/tiny_shakespeare_like.txt"),
    )
    .unwrap();
    std::fs::write(&corpus, &text[..4_000]).unwrap();
    let corpus = corpus.to_string_lossy().into_owned();
    let ft = out.join("ft").to_string_lossy().into_owned();
    let recipe =
        ["--context", "16", "--batch-size", "2", "--eval-batches", "1", "--sample-tokens", "0", "--json"];
    let mut args = vec!["train", "--corpus", &corpus, "--init-from", &dir, "--steps", "2", "--out", &ft];
    args.extend(recipe);
    json_lines(&args);
    let same = |name: &str| {
        let a = std::fs::read(format!("{dir}/{name}")).unwrap();
        assert_eq!(a, std::fs::read(format!("{ft}/{name}")).unwrap(), "{name} as the source's");
    };
    same("tokenizer_config.json");
    same("generation_config.json");
    let v = json(&[
        "chat",
        "--model",
        &ft,
        "--system",
        chat["messages"][0]["content"].as_str().unwrap(),
        "--message",
        chat["messages"][1]["content"].as_str().unwrap(),
        "--max-new-tokens",
        "2",
        "--json",
    ]);
    assert_eq!(v["prompt_ids"], chat["prompt_ids"]);
    assert_eq!(v["eos_token_ids"], chat["eos_token_ids"]);

    let mut args = vec!["train", "--corpus", &corpus, "--resume", &ft, "--steps", "3", "--out", &ft];
    args.extend(recipe);
    json_lines(&args);
    same("tokenizer_config.json");
    same("generation_config.json");
}

#[test]
fn chat_interactive_keeps_the_conversation() {
    use std::io::Write;
    let dir = case("qwen3-chat");
    let mut child = Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(["chat", "--model", &dir, "--max-new-tokens", "5"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"Hi\nAgain\n/prompt\n").unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 2, "two replies");
    // The last prompt holds both turns and the first reply, and opens the assistant's turn.
    let shown = stderr.split("> ").nth(3).unwrap();
    assert!(shown.contains("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"), "{shown}");
    assert!(shown.contains("<|im_start|>user\nAgain<|im_end|>\n<|im_start|>assistant\n"), "{shown}");
}

/// `hearth handoff` writes the Trainer directory for a run (its contents are checked in
/// hearth-lm's `train.rs`; Trainer itself in `tests/hf/check_handoff.sh`), prints each step's
/// loss with `train --json`, and refuses with one line: an --out holding other files, an earlier
/// hand-off without --overwrite, fewer steps than taken; coming back refuses a Trainer checkpoint
/// without its hand-off, a sharded one, and writing into Trainer's directory.
#[test]
fn handoff_writes_a_trainer_directory_and_refuses_clearly() {
    let dir = scratch("handoff");
    let corpus = corpus_slice(20_000).to_string_lossy().into_owned();
    let run = |arch: &str, name: &str| {
        let out = dir.join(name).to_string_lossy().into_owned();
        let lines = json_lines(&[
            "train",
            "--corpus",
            &corpus,
            "--arch",
            arch,
            "--preset",
            "nano",
            "--context",
            "32",
            "--batch-size",
            "2",
            "--steps",
            "3",
            "--eval-every",
            "3",
            "--eval-batches",
            "1",
            "--sample-tokens",
            "0",
            "--out",
            &out,
            "--json",
        ]);
        let steps: Vec<u64> =
            lines.iter().filter(|l| l["event"] == "step").map(|l| l["step"].as_u64().unwrap()).collect();
        assert_eq!(steps, [1, 2, 3], "one line per step");
        assert!(lines
            .iter()
            .filter(|l| l["event"] == "step")
            .all(|l| l["loss"].as_f64().unwrap().is_finite()));
        out
    };
    let gpt = run("gpt2", "gpt");
    let out = dir.join("hand").to_string_lossy().into_owned();
    let v = json(&["handoff", "--run", &gpt, "--corpus", &corpus, "--out", &out, "--steps", "5", "--json"]);
    assert_eq!((v["step"].as_u64(), v["steps"].as_u64()), (Some(3), Some(5)));
    for file in ["handoff.json", "train_hf.py", "checkpoint-3/optimizer.pt", "data/order.parquet"] {
        assert!(dir.join("hand").join(file).is_file(), "{file}");
    }
    let handoff = |out: &Path, extra: &[&str]| {
        let out = out.to_string_lossy().into_owned();
        let mut args = vec!["handoff", "--run", &gpt, "--corpus", &corpus, "--out", &out];
        args.extend_from_slice(extra);
        hearth(&args)
    };
    let one_line = |o: Output, needle: &str| {
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{stderr}");
        assert!(stderr.trim_end().lines().count() == 1 && stderr.contains(needle), "{stderr}");
    };
    one_line(handoff(&dir.join("hand"), &[]), "pass --overwrite");
    assert!(handoff(&dir.join("hand"), &["--overwrite"]).status.success());
    let other = dir.join("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("notes.txt"), "mine").unwrap();
    one_line(handoff(&other, &["--overwrite"]), "holds other files");
    assert!(other.join("notes.txt").is_file(), "nothing of the user's is deleted");
    one_line(handoff(&dir.join("fewer"), &["--steps", "2"]), "has taken 3 steps");
    assert!(!dir.join("fewer").exists(), "a refused hand-off writes nothing");
    let bert = run("bert", "bert");
    let masked = dir.join("bert-hand").to_string_lossy().into_owned();
    let v = json(&["handoff", "--run", &bert, "--corpus", &corpus, "--out", &masked, "--json"]);
    assert!(v["files"].as_array().unwrap().iter().any(|f| f == "data/masked_train.parquet"), "{v}");
    // Coming back needs the hand-off beside a Trainer checkpoint, and never writes into it.
    let lone = dir.join("lone");
    std::fs::create_dir_all(&lone).unwrap();
    std::fs::copy(dir.join("hand/checkpoint-3/optimizer.pt"), lone.join("optimizer.pt")).unwrap();
    let resume = |from: &Path, out: &Path| {
        let (from, out) = (from.to_string_lossy().into_owned(), out.to_string_lossy().into_owned());
        hearth(&["train", "--resume", &from, "--corpus", &corpus, "--out", &out])
    };
    one_line(resume(&lone, &dir.join("back")), "cannot read");
    // A Trainer checkpoint with no hand-off above it continues as a fine-tune of its weights that
    // takes over its step and AdamW state, once the flags give the same AdamW.
    let plain = dir.join("plain/checkpoint-3");
    std::fs::create_dir_all(&plain).unwrap();
    for entry in std::fs::read_dir(dir.join("hand/checkpoint-3")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), plain.join(entry.file_name())).unwrap();
    }
    let from = plain.to_string_lossy().into_owned();
    let continued = |out: &str, extra: &[&str]| {
        let out = dir.join(out).to_string_lossy().into_owned();
        let mut args = vec!["train", "--resume", &from, "--corpus", &corpus, "--out", &out, "--steps", "5"];
        args.extend_from_slice(extra);
        hearth(&args)
    };
    one_line(continued("plain-back", &[]), "pass --beta2 0.99");
    let o = continued("plain-back", &["--beta2", "0.99", "--weight-decay", "0.1", "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let lines: Vec<serde_json::Value> =
        String::from_utf8_lossy(&o.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let opened =
        lines.iter().find(|l| l["event"] == "plain_trainer_checkpoint").expect("what came over is said");
    assert_eq!(opened["step"], 3);
    assert!(opened["lacking"].to_string().contains("learning-rate schedule"), "{opened}");
    let steps: Vec<u64> =
        lines.iter().filter(|l| l["event"] == "step").map(|l| l["step"].as_u64().unwrap()).collect();
    assert_eq!(steps, [4, 5], "it continues from Trainer's step");
    let handed = dir.join("hand/checkpoint-3");
    one_line(resume(&handed, &handed), "another --out");
    let fsdp = dir.join("hand/checkpoint-9");
    std::fs::create_dir_all(fsdp.join("pytorch_model_fsdp_0")).unwrap();
    std::fs::copy(handed.join("optimizer.pt"), fsdp.join("optimizer.pt")).unwrap();
    one_line(resume(&fsdp, &dir.join("back")), "sharded checkpoint");
    let _ = std::fs::remove_dir_all(&dir);
}
