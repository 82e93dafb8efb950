//! Inside the model (issue 11): attention weights against `transformers`' `output_attentions=True`
//! (`tests/fixtures/make_attention_case.py`); the logit lens, whose last layer must be the
//! model's own prediction; surprisal against `transformers`' logits and `score`; embedding
//! neighbours and the PCA projection against the same sums done on the host in f64; and the
//! training probe, recorded at every evaluation and kept through a checkpoint.

mod common;

use burn::tensor::Device;
use common::*;
use hearth_lm::infer::embeddings::{most_frequent, nearest, projection};
use hearth_lm::infer::inside::{
    attention_from, attention_layer, attentions, encoder_attention_padded, encoder_attentions, logit_lens,
    Attentions,
};
use hearth_lm::infer::sampling::{softmax, top_k_probs};
use hearth_lm::infer::surprisal::surprisal;
use hearth_lm::tensor::{ids_tensor, read_f32};
use hearth_lm::train::{Arch, Corpus, TrainConfig, Trainer};
use hearth_lm::{load_model, score, AnyModel};

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
    let got = block_on(encoder_attentions(bert, &rows)).unwrap();
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
    // One row padded on its own is that row of the batch.
    let one = block_on(encoder_attention_padded(bert, &rows[1], t - short, 1)).unwrap();
    assert_eq!(one, got[1][1]);
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

#[test]
fn one_layer_and_one_query_are_slices_of_the_whole() {
    for (name, ids) in [
        ("gpt2-tiny-perturbed", vec![10462, 27428, 379, 262, 10481, 318]),
        ("bert-tiny-mlm-perturbed", vec![101, 2166, 2003, 2066, 1037, 103, 102]),
    ] {
        let m = model(name, &Device::flex());
        let all = block_on(attentions(&m, &ids)).unwrap();
        for (l, layer) in all.iter().enumerate() {
            assert_eq!(&block_on(attention_layer(&m, &ids, l)).unwrap(), layer, "{name} layer {l}");
        }
        let from = block_on(attention_from(&m, &ids, 3)).unwrap();
        for (l, layer) in all.iter().enumerate() {
            for (h, head) in layer.iter().enumerate() {
                assert_eq!(from[l][h], head[3], "{name} layer {l} head {h}");
            }
        }
        assert!(block_on(attention_layer(&m, &ids, all.len())).is_err());
        assert!(block_on(attention_from(&m, &ids, ids.len())).is_err());
    }
}

/// Per token: the loss from `transformers`' own logits, the rank among them, and `score`'s mean.
#[test]
fn surprisal_matches_transformers_logits_and_score() {
    for (label, device) in cpu_devices() {
        let AnyModel::Gpt2(m) = model("gpt2-tiny-perturbed", &device) else { panic!("a GPT-2") };
        let ids = [10462u32, 27428, 379, 262, 10481, 318];
        let got = block_on(surprisal(&m, &ids, 5)).unwrap();
        assert_eq!(got.len(), ids.len() - 1);
        let (_, logits) = read_npy(case("gpt2-tiny-perturbed").join("logits.npy"));
        for (i, (tok, row)) in got.iter().zip(logits.chunks(m.config().vocab_size)).enumerate() {
            let target = ids[i + 1];
            let want = -softmax(row)[target as usize].ln();
            assert!((tok.loss - want).abs() < 1e-4, "{label} token {i}: {} vs {want}", tok.loss);
            let rank = row.iter().filter(|&&l| l > row[target as usize]).count() + 1;
            assert_eq!(tok.rank, rank, "{label} token {i}");
            assert_eq!(tok.id, target);
            assert!((tok.prob - (-tok.loss).exp()).abs() < 1e-12);
            let top = top_k_probs(row, 5);
            for ((gi, gp), (wi, wp)) in tok.top.iter().zip(&top) {
                assert_eq!(gi, wi, "{label} token {i}");
                assert!((gp - wp).abs() < 1e-5, "{label} token {i}: {gp} vs {wp}");
            }
        }
        // A text longer than the context (128) is scored in the same windows as `score`.
        let long: Vec<u32> = (0..300).map(|i| (i * 7919 % 50000) as u32).collect();
        let per_token = block_on(surprisal(&m, &long, 1)).unwrap();
        let mean = per_token.iter().map(|t| t.loss).sum::<f64>() / per_token.len() as f64;
        let s = block_on(score(&m, &long)).unwrap();
        assert_eq!(per_token.len(), s.predicted);
        assert!((mean - s.loss).abs() < 1e-5, "{label}: surprisal mean {mean} vs score {}", s.loss);
    }
    let AnyModel::Gpt2(m) = model("gpt2-tiny-perturbed", &Device::flex()) else { panic!() };
    assert!(block_on(surprisal(&m, &[5], 3)).is_err(), "one token predicts nothing");
    assert!(block_on(surprisal(&m, &[5, 6], 0)).is_err());
    assert!(block_on(surprisal(&m, &[5, 60000], 3)).is_err());
}

