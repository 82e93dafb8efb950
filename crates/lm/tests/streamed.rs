//! Loading while `model.safetensors` arrives in chunks (the browser's download and file paths):
//! the same weights as loading the whole file, whatever the chunk size; what is wrong with a
//! file refused from its header, before its data.

mod common;

use common::*;
use hearth_lm::io::hf::export_model;
use hearth_lm::io::streamed::ModelStream;
use hearth_lm::io::weights::to_safetensors;
use hearth_lm::model::precision::WeightDtype;
use hearth_lm::tensor::{ids_tensor, read_f32};
use hearth_lm::{load_model, AnyModel, Error};

const UNLIMITED: u64 = u64::MAX;

fn stream(config: &[u8], weights: &[u8], chunk: usize) -> Result<AnyModel, Error> {
    let mut loading = ModelStream::new(config, &ndarray(), WeightDtype::F32, UNLIMITED, UNLIMITED)?;
    for part in weights.chunks(chunk) {
        loading.push(part)?;
    }
    let (received, expected) = loading.progress();
    assert_eq!(received, weights.len() as u64);
    let model = loading.finish()?;
    assert_eq!(expected, Some(received), "a whole file is as long as its header says");
    Ok(model)
}

fn exported(model: &AnyModel) -> Vec<u8> {
    block_on(export_model(model, None)).unwrap().model_safetensors
}

/// Streamed in chunks of 1, 7 and 64 KiB bytes, both architectures hold exactly the weights
/// the whole-file loader gives (BERT's transposed Linear weights included).
#[test]
fn every_chunk_size_loads_the_same_weights() {
    for name in ["gpt2-bytes-tiny-perturbed", "bert-tiny-mlm-perturbed"] {
        let dir = case(name);
        let (config, weights) = (read(dir.join("config.json")), read(dir.join("model.safetensors")));
        let whole = exported(&load_model(&config, &weights, &ndarray()).unwrap());
        for chunk in [1, 7, 65536] {
            let model = stream(&config, &weights, chunk).unwrap();
            assert_eq!(exported(&model), whole, "{name}, chunks of {chunk}");
        }
    }
}

/// The streamed GPT-2 fixture's logits against `transformers`.
#[test]
fn streamed_gpt2_matches_transformers() {
    let dir = case("gpt2-tiny");
    let (config, weights) = (read(dir.join("config.json")), read(dir.join("model.safetensors")));
    let AnyModel::Gpt2(model) = stream(&config, &weights, 1 << 20).unwrap() else { panic!("a GPT-2") };
    let prompt = ids(&expected("gpt2-tiny")["input_ids"]);
    let got = block_on(read_f32(model.forward(ids_tensor(&prompt, &ndarray()), None))).unwrap();
    let (_, want) = read_npy(dir.join("logits.npy"));
    let diff = max_abs_diff(&got, &want);
    assert!(diff < 1e-4, "logits differ by {diff}");
}

fn gpt2_case() -> (Vec<u8>, Vec<u8>) {
    let dir = case("gpt2-bytes-tiny-perturbed");
    (read(dir.join("config.json")), read(dir.join("model.safetensors")))
}

/// The header alone: what the checks can refuse before any tensor data arrives.
fn header_of(weights: &[u8]) -> &[u8] {
    let n = u64::from_le_bytes(weights[..8].try_into().unwrap()) as usize;
    &weights[..8 + n]
}

fn refuse_from_header(config: &[u8], weights: &[u8], max_tensor_bytes: u64) -> String {
    let mut loading =
        ModelStream::new(config, &ndarray(), WeightDtype::F32, UNLIMITED, max_tensor_bytes).unwrap();
    loading.push(header_of(weights)).unwrap_err().to_string()
}

fn without(weights: &[u8], key: &str) -> Vec<u8> {
    let file = hearth_lm::io::weights::SafetensorsFile::parse(weights).unwrap();
    let kept: Vec<_> = file.all_f32().unwrap().into_iter().filter(|(k, _, _)| k != key).collect();
    to_safetensors(&kept).unwrap()
}

