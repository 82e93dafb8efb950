//! `--device wgpu`: the browser's WebGPU kernels run natively through Vulkan (in CI, Mesa's
//! lavapipe, a CPU emulating a GPU; `scripts/vulkan.sh` installs it where no driver is). Every
//! result must equal `transformers`' on the fixtures and the CPU backend's, as in the browser.

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

fn json_lines(args: &[&str]) -> Vec<Value> {
    let out = hearth(args);
    assert!(out.status.success(), "hearth {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn json(args: &[&str]) -> Value {
    let mut lines = json_lines(args);
    assert_eq!(lines.len(), 1, "one JSON object expected");
    lines.remove(0)
}

fn expected(name: &str) -> Value {
    serde_json::from_slice(&std::fs::read(format!("{}/expected.json", case(name))).unwrap()).unwrap()
}

fn close(a: &Value, b: &Value, tol: f64, what: &str) {
    let (a, b) = (a.as_f64().expect(what), b.as_f64().expect(what));
    // Written so that NaN fails.
    assert!((a - b).abs() <= tol, "{what}: {a} vs {b} (tolerance {tol})");
}

/// `hearth generate`'s 20 greedy tokens after the fixtures' prompt, on the GPU, with the
/// weights stored as `weights`: what `expected.json`'s `greedy_new_ids` hold.
/// The fixtures' greedy ids are transformers' with `eos_token_id=None` and 20 new tokens
/// required, hence `--ignore-eos`.
fn greedy_on_wgpu<'a>(model: &'a str, weights: &'a str) -> [&'a str; 13] {
    [
        "--device",
        "wgpu",
        "--weights",
        weights,
        "generate",
        "--model",
        model,
        "--prompt",
        "Swimming at the beach is",
        "--max-new-tokens",
        "20",
        "--ignore-eos",
        "--json",
    ]
}

#[test]
fn wgpu_generates_scores_and_fills_masks_as_transformers() {
    let gpt2 = case("gpt2-tiny-perturbed");
    let exp = expected("gpt2-tiny-perturbed");
    let v = json(&greedy_on_wgpu(&gpt2, "f32"));
    assert_eq!(v["new_ids"], exp["greedy_new_ids"]);

    let v = json(&[
        "--device",
        "wgpu",
        "score",
        "--model",
        &gpt2,
        "--text",
        "Swimming at the beach is",
        "--json",
    ]);
    close(&v["loss"], &exp["loss_labels_eq_input_ids"], 1e-4, "loss");

    // The same seeded top-k draw as the CPU backend: the ranking and the draw agree.
    let sampled = |device: &str| {
        json(&[
            "--device",
            device,
            "generate",
            "--model",
            &gpt2,
            "--prompt",
            "Every effort moves you",
            "--max-new-tokens",
            "12",
            "--temperature",
            "0.8",
            "--top-k",
            "40",
            "--seed",
            "7",
            "--json",
        ])["new_ids"]
            .clone()
    };
    assert_eq!(sampled("wgpu"), sampled("flex"));

    let bert = "bert-tiny-mlm-perturbed";
    let exp = expected(bert);
    let v = json(&[
        "--device",
        "wgpu",
        "fill-mask",
        "--model",
        &case(bert),
        "--json",
        "Life is like a [MASK] of chocolates.",
    ]);
    let predictions = v["masks"][0]["predictions"].as_array().unwrap();
    let ids: Vec<&Value> = predictions.iter().map(|p| &p["id"]).collect();
    let want: Vec<&Value> = exp["mask_top5_ids"].as_array().unwrap().iter().collect();
    assert_eq!(ids, want);
    for (p, w) in predictions.iter().zip(exp["mask_top5_probs"].as_array().unwrap()) {
        close(&p["prob"], w, 1e-4, "fill-mask probability");
    }

    // ModernBERT: rotary positions, global and sliding-window layers (a window shorter than the
    // text), the checkpoint's own tokenizer.
    let modern = "modernbert-local";
    let exp = expected(modern);
    let v = json(&[
        "--device",
        "wgpu",
        "fill-mask",
        "--model",
        &case(modern),
        "--json",
        exp["text"].as_str().unwrap(),
    ]);
    let predictions = v["masks"][0]["predictions"].as_array().unwrap();
    let ids: Vec<&Value> = predictions.iter().map(|p| &p["id"]).collect();
    let want: Vec<&Value> = exp["mask_top5_ids"].as_array().unwrap().iter().collect();
    assert_eq!(ids, want, "{modern}");
    for (p, w) in predictions.iter().zip(exp["mask_top5_probs"].as_array().unwrap()) {
        close(&p["prob"], w, 1e-4, "ModernBERT fill-mask probability");
    }
}

/// A Qwen3 (QK-norm, GQA, a free head_dim) on the GPU: the greedy ids `transformers` gives, with
/// the cache continuing the rotation. One process: each costs ~25 s of tuning on lavapipe, and
/// the family's other switches run the same kernels (hearth-lm's `llama_parity.rs` checks every
/// fixture on both CPU backends).
#[test]
fn wgpu_runs_the_llama_family_as_transformers() {
    let qwen3 = case("qwen3-qknorm-headdim");
    let exp = expected("qwen3-qknorm-headdim");
    let v = json(&greedy_on_wgpu(&qwen3, "f32"));
    assert_eq!(v["new_ids"], exp["greedy_new_ids"]);
}