fn embedding_table(m: &AnyModel) -> (Vec<f32>, usize) {
    let table = m.input_embeddings();
    let [_, d] = table.dims();
    (block_on(read_f32(table)).unwrap(), d)
}

#[test]
fn nearest_tokens_are_the_highest_cosines() {
    let m = model("gpt2-tiny-perturbed", &Device::flex());
    let (table, d) = embedding_table(&m);
    let row = |i: usize| &table[i * d..(i + 1) * d];
    let cos = |a: &[f32], b: &[f32]| {
        let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
        let n = |v: &[f32]| v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
        dot / (n(a) * n(b))
    };
    let id = 262u32;
    let mut want: Vec<(usize, f64)> = (0..table.len() / d)
        .filter(|&i| i != id as usize)
        .map(|i| (i, cos(row(id as usize), row(i))))
        .collect();
    want.sort_by(|a, b| b.1.total_cmp(&a.1));
    let got = block_on(nearest(&m, id, 8)).unwrap();
    assert_eq!(got.len(), 8);
    for ((gi, gc), (wi, wc)) in got.iter().zip(&want) {
        assert_eq!(*gi as usize, *wi);
        assert!((*gc as f64 - wc).abs() < 1e-4, "{gc} vs {wc}");
    }
    assert!(block_on(nearest(&m, 60000, 8)).is_err());
    assert!(block_on(nearest(&m, 1, 0)).is_err());
}

/// The first two principal components by a host power iteration in f64 (to convergence): the
/// device's projection must agree up to the components' sign, and the explained shares too.
#[test]
fn the_projection_is_the_first_two_principal_components() {
    for (label, device) in cpu_devices() {
        let m = model("bert-tiny-mlm-perturbed", &device);
        let (table, d) = embedding_table(&m);
        let ids: Vec<u32> = (1000..1200).collect();
        let n = ids.len();
        let x: Vec<Vec<f64>> =
            ids.iter().map(|&i| table[i as usize * d..][..d].iter().map(|&v| v as f64).collect()).collect();
        let mean: Vec<f64> = (0..d).map(|j| x.iter().map(|r| r[j]).sum::<f64>() / n as f64).collect();
        let xc: Vec<Vec<f64>> = x.iter().map(|r| r.iter().zip(&mean).map(|(v, m)| v - m).collect()).collect();
        let mut cov = vec![vec![0.0; d]; d];
        for r in &xc {
            for a in 0..d {
                for b in 0..d {
                    cov[a][b] += r[a] * r[b] / (n as f64 - 1.0);
                }
            }
        }
        let total: f64 = (0..d).map(|a| cov[a][a]).sum();
        let mut components = Vec::new();
        for _ in 0..2 {
            let mut v: Vec<f64> = (0..d).map(|i| ((i * 37 % 11) as f64) - 5.0).collect();
            for _ in 0..5000 {
                let mut w: Vec<f64> = (0..d).map(|a| (0..d).map(|b| cov[a][b] * v[b]).sum()).collect();
                let norm = w.iter().map(|x| x * x).sum::<f64>().sqrt();
                w.iter_mut().for_each(|x| *x /= norm);
                v = w;
            }
            let lambda: f64 = (0..d).map(|a| v[a] * (0..d).map(|b| cov[a][b] * v[b]).sum::<f64>()).sum();
            for a in 0..d {
                for b in 0..d {
                    cov[a][b] -= lambda * v[a] * v[b];
                }
            }
            components.push((v, lambda));
        }
        let got = block_on(projection(&m, &ids)).unwrap();
        assert_eq!(got.points.len(), n);
        for (c, (v, lambda)) in components.iter().enumerate() {
            let want: Vec<f64> = xc.iter().map(|r| r.iter().zip(v).map(|(a, b)| a * b).sum()).collect();
            let dot: f64 = want.iter().zip(&got.points).map(|(w, p)| w * p[c] as f64).sum();
            let sign = dot.signum();
            let diff =
                want.iter().zip(&got.points).map(|(w, p)| (sign * w - p[c] as f64).abs()).fold(0.0, f64::max);
            let scale = want.iter().map(|w| w.abs()).fold(0.0, f64::max);
            assert!(diff < 1e-3 * scale, "{label} component {c}: differs by {diff} (scale {scale})");
            let share = lambda / total;
            assert!(
                (got.explained[c] as f64 - share).abs() < 1e-4,
                "{label}: {} vs {share}",
                got.explained[c]
            );
        }
    }
    let m = model("bert-tiny-mlm-perturbed", &Device::flex());
    assert!(block_on(projection(&m, &[1, 2])).is_err());
    assert_eq!(most_frequent([5, 3, 5, 9, 3, 5], 2), vec![(5, 3), (3, 2)]);
}

