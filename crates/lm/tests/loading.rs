//! Checkpoint loading rules: prefixes, tied weights, layouts, clear errors; export round trip.

mod common;

use common::*;
use hearth_lm::io::hf::{export_bert, export_gpt2};
use hearth_lm::io::weights::{to_safetensors, SafetensorsFile};
use hearth_lm::tensor::{ids_tensor, read_f32};
use hearth_lm::{load_bert, load_gpt2, load_model, AnyModel, BertConfig, Error, Gpt2Config};

fn tensors(bytes: &[u8]) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let st = safetensors::SafeTensors::deserialize(bytes).unwrap();
    let mut out: Vec<_> = st
        .tensors()
        .into_iter()
        .map(|(k, v)| {
            let vals =
                v.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
            (k, v.shape().to_vec(), vals)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn gpt2_case() -> (Gpt2Config, Vec<u8>) {
    let dir = case("gpt2-bytes-tiny-perturbed");
    (Gpt2Config::from_json(&read(dir.join("config.json"))).unwrap(), read(dir.join("model.safetensors")))
}

fn gpt2_logits(config: &Gpt2Config, weights: &[u8]) -> Vec<f32> {
    let device = ndarray();
    let model = load_gpt2(config, weights, &device).unwrap();
    block_on(read_f32(model.forward(ids_tensor(&[83, 119, 105, 109], &device), None))).unwrap()
}

/// The hub's real `gpt2` checkpoint has no `transformer.` prefix.
#[test]
fn gpt2_keys_without_prefix_load_identically() {
    let (config, bytes) = gpt2_case();
    let stripped: Vec<_> = tensors(&bytes)
        .into_iter()
        .map(|(k, s, v)| (k.strip_prefix("transformer.").unwrap_or(&k).to_string(), s, v))
        .collect();
    let stripped = to_safetensors(&stripped).unwrap();
    assert_eq!(gpt2_logits(&config, &bytes), gpt2_logits(&config, &stripped));
}

#[test]
fn missing_tensor_is_named() {
    let (config, bytes) = gpt2_case();
    let fewer: Vec<_> =
        tensors(&bytes).into_iter().filter(|(k, _, _)| k != "transformer.h.1.mlp.c_fc.bias").collect();
    let err = load_gpt2(&config, &to_safetensors(&fewer).unwrap(), &ndarray()).unwrap_err();
    assert!(matches!(&err, Error::MissingTensor(k) if k == "transformer.h.1.mlp.c_fc.bias"), "{err}");
}

#[test]
fn misshaped_tensor_is_named() {
    let (mut config, bytes) = gpt2_case();
    config.n_positions = 32;
    let err = load_gpt2(&config, &bytes, &ndarray()).unwrap_err().to_string();
    assert!(err.contains("transformer.wpe.weight") && err.contains("[64, 32]"), "{err}");
}

#[test]
fn malformed_safetensors_is_an_error() {
    let (config, _) = gpt2_case();
    for junk in [&b""[..], b"\x00\x01garbage", &[0xffu8; 64][..]] {
        let err = load_gpt2(&config, junk, &ndarray()).unwrap_err();
        assert!(matches!(err, Error::Safetensors(_)), "{err}");
    }
    assert!(SafetensorsFile::parse(b"12345678{}").is_err());
}

#[test]
fn config_picks_the_architecture() {
    let dir = case("bert-tiny-mlm");
    let model = load_model(&read(dir.join("config.json")), &read(dir.join("model.safetensors")), &ndarray());
    assert!(matches!(model, Ok(AnyModel::Bert(_))));
    let err = load_model(b"{\"model_type\": \"t5\"}", b"", &ndarray()).unwrap_err();
    assert!(err.to_string().contains("t5"));
}

/// Export writes HF key names and layouts: the exported file equals the original tensor for
/// tensor, and reloading gives identical logits.
#[test]
fn gpt2_export_round_trips() {
    let (config, bytes) = gpt2_case();
    let model = load_gpt2(&config, &bytes, &ndarray()).unwrap();
    let files = block_on(export_gpt2(&model, None)).unwrap();
    assert_eq!(tensors(&files.model_safetensors), tensors(&bytes));
    let config2 = Gpt2Config::from_json(&files.config_json).unwrap();
    assert_eq!(gpt2_logits(&config, &bytes), gpt2_logits(&config2, &files.model_safetensors));
    assert!(String::from_utf8(files.config_json).unwrap().contains("\"model_type\": \"gpt2\""));
}

/// BERT's Linear weights are `[out, in]` in the checkpoint: the export must transpose back.
#[test]
fn bert_export_round_trips() {
    let dir = case("bert-tiny-mlm-perturbed");
    let config = BertConfig::from_json(&read(dir.join("config.json"))).unwrap();
    let bytes = read(dir.join("model.safetensors"));
    let model = load_bert(&config, &bytes, &ndarray()).unwrap();
    let files = block_on(export_bert(&model, None)).unwrap();
    let original: Vec<_> =
        tensors(&bytes).into_iter().filter(|(k, _, _)| !k.ends_with("position_ids")).collect();
    assert_eq!(tensors(&files.model_safetensors), original);
}
