//! ModernBERT masked LM against `transformers` (cases made by
//! `tests/fixtures/make_modernbert_cases.py`): logits, every layer's attention (a window shorter
//! than the text, so local layers matter), a padded batch, fill-mask top-5 with the checkpoint's
//! own tokenizer, the masked-LM loss, and the export reopened with the same logits.

use burn::tensor::{Device, Int, Tensor, TensorData};
use hearth_lm::infer::inside::{attentions, encoder_attentions};
use hearth_lm::io::hf::export_model;
use hearth_lm::model::masked::masked_lm_loss;
use hearth_lm::model::modernbert::config::LayerType;
use hearth_lm::tensor::read_f32;
use hearth_lm::{fill_mask, load_model, AnyModel, ModernBertForMaskedLM, Tokenizer};

use super::common::*;

const TOL: f32 = 1e-4;
const CASES: [&str; 2] = ["modernbert-local", "modernbert-biased"];

fn load(case_name: &str, device: &Device) -> Box<ModernBertForMaskedLM> {
    let dir = case(case_name);
    match load_model(&read(dir.join("config.json")), &read(dir.join("model.safetensors")), device).unwrap() {
        AnyModel::ModernBert(m) => m,
        other => panic!("{case_name} loads as {}", other.config().architecture()),
    }
}

fn tokenizer(case_name: &str) -> Tokenizer {
    Tokenizer::from_bytes(&read(case(case_name).join("tokenizer.json"))).unwrap()
}

fn int_tensor(rows: &[Vec<u32>], device: &Device) -> Tensor<2, Int> {
    let t = rows[0].len();
    let flat: Vec<i64> = rows.iter().flatten().map(|&x| x as i64).collect();
    Tensor::from_data(TensorData::new(flat, [rows.len(), t]), device)
}

#[test]
fn modernbert_logits_and_attentions_match_transformers() {
    for case_name in CASES {
        let exp = expected(case_name);
        let input = ids(&exp["input_ids"]);
        // The checkpoint's own tokenizer gives transformers' ids: `[CLS] … [SEP]`, [MASK] taking the space before it.
        assert_eq!(tokenizer(case_name).encode_ids(exp["text"].as_str().unwrap()).unwrap(), input);
        let (_, want) = read_npy(case(case_name).join("logits.npy"));
        for (backend, device) in cpu_devices() {
            let model = load(case_name, &device);
            let kinds: Vec<&str> = model
                .layer_types()
                .iter()
                .map(|k| if *k == LayerType::Global { "full_attention" } else { "sliding_attention" })
                .collect();
            let want_kinds: Vec<&str> =
                exp["layer_types"].as_array().unwrap().iter().map(|k| k.as_str().unwrap()).collect();
            assert_eq!(kinds, want_kinds);
            let out = model.forward(
                int_tensor(std::slice::from_ref(&input), &device),
                int_tensor(&[vec![1; input.len()]], &device),
            );
            let diff = max_abs_diff(&block_on(read_f32(out)).unwrap(), &want);
            assert!(diff < TOL, "{case_name} on {backend}: logits differ by {diff}");
            let any = AnyModel::ModernBert(model);
            let got = block_on(attentions(&any, &input)).unwrap();
            for (layer, heads) in got.iter().enumerate() {
                let (_, want) = read_npy(case(case_name).join(format!("attentions_layer{layer}.npy")));
                let flat: Vec<f32> = heads.iter().flatten().flatten().copied().collect();
                let diff = max_abs_diff(&flat, &want);
                assert!(diff < TOL, "{case_name} on {backend}: layer {layer} attention differs by {diff}");
                // A local layer (window 8: 4 on either side) gives the first token nothing past position 4.
                if kinds[layer] == "sliding_attention" {
                    assert!(heads.iter().all(|h| h[0][5..].iter().all(|&w| w == 0.0)));
                } else {
                    assert!(heads.iter().all(|h| h[0][5..].iter().any(|&w| w > 0.0)));
                }
            }
        }
    }
}

