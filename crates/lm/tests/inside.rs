//! Inside the model (issue 11): attention weights against `transformers`' `output_attentions=True`
//! (`tests/fixtures/make_attention_case.py`), and the logit lens, whose last layer must be the
//! model's own prediction.

mod common;

use burn::tensor::Device;
use common::*;
use hearth_lm::infer::inside::{attentions, bert_attentions, logit_lens, Attentions};
use hearth_lm::infer::sampling::top_k_probs;
use hearth_lm::tensor::{ids_tensor, read_f32};
use hearth_lm::{load_model, AnyModel};

const TOL: f32 = 1e-4;

fn model(name: &str, device: &Device) -> AnyModel {
    let dir = case(name);
    load_model(&read(dir.join("config.json")), &read(dir.join("model.safetensors")), device).unwrap()
}

fn flat(a: &Attentions) -> Vec<f32> {
    a.iter().flatten().flatten().flatten().copied().collect()
}

#[test]
fn gpt2_attentions_match_transformers() {
    for (label, device) in cpu_devices() {
        let m = model("gpt2-tiny-perturbed", &device);
        let got = block_on(attentions(&m, &[10462, 27428, 379, 262, 10481, 318])).unwrap();
        let (shape, want) = read_npy(case("gpt2-tiny-perturbed").join("attentions.npy"));
        assert_eq!(shape, [got.len(), got[0].len(), 6, 6]);
        let diff = max_abs_diff(&flat(&got), &want);
        assert!(diff < TOL, "{label}: attentions differ by {diff}");
        // Causal: nothing after the query.
        assert_eq!(got[1][2][0][1..].iter().sum::<f32>(), 0.0);
    }
}

#[test]
fn bert_attentions_match_transformers_plain_and_padded() {
    let device = Device::flex();
    let m = model("bert-tiny-mlm-perturbed", &device);
    let ids = [101, 2166, 2003, 2066, 1037, 103, 1997, 7967, 2015, 1012, 102];
    let got = block_on(attentions(&m, &ids)).unwrap();
    let (_, want) = read_npy(case("bert-tiny-mlm-perturbed").join("attentions.npy"));
    let diff = max_abs_diff(&flat(&got), &want);
    assert!(diff < TOL, "attentions differ by {diff}");

    let (shape, batch) = read_npy_i64(case("bert-tiny-mlm-perturbed").join("attentions_padded_ids.npy"));
    let t = shape[1];
    let rows: Vec<Vec<u32>> = batch
        .chunks(t)
        .map(|r| {
            let len = r.iter().rposition(|&id| id != 0).map_or(0, |p| p + 1);
            r[..len].iter().map(|&id| id as u32).collect()
        })
        .collect();
    let AnyModel::Bert(bert) = &m else { panic!("a BERT") };
    let got = block_on(bert_attentions(bert, &rows)).unwrap();
    let (shape, want) = read_npy(case("bert-tiny-mlm-perturbed").join("attentions_padded.npy"));
    let [layers, b, heads] = [shape[0], shape[1], shape[2]];
    // transformers: [layer][row][head][q][k]; ours: [row][layer][head][q][k].
    let mut mine = Vec::new();
    for l in 0..layers {
        for row in got.iter().take(b) {
            mine.extend(row[l].iter().take(heads).flatten().flatten().copied());
        }
    }
    let diff = max_abs_diff(&mine, &want);
    assert!(diff < TOL, "padded attentions differ by {diff}");
    let short = rows[1].len();
    assert!(got[1][0][0][0][short..].iter().all(|&w| w == 0.0), "padding keys get no weight");
}

#[test]
fn the_last_logit_lens_layer_is_the_models_prediction() {
    let device = Device::flex();
    let AnyModel::Gpt2(m) = model("gpt2-tiny-perturbed", &device) else { panic!("a GPT-2") };
    let ids = [10462, 27428, 379, 262, 10481, 318];
    let lens = block_on(logit_lens(&m, &ids, 3)).unwrap();
    assert_eq!((lens.len(), lens[0].len(), lens[0][0].len()), (2, 6, 3));
    let logits = block_on(read_f32(m.forward(ids_tensor(&ids, &device), None))).unwrap();
    for (pos, row) in logits.chunks(m.config().vocab_size).enumerate() {
        let want = top_k_probs(row, 3);
        let got = &lens[1][pos];
        for ((gi, gp), (wi, wp)) in got.iter().zip(&want) {
            assert_eq!(gi, wi, "position {pos}");
            assert!((gp - wp).abs() < 1e-5, "position {pos}: {gp} vs {wp}");
        }
    }
    assert!(block_on(logit_lens(&m, &[], 3)).is_err());
    assert!(block_on(logit_lens(&m, &[60000], 3)).is_err());
}
