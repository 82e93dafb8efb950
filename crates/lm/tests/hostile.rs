//! What real users bring: configs no machine can hold, out-of-range values, a tokenizer from
//! another model, ids past the vocabulary, runs that cannot fit, and damaged checkpoints. Each
//! must be an `Err` with a message that says what is wrong — never a panic, an abort or NaN.

mod common;

use burn::tensor::Device;
use common::*;
use hearth_lm::infer::fill_mask::fill_mask_ids;
use hearth_lm::infer::score::score_windows;
use hearth_lm::io::checkpoint::Checkpoint;
use hearth_lm::io::hf::{load_tokenizer, HfFiles};
use hearth_lm::model::masked::masked_lm_loss;
use hearth_lm::train::eval::score_masked;
use hearth_lm::train::{Arch, Corpus, EvalReport, TokenizerChoice, TrainConfig, Trainer};
use hearth_lm::{load_model, AnyModel, Generator, Sampling, Tokenizer};
use serde_json::Value;

fn files(case_name: &str) -> (Vec<u8>, Vec<u8>) {
    let dir = case(case_name);
    (read(dir.join("config.json")), read(dir.join("model.safetensors")))
}

/// The fixture's config with `field` set to `value`.
fn edited_config(case_name: &str, field: &str, value: Value) -> Vec<u8> {
    let mut config: Value = serde_json::from_slice(&files(case_name).0).unwrap();
    config[field] = value;
    serde_json::to_vec(&config).unwrap()
}

fn load_err(case_name: &str, field: &str, value: Value) -> String {
    let config = edited_config(case_name, field, value);
    let weights = files(case_name).1;
    load_model(&config, &weights, &Device::flex()).map(|_| ()).unwrap_err().to_string()
}

fn gpt2() -> AnyModel {
    let (config, weights) = files("gpt2-tiny");
    load_model(&config, &weights, &Device::flex()).unwrap()
}

fn bert() -> AnyModel {
    let (config, weights) = files("bert-tiny-mlm");
    load_model(&config, &weights, &Device::flex()).unwrap()
}

#[test]
fn gpt2_config_with_a_billion_layers_is_refused_before_allocating() {
    let err = load_err("gpt2-tiny", "n_layer", Value::from(1_000_000_000u64));
    assert!(err.contains("does not belong to these weights"), "{err}");
}

#[test]
fn bert_config_with_a_billion_layers_is_refused_before_allocating() {
    let err = load_err("bert-tiny-mlm", "num_hidden_layers", Value::from(1_000_000_000u64));
    assert!(err.contains("does not belong to these weights"), "{err}");
}

#[test]
fn config_with_overflowing_sizes_is_refused() {
    let err = load_err("gpt2-tiny", "n_embd", Value::from(u64::MAX));
    assert!(err.contains("does not belong") || err.contains("divisible"), "{err}");
}

#[test]
fn dropout_outside_zero_to_one_is_a_config_error() {
    let err = load_err("gpt2-tiny", "resid_pdrop", Value::from(7));
    assert!(err.contains("resid_pdrop must be in [0, 1)"), "{err}");
    let err = load_err("bert-tiny-mlm", "hidden_dropout_prob", Value::from(-0.5));
    assert!(err.contains("hidden_dropout_prob"), "{err}");
}

#[test]
fn non_positive_layer_norm_epsilon_is_a_config_error() {
    let err = load_err("gpt2-tiny", "layer_norm_epsilon", Value::from(-1));
    assert!(err.contains("layer_norm_epsilon must be a positive number"), "{err}");
    let err = load_err("bert-tiny-mlm", "layer_norm_eps", Value::from(0));
    assert!(err.contains("layer_norm_eps"), "{err}");
}

#[test]
fn unknown_activation_is_a_config_error() {
    let err = load_err("gpt2-tiny", "activation_function", Value::from("swish"));
    assert!(err.contains("swish"), "{err}");
}

#[test]
fn tokenizer_larger_than_the_model_vocabulary_is_refused() {
    // The byte-level fixture has 256 tokens; without its own tokenizer.json the built-in GPT-2
    // tokenizer (50,257) would be used and embed ids past the table.
    let (config, weights) = files("gpt2-bytes-tiny");
    let model = load_model(&config, &weights, &Device::flex()).unwrap();
    let files = HfFiles { config_json: config, model_safetensors: weights, ..Default::default() };
    let err = load_tokenizer(&files, &model).unwrap_err().to_string();
    assert!(err.contains("50257") && err.contains("256"), "{err}");
}

#[test]
fn ids_past_the_vocabulary_are_refused_by_score() {
    let AnyModel::Gpt2(model) = gpt2() else { unreachable!() };
    let vocab = model.config().vocab_size as u32;
    let err = block_on(score_windows(&model, &[1, 2, vocab], None)).unwrap_err().to_string();
    assert!(err.contains("outside the model's vocabulary"), "{err}");
}

