//! GPT-2 against `transformers`: logits, greedy ids and loss on the fixture checkpoints.

mod common;

use burn::tensor::Device;
use common::*;
use hearth_lm::tensor::{ids_tensor, read_f32};
use hearth_lm::{generate, load_gpt2, score, Gpt2Config, Gpt2LMHeadModel, Sampling};

const TOL: f32 = 1e-4;

fn load(case_name: &str, device: &Device) -> Gpt2LMHeadModel {
    let dir = case(case_name);
    let config = Gpt2Config::from_json(&read(dir.join("config.json"))).unwrap();
    load_gpt2(&config, &read(dir.join("model.safetensors")), device).unwrap()
}

fn logits(model: &Gpt2LMHeadModel, ids: &[u32]) -> Vec<f32> {
    let device = model.transformer.wte.weight.val().device();
    block_on(read_f32(model.forward(ids_tensor(ids, &device), None))).unwrap()
}

fn check_case(case_name: &str) {
    let exp = expected(case_name);
    let prompt = ids(&exp["input_ids"]);
    let (shape, want) = read_npy(case(case_name).join("logits.npy"));
    for (backend, device) in cpu_devices() {
        let model = load(case_name, &device);
        let got = logits(&model, &prompt);
        assert_eq!(got.len(), shape.iter().product::<usize>());
        let diff = max_abs_diff(&got, &want);
        assert!(diff < TOL, "{case_name} on {backend}: logits differ by {diff}");

        let greedy = block_on(generate(
            &model,
            &prompt,
            exp["greedy_new_tokens"].as_u64().unwrap() as usize,
            Sampling::ArgMax,
            0,
        ))
        .unwrap();
        assert_eq!(greedy, ids(&exp["greedy_new_ids"]), "{case_name} on {backend}: greedy ids");

        let s = block_on(score(&model, &prompt)).unwrap();
        let want_loss = exp["loss_labels_eq_input_ids"].as_f64().unwrap();
        assert!(
            (s.loss - want_loss).abs() < TOL as f64,
            "{case_name} on {backend}: loss {} vs {want_loss}",
            s.loss
        );
        assert!((s.perplexity - want_loss.exp()).abs() / want_loss.exp() < 1e-4);
    }
}

#[test]
fn gpt2_tiny_matches_transformers() {
    check_case("gpt2-tiny");
}

#[test]
fn gpt2_tiny_perturbed_matches_transformers() {
    check_case("gpt2-tiny-perturbed");
}

#[test]
fn gpt2_bytes_tiny_matches_transformers() {
    check_case("gpt2-bytes-tiny");
}

#[test]
fn gpt2_bytes_tiny_perturbed_matches_transformers() {
    check_case("gpt2-bytes-tiny-perturbed");
}

/// The second prompt ("Every effort moves you") and a full 128-token window of the corpus.
#[test]
fn gpt2_extra_inputs_match_transformers() {
    for case_name in ["gpt2-tiny", "gpt2-tiny-perturbed"] {
        let exp = expected(case_name);
        let device = ndarray();
        let model = load(case_name, &device);

        let every = &exp["extra"]["every_effort"];
        let (_, want) = read_npy(case(case_name).join("logits_every_effort.npy"));
        let got = logits(&model, &ids(&every["input_ids"]));
        assert!(max_abs_diff(&got, &want) < TOL, "{case_name}: every_effort logits");
        let s = block_on(score(&model, &ids(&every["input_ids"]))).unwrap();
        assert!((s.loss - every["loss"].as_f64().unwrap()).abs() < TOL as f64);

        let ctx = &exp["extra"]["ctx128"];
        let window = ids(&ctx["input_ids"]);
        assert_eq!(window.len(), 128);
        let got = logits(&model, &window);
        let (_, want) = read_npy(case(case_name).join("logits_ctx128_positions.npy"));
        let vocab = model.config().vocab_size;
        for (row, pos) in [0usize, 1, 64, 126, 127].into_iter().enumerate() {
            let diff =
                max_abs_diff(&got[pos * vocab..(pos + 1) * vocab], &want[row * vocab..(row + 1) * vocab]);
            assert!(diff < TOL, "{case_name}: ctx128 position {pos} differs by {diff}");
        }
        let argmax: Vec<u32> = got.chunks_exact(vocab).map(hearth_lm::infer::sampling::argmax).collect();
        assert_eq!(argmax, ids(&ctx["argmax_per_position"]), "{case_name}: ctx128 argmax");
        let s = block_on(score(&model, &window)).unwrap();
        assert!((s.loss - ctx["loss"].as_f64().unwrap()).abs() < TOL as f64, "{case_name}: ctx128 loss");
    }
}

/// The byte-level perturbed case's 64-byte window (its full context).
#[test]
fn gpt2_bytes_full_context_matches_transformers() {
    let case_name = "gpt2-bytes-tiny-perturbed";
    let exp = expected(case_name);
    let model = load(case_name, &ndarray());
    let window = ids(&exp["extra"]["ctx64"]["input_ids"]);
    let got = logits(&model, &window);
    let (_, want) = read_npy(case(case_name).join("logits_ctx64_positions.npy"));
    for (row, pos) in [0usize, 1, 32, 62, 63].into_iter().enumerate() {
        let diff = max_abs_diff(&got[pos * 256..(pos + 1) * 256], &want[row * 256..(row + 1) * 256]);
        assert!(diff < TOL, "ctx64 position {pos} differs by {diff}");
    }
}
