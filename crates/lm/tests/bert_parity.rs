//! The masked LMs against `transformers`. BERT here: logits (single, padded batch, sentence
//! pair) and fill-mask top-5 on the fixture checkpoints; ModernBERT in `masked/modernbert.rs`
//! (one test binary for both: each binary links Burn again).

mod common;
#[path = "masked/modernbert.rs"]
mod modernbert;

use burn::tensor::{Device, Int, Tensor, TensorData};
use common::*;
use hearth_lm::tensor::read_f32;
use hearth_lm::{fill_mask, load_bert, BertConfig, BertForMaskedLM, Tokenizer};

const TOL: f32 = 1e-4;
const CASES: [&str; 2] = ["bert-tiny-mlm", "bert-tiny-mlm-perturbed"];

fn load(case_name: &str, device: &Device) -> BertForMaskedLM {
    let dir = case(case_name);
    let config = BertConfig::from_json(&read(dir.join("config.json"))).unwrap();
    load_bert(&config, &read(dir.join("model.safetensors")), device).unwrap()
}

fn int_tensor(rows: &[Vec<u32>], device: &Device) -> Tensor<2, Int> {
    let t = rows[0].len();
    let flat: Vec<i64> = rows.iter().flatten().map(|&x| x as i64).collect();
    Tensor::from_data(TensorData::new(flat, [rows.len(), t]), device)
}

fn logits(
    model: &BertForMaskedLM,
    ids: &[Vec<u32>],
    types: &[Vec<u32>],
    mask: &[Vec<u32>],
    device: &Device,
) -> Vec<f32> {
    let out = model.forward(int_tensor(ids, device), int_tensor(types, device), int_tensor(mask, device));
    block_on(read_f32(out)).unwrap()
}

#[test]
fn bert_logits_match_transformers() {
    for case_name in CASES {
        let exp = expected(case_name);
        let input = ids(&exp["input_ids"]);
        let (_, want) = read_npy(case(case_name).join("logits.npy"));
        for (backend, device) in cpu_devices() {
            let model = load(case_name, &device);
            let got = logits(
                &model,
                std::slice::from_ref(&input),
                &[vec![0; input.len()]],
                &[vec![1; input.len()]],
                &device,
            );
            let diff = max_abs_diff(&got, &want);
            assert!(diff < TOL, "{case_name} on {backend}: logits differ by {diff}");
        }
    }
}

/// Padding is masked as keys: the short row's real positions match, the long row is unchanged.
#[test]
fn bert_padded_batch_matches_transformers() {
    for case_name in CASES {
        let exp = &expected(case_name)["padded_batch"];
        let rows: Vec<Vec<u32>> = exp["input_ids"].as_array().unwrap().iter().map(ids).collect();
        let masks: Vec<Vec<u32>> = exp["attention_mask"].as_array().unwrap().iter().map(ids).collect();
        let types = vec![vec![0; rows[0].len()]; rows.len()];
        let device = ndarray();
        let got = logits(&load(case_name, &device), &rows, &types, &masks, &device);
        let (shape, want) = read_npy(case(case_name).join("logits_padded_batch.npy"));
        let (t, v) = (shape[1], shape[2]);
        for (b, mask) in masks.iter().enumerate() {
            for (pos, &keep) in mask.iter().enumerate() {
                if keep == 1 {
                    let at = (b * t + pos) * v;
                    let diff = max_abs_diff(&got[at..at + v], &want[at..at + v]);
                    assert!(diff < TOL, "{case_name}: row {b} position {pos} differs by {diff}");
                }
            }
        }
    }
}

/// Segment (token type) embeddings: a sentence pair.
#[test]
fn bert_sentence_pair_matches_transformers() {
    for case_name in CASES {
        let exp = &expected(case_name)["pair"];
        let input = ids(&exp["input_ids"]);
        let types = ids(&exp["token_type_ids"]);
        let device = ndarray();
        let got = logits(
            &load(case_name, &device),
            std::slice::from_ref(&input),
            &[types],
            &[vec![1; input.len()]],
            &device,
        );
        let (_, want) = read_npy(case(case_name).join("logits_pair.npy"));
        let diff = max_abs_diff(&got, &want);
        assert!(diff < TOL, "{case_name}: pair logits differ by {diff}");
    }
}

/// The seed's sentence through the real bert-base-uncased vocabulary.
#[test]
fn fill_mask_top5_matches_transformers() {
    let tokenizer = Tokenizer::builtin("bert-base-uncased").unwrap();
    for case_name in CASES {
        let exp = expected(case_name);
        for (backend, device) in cpu_devices() {
            let model = load(case_name, &device);
            let masks = block_on(fill_mask(&model, &tokenizer, exp["text"].as_str().unwrap(), 5)).unwrap();
            assert_eq!(masks.len(), 1);
            assert_eq!(masks[0].position, exp["mask_position"].as_u64().unwrap() as usize);
            let got_ids: Vec<u32> = masks[0].predictions.iter().map(|p| p.id).collect();
            assert_eq!(got_ids, ids(&exp["mask_top5_ids"]), "{case_name} on {backend}: top-5 ids");
            for (p, want) in masks[0].predictions.iter().zip(floats(&exp["mask_top5_probs"])) {
                assert!((p.prob - want).abs() < 1e-4, "{case_name} on {backend}: prob {} vs {want}", p.prob);
            }
            let tokens: Vec<&str> = masks[0].predictions.iter().map(|p| p.token.as_str()).collect();
            let want_tokens: Vec<&str> =
                exp["mask_top5_tokens"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
            assert_eq!(tokens, want_tokens);
        }
    }
}

#[test]
fn fill_mask_rejects_text_without_mask_and_zero_top_k() {
    let tokenizer = Tokenizer::builtin("bert-base-uncased").unwrap();
    let model = load("bert-tiny-mlm", &ndarray());
    let err = block_on(fill_mask(&model, &tokenizer, "no mask here", 5)).unwrap_err();
    assert!(err.to_string().contains("[MASK]"), "{err}");
    assert!(block_on(fill_mask(&model, &tokenizer, "a [MASK] b", 0)).is_err());
    let long = "word ".repeat(200) + "[MASK]";
    let err = block_on(fill_mask(&model, &tokenizer, &long, 5)).unwrap_err();
    assert!(err.to_string().contains("at most 128"), "{err}");
}

#[test]
fn fill_mask_predicts_every_mask() {
    let tokenizer = Tokenizer::builtin("bert-base-uncased").unwrap();
    let model = load("bert-tiny-mlm-perturbed", &ndarray());
    let masks = block_on(fill_mask(&model, &tokenizer, "The [MASK] sat on the [MASK].", 3)).unwrap();
    assert_eq!(masks.iter().map(|m| m.position).collect::<Vec<_>>(), vec![2, 6]);
    for m in &masks {
        assert_eq!(m.predictions.len(), 3);
        assert!(m.predictions.windows(2).all(|w| w[0].prob >= w[1].prob));
    }
}