/// `--weights f16` on the GPU (lavapipe has shader-f16; a GPU without it refuses with a line):
/// the same greedy ids as transformers. One process: on lavapipe each tunes its f16 kernels
/// anew (~1 min); the loss and logits against f16's tolerance are checked on the CPU backend
/// (`tests/cli.rs`, hearth-lm's `tests/f16_weights.rs`), which runs the same model code.
#[test]
fn wgpu_with_f16_weights_generates_as_transformers() {
    let gpt2 = case("gpt2-tiny-perturbed");
    let exp = expected("gpt2-tiny-perturbed");
    let out = hearth(&greedy_on_wgpu(&gpt2, "f16"));
    if !out.status.success() {
        // Only a GPU without f16 may refuse, and then with its one line.
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("cannot store weights as f16"), "{stderr}");
        return;
    }
    let v: Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    assert_eq!(v["new_ids"], exp["greedy_new_ids"]);
}

/// Six fine-tuning steps of the GPT-2, BERT and ModernBERT fixtures on the GPU follow the CPU backend's
/// losses. (From the same weights: a model initialised from scratch draws its weights from the
/// device's random stream, which differs between backends.)
#[test]
fn wgpu_trains_as_the_cpu_backend() {
    let text = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../web/corpus/tiny_shakespeare_like.txt"),
    )
    .unwrap();
    let dir = std::env::temp_dir().join(format!("hearth-gpu-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let corpus = dir.join("corpus.txt");
    std::fs::write(&corpus, &text[..20_000]).unwrap();
    let corpus = corpus.to_string_lossy().into_owned();
    for model in ["gpt2-tiny-perturbed", "bert-tiny-mlm-perturbed", "modernbert-local"] {
        let run = |device: &str| {
            let out = dir.join(format!("{model}-{device}")).to_string_lossy().into_owned();
            json_lines(&[
                "--device",
                device,
                "train",
                "--corpus",
                &corpus,
                "--init-from",
                &case(model),
                "--dropout",
                "0",
                "--context",
                "32",
                "--batch-size",
                "4",
                "--steps",
                "6",
                "--lr",
                "1e-3",
                "--eval-every",
                "2",
                "--eval-batches",
                "2",
                "--sample-tokens",
                "4",
                "--out",
                &out,
                "--json",
            ])
        };
        let evals = |lines: &[Value]| -> Vec<Value> {
            lines.iter().filter(|l| l["event"] == "eval").cloned().collect()
        };
        let (gpu, cpu) = (run("wgpu"), run("flex"));
        let (gpu_evals, cpu_evals) = (evals(&gpu), evals(&cpu));
        assert_eq!(gpu_evals.len(), 4, "{model}: {gpu:?}");
        assert_eq!(cpu_evals.len(), 4, "{model}");
        for (g, c) in gpu_evals.iter().zip(&cpu_evals) {
            assert_eq!(g["step"], c["step"]);
            // Before any step the losses are forward passes: 1e-4. AdamW divides each gradient
            // by its own running RMS, so a rounding-level difference in a near-zero gradient
            // becomes a whole learning-rate step: measured after 6 steps, 2e-6 for GPT-2 and
            // 1.4e-4 for BERT (whose exact-erf GELU is a polynomial on the GPU, libm on the CPU).
            let tol = if g["step"] == 0 { 1e-4 } else { 5e-4 };
            for key in ["train_loss", "val_loss"] {
                close(&g[key], &c[key], tol, &format!("{model} {key} at step {}", g["step"]));
            }
        }
        let done = gpu.iter().find(|l| l["event"] == "done").expect("a done event");
        assert_eq!(done["threads"], 1, "a GPU step is one batch");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A step whose logits, or a model whose embedding, cannot be bound in one GPU buffer is
/// refused before anything is allocated, with what fits; the CPU backends have no such limit.
#[test]
fn wgpu_refuses_a_step_over_the_buffer_limit() {
    let dir = std::env::temp_dir().join(format!("hearth-gpu-limit-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let corpus = dir.join("corpus.txt");
    let text = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../web/corpus/tiny_shakespeare_like.txt"),
    )
    .unwrap();
    std::fs::write(&corpus, &text).unwrap();
    let out = dir.join("run");
    // GPT-2's 50,257-token vocabulary at context 64 × batch 4,096: 53 GB of logits.
    let output = hearth(&[
        "--device",
        "wgpu",
        "train",
        "--corpus",
        &corpus.to_string_lossy(),
        "--tokenizer",
        "gpt2",
        "--n-layer",
        "1",
        "--n-head",
        "1",
        "--n-embd",
        "8",
        "--context",
        "64",
        "--batch-size",
        "4096",
        "--max-memory",
        "1000T",
        "--out",
        &out.to_string_lossy(),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    // 53 GB is over any GPU's binding limit; the batch that fits depends on the adapter
    // (lavapipe binds 134 MB: batch 10).
    assert!(stderr.contains("maxStorageBufferBindingSize") && stderr.contains("at most batch"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    // A model whose token embedding is over the limit (1,048,576 × 4,096 floats: 17 GB) is
    // refused before its weights are read: the config alone decides.
    let model = dir.join("wide");
    std::fs::create_dir_all(&model).unwrap();
    let mut config: Value = serde_json::from_slice(
        &std::fs::read(format!("{}/config.json", case("gpt2-tiny-perturbed"))).unwrap(),
    )
    .unwrap();
    config["vocab_size"] = 1_048_576.into();
    config["n_embd"] = 4096.into();
    std::fs::write(model.join("config.json"), config.to_string()).unwrap();
    std::fs::write(model.join("model.safetensors"), b"not read").unwrap();
    let probe = hearth(&["--device", "wgpu", "score", "--model", &model.to_string_lossy(), "--text", "hi"]);
    let stderr = String::from_utf8_lossy(&probe.stderr);
    assert_eq!(probe.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("the model does not fit this GPU") && !stderr.contains("panicked"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}