#[test]
fn a_missing_or_misshaped_tensor_is_refused_from_the_header() {
    let (config, weights) = gpt2_case();
    let err = refuse_from_header(&config, &without(&weights, "transformer.h.1.mlp.c_fc.bias"), UNLIMITED);
    assert!(err.contains("transformer.h.1.mlp.c_fc.bias"), "{err}");
    let smaller =
        String::from_utf8(config.clone()).unwrap().replace("\"n_positions\": 64", "\"n_positions\": 32");
    assert_ne!(smaller.as_bytes(), &config[..], "the fixture's n_positions is 64");
    let err = refuse_from_header(smaller.as_bytes(), &weights, UNLIMITED);
    assert!(err.contains("transformer.wpe.weight") && err.contains("[64, 32]"), "{err}");
}

#[test]
fn a_tensor_over_the_device_buffer_is_refused_from_the_header() {
    let (config, weights) = gpt2_case();
    let err = refuse_from_header(&config, &weights, 1024);
    assert!(err.contains("one buffer") && err.contains("1.0 KB"), "{err}");
}

#[test]
fn a_config_that_does_not_belong_to_the_weights_is_refused() {
    let (config, weights) = gpt2_case();
    let bigger = String::from_utf8(config).unwrap().replace("\"n_layer\": 2", "\"n_layer\": 200");
    let err = refuse_from_header(bigger.as_bytes(), &weights, UNLIMITED);
    assert!(err.contains("does not belong"), "{err}");
    // A model larger than the device holds is refused before anything is built or read.
    let huge = bigger.replace("\"n_layer\": 200", "\"n_layer\": 1000000000");
    let err = ModelStream::new(huge.as_bytes(), &ndarray(), WeightDtype::F32, 1 << 30, UNLIMITED)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("more than this device can hold"), "{err}");
}

#[test]
fn truncated_and_foreign_files_are_refused() {
    let (config, weights) = gpt2_case();
    let err = stream(&config, &weights[..weights.len() / 2], 4096).err().unwrap().to_string();
    assert!(err.contains("ended after"), "{err}");
    let err = stream(&config, b"<!DOCTYPE html><html></html>", 4096).err().unwrap().to_string();
    assert!(err.contains("HTML page"), "{err}");
    let err = stream(&config, b"", 4096).err().unwrap().to_string();
    assert!(err.contains("inside its header"), "{err}");
}

/// f16 and bf16 files load as f32 on the device, value for value.
#[test]
fn half_precision_files_load_as_f32() {
    let (config, weights) = gpt2_case();
    let file = hearth_lm::io::weights::SafetensorsFile::parse(&weights).unwrap();
    let tensors = file.all_f32().unwrap();
    let halves: Vec<(String, Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(k, s, v)| {
            (k.clone(), s.clone(), v.iter().flat_map(|x| half::f16::from_f32(*x).to_le_bytes()).collect())
        })
        .collect();
    let views: Vec<_> = halves
        .iter()
        .map(|(k, s, b)| {
            (k.clone(), safetensors::tensor::TensorView::new(safetensors::Dtype::F16, s.clone(), b).unwrap())
        })
        .collect();
    let f16_file = safetensors::serialize(views, None).unwrap();
    let rounded: Vec<_> = tensors
        .iter()
        .map(|(k, s, v)| (k.clone(), s.clone(), v.iter().map(|x| half::f16::from_f32(*x).to_f32()).collect()))
        .collect();
    let want = exported(&load_model(&config, &to_safetensors(&rounded).unwrap(), &ndarray()).unwrap());
    assert_eq!(exported(&stream(&config, &f16_file, 999).unwrap()), want);
}