/// Padding is masked as keys (and a padding query keeps its window, so no row is empty): the
/// short row's real positions are the row alone, as transformers computes them.
#[test]
fn modernbert_padded_batch_matches_transformers() {
    for case_name in CASES {
        let exp = &expected(case_name)["padded_batch"];
        let rows: Vec<Vec<u32>> = exp["input_ids"].as_array().unwrap().iter().map(ids).collect();
        let masks: Vec<Vec<u32>> = exp["attention_mask"].as_array().unwrap().iter().map(ids).collect();
        let (shape, want) = read_npy(case(case_name).join("logits_padded_batch.npy"));
        for (backend, device) in cpu_devices() {
            let model = load(case_name, &device);
            let got =
                block_on(read_f32(model.forward(int_tensor(&rows, &device), int_tensor(&masks, &device))))
                    .unwrap();
            let (t, v) = (shape[1], shape[2]);
            assert!(got.iter().all(|x| x.is_finite()), "{case_name} on {backend}: padding rows made NaN");
            for (b, mask) in masks.iter().enumerate() {
                for (pos, _) in mask.iter().enumerate().filter(|(_, &keep)| keep == 1) {
                    let at = (b * t + pos) * v;
                    let diff = max_abs_diff(&got[at..at + v], &want[at..at + v]);
                    assert!(diff < TOL, "{case_name} on {backend}: row {b} position {pos} differs by {diff}");
                }
            }
            // The attention view's padded batch: padding keys weigh nothing.
            let short = rows[1][..masks[1].iter().filter(|&&k| k == 1).count()].to_vec();
            let views =
                block_on(encoder_attentions(model.as_ref(), &[rows[0].clone(), short.clone()])).unwrap();
            for layer in &views[1] {
                for head in layer {
                    for row in head.iter().take(short.len()) {
                        assert!(row[short.len()..].iter().all(|&w| w == 0.0));
                    }
                }
            }
        }
    }
}

#[test]
fn modernbert_fill_mask_top5_and_loss_match_transformers() {
    for case_name in CASES {
        let exp = expected(case_name);
        let tokenizer = tokenizer(case_name);
        assert_eq!(tokenizer.mask_token(), Some(("[MASK]".to_string(), 260)));
        for (backend, device) in cpu_devices() {
            let model = load(case_name, &device);
            let masks =
                block_on(fill_mask(model.as_ref(), &tokenizer, exp["text"].as_str().unwrap(), 5)).unwrap();
            assert_eq!(masks.len(), 1);
            assert_eq!(masks[0].position, exp["mask_position"].as_u64().unwrap() as usize);
            let got_ids: Vec<u32> = masks[0].predictions.iter().map(|p| p.id).collect();
            assert_eq!(got_ids, ids(&exp["mask_top5_ids"]), "{case_name} on {backend}: top-5 ids");
            for (p, want) in masks[0].predictions.iter().zip(floats(&exp["mask_top5_probs"])) {
                assert!((p.prob - want).abs() < 1e-4, "{case_name} on {backend}: prob {} vs {want}", p.prob);
            }
            let input = ids(&exp["input_ids"]);
            let labels: Vec<Option<u32>> =
                (0..input.len()).map(|i| (i == masks[0].position).then_some(b'b' as u32)).collect();
            let loss = masked_lm_loss(model.as_ref(), &input, &labels, [1, input.len()]).unwrap();
            let loss = block_on(read_f32(loss)).unwrap()[0] as f64;
            let want = exp["loss_label_b_at_mask"].as_f64().unwrap();
            assert!((loss - want).abs() < 1e-4, "{case_name} on {backend}: loss {loss} vs {want}");
        }
    }
}

/// Exported as `save_pretrained` writes it (transformers 5's config layout, the tied decoder not
/// stored) and loaded back: the same logits. (`tests/hf/check_export.py` opens such a directory
/// with transformers.)
#[test]
fn a_modernbert_export_loads_back_with_the_same_logits() {
    let device = Device::flex();
    let model = AnyModel::ModernBert(load("modernbert-biased", &device));
    let files = block_on(export_model(&model, Some(&tokenizer("modernbert-biased")))).unwrap();
    let config: serde_json::Value = serde_json::from_slice(&files.config_json).unwrap();
    assert_eq!(config["model_type"], "modernbert");
    assert_eq!(config["layer_types"][1], "sliding_attention");
    assert_eq!(config["rope_parameters"]["sliding_attention"]["rope_theta"], 100.0);
    let again = load_model(&files.config_json, &files.model_safetensors, &device).unwrap();
    let names = hearth_lm::io::weights::SafetensorsFile::parse(&files.model_safetensors).unwrap().names();
    assert!(names.contains(&"model.layers.1.attn.Wqkv.weight".to_string()));
    assert!(!names.iter().any(|n| n.starts_with("model.layers.0.attn_norm") || n == "decoder.weight"));
    let input = ids(&expected("modernbert-biased")["input_ids"]);
    let run = |m: &AnyModel| {
        let m = m.masked().unwrap();
        let x = int_tensor(std::slice::from_ref(&input), &device);
        let keep = int_tensor(&[vec![1; input.len()]], &device);
        block_on(read_f32(m.mlm_head(m.hidden(x, keep)))).unwrap()
    };
    assert_eq!(max_abs_diff(&run(&model), &run(&again)), 0.0);
}