/// Every evaluation keeps the probe: attention of every layer and head, and the logit lens,
/// whose last layer is the model's own prediction; a checkpoint keeps them for the replay.
#[test]
fn the_training_probe_is_recorded_at_every_evaluation_and_kept() {
    let text =
        String::from_utf8(read(fixtures().join("../../web/corpus/tiny_shakespeare_like.txt"))).unwrap();
    let corpus = Corpus::from_bytes(&text.as_bytes()[..20_000]).unwrap();
    let device = Device::flex();
    for arch in [Arch::Gpt2, Arch::Llama, Arch::Bert, Arch::ModernBert] {
        let mut c = TrainConfig::nano(arch);
        (c.n_layer, c.n_head, c.n_embd) = (2, 2, 32);
        (c.data.context, c.data.stride, c.batch_size) = (32, 32, 4);
        (c.steps, c.eval_every, c.eval_batches, c.sample_tokens) = (4, 2, 1, 4);
        c.probe = "To be, or not to be".into();
        let mut trainer = Trainer::new(c, &corpus, &device).unwrap();
        let ids = trainer.probe_ids().unwrap();
        for _ in 0..4 {
            block_on(trainer.step()).unwrap();
            if trainer.eval_due() {
                block_on(trainer.evaluate()).unwrap();
            }
        }
        let history = trainer.history().to_vec();
        assert_eq!(history.len(), 2);
        for eval in &history {
            let p = eval.probe.as_ref().expect("a probe at every evaluation");
            assert_eq!(p.tokens.len(), ids.len());
            assert_eq!((p.attentions.len(), p.attentions[0].len()), (2, 2));
            let t = ids.len();
            assert!(p.attentions.iter().flatten().all(|h| h.len() == t && h.iter().all(|q| q.len() == t)));
            for row in p.attentions.iter().flatten().flatten() {
                assert!((row.iter().sum::<f32>() - 1.0).abs() < 0.01, "rows are distributions: {row:?}");
            }
            match arch {
                Arch::Gpt2 | Arch::Llama => assert_eq!((p.lens.len(), p.lens[0].len()), (2, t)),
                Arch::Bert | Arch::ModernBert => assert!(p.lens.is_empty()),
            }
        }
        assert_ne!(history[0].probe, history[1].probe, "{arch:?}: the probe changes as the model learns");
        if arch == Arch::Gpt2 {
            // The last lens layer is what the model predicts.
            let AnyModel::Gpt2(m) = trainer.model().valid() else { panic!() };
            let logits = block_on(read_f32(m.forward(ids_tensor(&ids, &device), None))).unwrap();
            let lens = &history[1].probe.as_ref().unwrap().lens[1];
            for (pos, row) in logits.chunks(m.config().vocab_size).enumerate() {
                assert_eq!(lens[pos].id, top_k_probs(row, 1)[0].0, "position {pos}");
            }
        }
        let checkpoint = block_on(trainer.checkpoint()).unwrap();
        let resumed = Trainer::resume(&checkpoint, &corpus, &device).unwrap();
        for (a, b) in resumed.history().iter().zip(&history) {
            let (pa, pb) = (a.probe.as_ref().unwrap(), b.probe.as_ref().unwrap());
            assert_eq!(pa.tokens, pb.tokens);
            assert_eq!(pa.attentions, pb.attentions, "{arch:?}: attentions survive a checkpoint");
            assert_eq!(pa.lens, pb.lens, "{arch:?}: the lens survives a checkpoint");
        }
        assert_eq!(resumed.history().len(), history.len());
    }
}