#[test]
fn ids_past_the_vocabulary_are_refused_by_generate() {
    let AnyModel::Gpt2(model) = gpt2() else { unreachable!() };
    let vocab = model.config().vocab_size as u32;
    assert!(Generator::new(&model, &[vocab + 5], Sampling::ArgMax, 0).is_err());
    let mut generator = Generator::new(&model, &[1], Sampling::ArgMax, 0).unwrap();
    assert!(generator.push(vocab).is_err());
}

#[test]
fn ids_past_the_vocabulary_are_refused_by_fill_mask() {
    let AnyModel::Bert(model) = bert() else { unreachable!() };
    let vocab = model.config().vocab_size as u32;
    let err = block_on(fill_mask_ids(
        &model,
        &Tokenizer::builtin("bert-base-uncased").unwrap(),
        &[101, 103, vocab],
        103,
        3,
    ))
    .unwrap_err()
    .to_string();
    assert!(err.contains("outside the model's vocabulary"), "{err}");
}

#[test]
fn ids_past_the_vocabulary_are_refused_by_the_masked_lm_loss_and_eval() {
    let AnyModel::Bert(model) = bert() else { unreachable!() };
    let vocab = model.config().vocab_size as u32;
    let err = masked_lm_loss(&model, &[101, vocab, 102], &[None, Some(5), None], [1, 3]).unwrap_err();
    assert!(err.to_string().contains("outside"), "{err}");
    let err = masked_lm_loss(&model, &[101, 7, 102], &[None, Some(vocab), None], [1, 3]).unwrap_err();
    assert!(err.to_string().contains("outside"), "{err}");
    let tokenizer = Tokenizer::builtin("bert-base-uncased").unwrap();
    let err = block_on(score_masked(&model, &tokenizer, &[2000, vocab + 1, 2001], None)).unwrap_err();
    assert!(err.to_string().contains("outside"), "{err}");
}

#[test]
fn masked_lm_loss_with_nothing_masked_is_an_error_not_nan() {
    let AnyModel::Bert(model) = bert() else { unreachable!() };
    assert!(masked_lm_loss(&model, &[101, 7, 102], &[None, None, None], [1, 3]).is_err());
}

fn corpus() -> Corpus {
    Corpus::from_bytes("To be, or not to be, that is the question.\n".repeat(40).as_bytes()).unwrap()
}

fn tiny(arch: Arch) -> TrainConfig {
    let mut c = TrainConfig::nano(arch);
    (c.n_layer, c.n_head, c.n_embd) = (1, 2, 16);
    c.data.context = 16;
    c.data.stride = 16;
    c.batch_size = 2;
    c.steps = 4;
    c.eval_every = 2;
    c.eval_batches = 1;
    c.sample_tokens = 4;
    c
}

#[test]
fn a_trillion_batch_is_refused_before_allocating() {
    let mut c = tiny(Arch::Gpt2);
    c.batch_size = 1_000_000_000_000;
    let budget = 8_000_000_000;
    let err = Trainer::new_within(c, &corpus(), &Device::flex(), budget).map(|_| ()).unwrap_err().to_string();
    assert!(err.contains("batch 1000000000000 × context 16 needs"), "{err}");
}

#[test]
fn a_billion_token_context_is_refused_before_allocating() {
    let mut c = tiny(Arch::Bert);
    c.data.context = 1_000_000_000;
    c.data.stride = 1_000_000_000;
    let err = Trainer::new(c, &corpus(), &Device::flex()).map(|_| ()).unwrap_err().to_string();
    assert!(err.contains("needs"), "{err}");
}

#[test]
fn a_run_over_the_budget_says_which_batch_fits() {
    let mut c = tiny(Arch::Gpt2);
    c.tokenizer = TokenizerChoice::Gpt2;
    c.batch_size = 4096;
    c.data.context = 64;
    c.data.stride = 64;
    let err = Trainer::new_within(c, &corpus(), &Device::flex(), 200_000_000).map(|_| ()).unwrap_err();
    let err = err.to_string();
    assert!(err.contains("at most batch") && err.contains("200 MB"), "{err}");
}

/// A checkpoint of a tiny run after 2 steps (one evaluation in its history).
fn checkpoint() -> Checkpoint {
    let mut trainer = Trainer::new(tiny(Arch::Gpt2), &corpus(), &Device::flex()).unwrap();
    for _ in 0..2 {
        block_on(trainer.step()).unwrap();
    }
    block_on(trainer.evaluate()).unwrap();
    block_on(trainer.checkpoint()).unwrap()
}

fn with_file(checkpoint: &Checkpoint, name: &str, bytes: Vec<u8>) -> Checkpoint {
    let mut files: Vec<_> = checkpoint.files.iter().filter(|(n, _)| n != name).cloned().collect();
    files.push((name.to_string(), bytes));
    Checkpoint { files }
}

fn resume_err(checkpoint: &Checkpoint) -> String {
    Trainer::resume(checkpoint, &corpus(), &Device::flex()).map(|_| ()).unwrap_err().to_string()
}