/// The shards of a sharded checkpoint, in the index's order.
fn shards_of(case_name: &str) -> (Vec<u8>, Vec<Vec<u8>>) {
    let dir = case(case_name);
    let files = hearth_lm::io::hf::shard_files(&read(dir.join("model.safetensors.index.json"))).unwrap();
    (read(dir.join("config.json")), files.iter().map(|f| read(dir.join(f))).collect())
}

/// Streams `shards` one after another in chunks of `chunk` bytes.
fn stream_shards(config: &[u8], shards: &[&[u8]], chunk: usize) -> Result<AnyModel, Error> {
    let mut loading = ModelStream::new(config, &ndarray(), WeightDtype::F32, UNLIMITED, UNLIMITED)?.sharded();
    for (i, shard) in shards.iter().enumerate() {
        if i > 0 {
            loading.end_shard()?;
        }
        for part in shard.chunks(chunk) {
            loading.push(part)?;
        }
    }
    let total: usize = shards.iter().map(|s| s.len()).sum();
    assert_eq!(loading.received_bytes(), total as u64, "every shard's bytes are counted");
    loading.finish()
}

/// The bf16 Llama 3 checkpoint in two shards, streamed shard by shard as the tab does, holds
/// the weights the whole-file loader gives, and its logits are transformers'.
#[test]
fn a_sharded_bf16_checkpoint_streams_shard_by_shard() {
    let name = "llama3-scaled-bf16-sharded";
    let (config, shards) = shards_of(name);
    assert_eq!(shards.len(), 2);
    let parts: Vec<&[u8]> = shards.iter().map(Vec::as_slice).collect();
    let whole =
        hearth_lm::io::hf::load_model_files_as(&config, &parts, &ndarray(), WeightDtype::F32).unwrap();
    for chunk in [13, 65536] {
        let model = stream_shards(&config, &parts, chunk).unwrap();
        assert_eq!(exported(&model), exported(&whole), "chunks of {chunk}");
    }
    let AnyModel::Llama(model) = stream_shards(&config, &parts, 4096).unwrap() else { panic!("a Llama") };
    let prompt = ids(&expected(name)["input_ids"]);
    let logits =
        hearth_lm::model::causal::CausalLm::forward(model.as_ref(), ids_tensor(&prompt, &ndarray()), None);
    let (_, want) = read_npy(case(name).join("logits.npy"));
    let diff = max_abs_diff(&block_on(read_f32(logits)).unwrap(), &want);
    assert!(diff < 1e-4, "logits differ by {diff}");
}

/// A shard missing, a tensor in two shards, a shard cut short and a config that is not these
/// weights' are each one clear error.
#[test]
fn a_bad_set_of_shards_is_refused() {
    let (config, shards) = shards_of("llama3-scaled-bf16-sharded");
    let err = stream_shards(&config, &[&shards[0]], 4096).err().unwrap().to_string();
    assert!(err.contains("missing") || err.contains("not found"), "one shard of two: {err}");
    let err = stream_shards(&config, &[&shards[0], &shards[0]], 4096).err().unwrap().to_string();
    assert!(err.contains("in two shards"), "{err}");
    let cut = &shards[1][..shards[1].len() / 2];
    let err = stream_shards(&config, &[&shards[0], cut], 4096).err().unwrap().to_string();
    assert!(err.contains("ended after"), "{err}");
    let mut loading =
        ModelStream::new(&config, &ndarray(), WeightDtype::F32, UNLIMITED, UNLIMITED).unwrap().sharded();
    loading.push(&shards[0][..shards[0].len() / 2]).unwrap();
    assert!(loading.end_shard().unwrap_err().to_string().contains("ended after"), "a shard ends whole");
    let bigger = String::from_utf8(config.clone())
        .unwrap()
        .replace("\"num_hidden_layers\": 2", "\"num_hidden_layers\": 2000");
    assert_ne!(bigger.as_bytes(), &config[..], "the fixture has 2 layers");
    let err = stream_shards(bigger.as_bytes(), &[&shards[0], &shards[1]], 4096).err().unwrap().to_string();
    assert!(err.contains("does not belong"), "{err}");
}
