//! The Llama family (Llama, Qwen2, Qwen3) against `transformers`: logits, every layer's attention
//! weights, loss and greedy ids (with the KV cache) on fixture checkpoints made by
//! `tests/fixtures/make_llama_cases.py` — grouped- and multi-query attention, tied and untied
//! heads, Llama 3's rope scaling, biases, QK-norm, a decoupled head_dim, bf16 shards.

mod common;

use burn::tensor::Device;
use common::*;
use hearth_lm::io::hf::{load_model_files_as, shard_files};
use hearth_lm::model::causal::CausalLm;
use hearth_lm::model::precision::WeightDtype;
use hearth_lm::tensor::{ids_tensor, read_f32};
use hearth_lm::{generate, score, AnyModel, Sampling};

const TOL: f32 = 1e-4;

/// The case's weight files: `model.safetensors`, or the shards its index lists.
fn weight_files(case_name: &str) -> Vec<Vec<u8>> {
    let dir = case(case_name);
    let index = dir.join("model.safetensors.index.json");
    if index.exists() {
        shard_files(&read(&index)).unwrap().iter().map(|f| read(dir.join(f))).collect()
    } else {
        vec![read(dir.join("model.safetensors"))]
    }
}

fn load(case_name: &str, device: &Device) -> AnyModel {
    let files = weight_files(case_name);
    let files: Vec<&[u8]> = files.iter().map(Vec::as_slice).collect();
    load_model_files_as(&read(case(case_name).join("config.json")), &files, device, WeightDtype::F32).unwrap()
}

fn check_case(case_name: &str) {
    let exp = expected(case_name);
    let prompt = ids(&exp["input_ids"]);
    let (shape, want) = read_npy(case(case_name).join("logits.npy"));
    for (backend, device) in cpu_devices() {
        let any = load(case_name, &device);
        let AnyModel::Llama(model) = &any else { panic!("{case_name} loads as a Llama-family model") };
        let got = block_on(read_f32(CausalLm::forward(model.as_ref(), ids_tensor(&prompt, &device), None)))
            .unwrap();
        assert_eq!(got.len(), shape.iter().product::<usize>());
        let diff = max_abs_diff(&got, &want);
        assert!(diff < TOL, "{case_name} on {backend}: logits differ by {diff}");

        let inside = model.inside(ids_tensor(&prompt, &device));
        assert_eq!(inside.attentions.len(), model.config().num_hidden_layers);
        for (i, probs) in inside.attentions.into_iter().enumerate() {
            let (shape, want) = read_npy(case(case_name).join(format!("attentions_layer{i}.npy")));
            assert_eq!(probs.dims().to_vec(), shape, "{case_name}: layer {i}'s attention shape");
            let diff = max_abs_diff(&block_on(read_f32(probs)).unwrap(), &want);
            assert!(diff < TOL, "{case_name} on {backend}: layer {i}'s attentions differ by {diff}");
        }

        // The logit lens's last layer is the model's own prediction: through the final RMSNorm
        // and the head, transformers' argmax at every position, with its softmax probability.
        let lens = block_on(hearth_lm::infer::inside::logit_lens_of(&any, &prompt, 1)).unwrap();
        let vocab = shape[2];
        for (pos, cell) in lens.last().unwrap().iter().enumerate() {
            let row = &want[pos * vocab..(pos + 1) * vocab];
            let (argmax, max) =
                row.iter().enumerate().fold((0, f32::MIN), |a, (i, &v)| if v > a.1 { (i, v) } else { a });
            let prob = 1.0 / row.iter().map(|&v| (v - max).exp()).sum::<f32>();
            assert_eq!(
                cell[0].0 as usize, argmax,
                "{case_name} on {backend}: the lens's last layer at {pos}"
            );
            assert!(
                (cell[0].1 as f32 - prob).abs() < TOL,
                "{case_name} on {backend}: its probability at {pos}"
            );
        }

        let causal = any.causal().expect("a decoder");
        let want_ids = ids(&exp["greedy_new_ids"]);
        let greedy = block_on(generate(causal, &prompt, want_ids.len(), Sampling::ArgMax, 0)).unwrap();
        assert_eq!(greedy, want_ids, "{case_name} on {backend}: greedy ids (KV cache)");

        let s = block_on(score(causal, &prompt)).unwrap();
        let want_loss = exp["loss_labels_eq_input_ids"].as_f64().unwrap();
        assert!(
            (s.loss - want_loss).abs() < TOL as f64,
            "{case_name} on {backend}: loss {} vs {want_loss}",
            s.loss
        );
        assert_eq!(
            any.num_params() as u64,
            exp["num_parameters"].as_u64().unwrap(),
            "{case_name}: parameters"
        );
    }
}

#[test]
fn llama_with_grouped_query_attention_and_tied_embeddings_matches_transformers() {
    check_case("llama-gqa-tied");
}

#[test]
fn llama3_rope_scaling_untied_biased_bf16_shards_match_transformers() {
    check_case("llama3-scaled-bf16-sharded");
}

#[test]
fn qwen2_with_qkv_biases_and_one_key_value_head_matches_transformers() {
    check_case("qwen2-mqa-bias");
}

#[test]
fn qwen3_with_qk_norm_and_its_own_head_dim_matches_transformers() {
    check_case("qwen3-qknorm-headdim");
}

/// The KV cache holds the key/value heads only and continues the rotation: generating without
/// it (recomputing every window) gives the same ids.
#[test]
fn the_cache_continues_the_rotation() {
    let device = Device::flex();
    let any = load("qwen3-qknorm-headdim", &device);
    let causal = any.causal().unwrap();
    let prompt = ids(&expected("qwen3-qknorm-headdim")["input_ids"]);
    let mut cached = hearth_lm::Generator::new(causal, &prompt, Sampling::ArgMax, 0).unwrap();
    let mut plain = hearth_lm::Generator::new(causal, &prompt, Sampling::ArgMax, 0).unwrap().without_cache();
    for _ in 0..30 {
        assert_eq!(block_on(cached.step()).unwrap(), block_on(plain.step()).unwrap());
    }
}

/// A shard index that points outside the directory, or a shard that repeats a tensor, is
/// refused with what is wrong.
#[test]
fn bad_shard_indexes_are_refused() {
    let err = shard_files(br#"{"weight_map": {"a": "../../etc/passwd.safetensors"}}"#).unwrap_err();
    assert!(err.to_string().contains("not a shard file"), "{err}");
    assert!(shard_files(br#"{"weight_map": {}}"#).is_err());
    let files = weight_files("llama3-scaled-bf16-sharded");
    let twice: Vec<&[u8]> = vec![&files[0], &files[0]];
    let config = read(case("llama3-scaled-bf16-sharded").join("config.json"));
    let err = load_model_files_as(&config, &twice, &Device::flex(), WeightDtype::F32).unwrap_err();
    assert!(err.to_string().contains("in two shards"), "{err}");
    // One shard missing: the first tensor it held is named.
    let one: Vec<&[u8]> = vec![&files[0]];
    let err = load_model_files_as(&config, &one, &Device::flex(), WeightDtype::F32).unwrap_err().to_string();
    assert!(err.contains("missing tensor `model."), "{err}");
}