fn edited_state(checkpoint: &Checkpoint, edit: impl FnOnce(&mut Value)) -> Checkpoint {
    let mut state: Value = serde_json::from_slice(checkpoint.get("trainer_state.json").unwrap()).unwrap();
    edit(&mut state);
    with_file(checkpoint, "trainer_state.json", serde_json::to_vec(&state).unwrap())
}

/// The optimizer state with `edit` applied to its tensors.
fn edited_moments(
    checkpoint: &Checkpoint,
    edit: impl FnOnce(&mut Vec<hearth_lm::io::weights::NamedTensor>),
) -> Checkpoint {
    let file =
        hearth_lm::io::weights::SafetensorsFile::parse(checkpoint.get("optimizer.safetensors").unwrap())
            .unwrap();
    let mut tensors = file.all_f32().unwrap();
    edit(&mut tensors);
    let bytes = hearth_lm::io::weights::to_safetensors(&tensors).unwrap();
    with_file(checkpoint, "optimizer.safetensors", bytes)
}

#[test]
fn resume_refuses_moments_of_the_wrong_shape() {
    let good = checkpoint();
    let bad = edited_moments(&good, |t| {
        t[0].1 = vec![3];
        t[0].2 = vec![0.0; 3];
    });
    let err = resume_err(&bad);
    assert!(err.contains("optimizer.safetensors") && err.contains("shape"), "{err}");
    // The good checkpoint still resumes.
    assert!(Trainer::resume(&good, &corpus(), &Device::flex()).is_ok());
}

#[test]
fn resume_refuses_a_missing_moment() {
    let bad = edited_moments(&checkpoint(), |t| {
        t.remove(1);
    });
    assert!(resume_err(&bad).contains("missing"), "{}", resume_err(&bad));
}

#[test]
fn resume_refuses_moments_of_unknown_parameters_and_non_finite_values() {
    let good = checkpoint();
    let bad = edited_moments(&good, |t| t.push(("exp_avg.nope".into(), vec![1], vec![0.0])));
    assert!(resume_err(&bad).contains("belongs to no parameter"));
    let bad = edited_moments(&good, |t| t[0].2[0] = f32::NAN);
    assert!(resume_err(&bad).contains("non-finite"));
}

#[test]
fn resume_refuses_inconsistent_step_counts() {
    let good = checkpoint();
    let err = resume_err(&edited_state(&good, |s| s["step"] = Value::from(3)));
    assert!(err.contains("inconsistent"), "{err}");
    let err = resume_err(&edited_state(&good, |s| s["step"] = Value::from(-1)));
    assert!(err.contains("trainer_state.json"), "{err}");
    let err = resume_err(&edited_state(&good, |s| s["tokens_seen"] = Value::from(5)));
    assert!(err.contains("tokens seen"), "{err}");
    let err = resume_err(&edited_state(&good, |s| s["step"] = Value::from(1_000_000u64)));
    assert!(err.contains("past the run"), "{err}");
}

#[test]
fn resume_refuses_a_trainer_state_with_impossible_settings() {
    let err = resume_err(&edited_state(&checkpoint(), |s| s["config"]["dropout"] = Value::from(3.0)));
    assert!(err.contains("dropout"), "{err}");
}

#[test]
fn nan_losses_in_the_history_survive_a_checkpoint() {
    let good = checkpoint();
    let bad_eval = edited_state(&good, |s| {
        s["history"][0]["train_loss"] = Value::from("NaN");
        s["history"][0]["val_loss"] = Value::from("Infinity");
    });
    let trainer = Trainer::resume(&bad_eval, &corpus(), &Device::flex()).unwrap();
    assert!(trainer.history()[0].train_loss.is_nan());
    assert_eq!(trainer.history()[0].val_loss, Some(f64::INFINITY));
    // And it writes them back the same way.
    let again = block_on(trainer.checkpoint()).unwrap();
    let state: Value = serde_json::from_slice(again.get("trainer_state.json").unwrap()).unwrap();
    assert_eq!(state["history"][0]["train_loss"], "NaN");
}

#[test]
fn eval_reports_with_nan_round_trip_through_json() {
    let report = EvalReport {
        step: 1,
        tokens_seen: 2,
        train_loss: f64::NAN,
        val_loss: Some(f64::NEG_INFINITY),
        perplexity: f64::INFINITY,
        lr: 1e-3,
        sample: String::new(),
        epoch: 0.0,
        probe: None,
    };
    let back: EvalReport = serde_json::from_str(&serde_json::to_string(&report).unwrap()).unwrap();
    assert!(back.train_loss.is_nan());
    assert_eq!((back.val_loss, back.perplexity), (Some(f64::NEG_INFINITY), f64::INFINITY));
}

#[test]
fn tolerance_checks_fail_on_nan() {
    assert!(max_abs_diff(&[1.0, f32::NAN], &[1.0, 2.0]) > 1.0);
    assert!(max_abs_diff(&[f32::NAN], &[f32::NAN]) > 1.0);
    assert!(max_abs_diff(&[f32::INFINITY], &[1.0]) > 1.0);
    assert_eq!(max_abs_diff(&[1.0, 2.0], &[1.0, 2.5]), 0.5);
}
