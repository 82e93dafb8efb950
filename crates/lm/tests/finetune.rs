//! Fine-tuning (issue 10): documents and packing against the tutorials' recipe, the step-0 loss
//! against `hearth eval`'s scoring, and a 20-step fine-tune of the GPT-2 fixture against
//! PyTorch (`tests/fixtures/make_finetune_case.py` made `gpt2-tiny/finetune`).

mod common;

use burn::tensor::Device;
use common::*;
use hearth_lm::infer::score::score_windows;
use hearth_lm::io::hf::{export_model, tokenizer_for_config, HfFiles};
use hearth_lm::io::weights::{export_tensors, Layout, SafetensorsFile};
use hearth_lm::train::eval::score_masked;
use hearth_lm::train::{
    document_separator, documents_of, encode_documents, encode_text, Corpus, DataConfig, Dataset, Packing,
    Split, TrainConfig, Trainer,
};
use hearth_lm::{load_model, AnyModel, ModelConfig, Tokenizer};

const TOL: f64 = 1e-4;

fn files(name: &str) -> HfFiles {
    let dir = case(name);
    HfFiles {
        config_json: read(dir.join("config.json")),
        model_safetensors: read(dir.join("model.safetensors")),
        tokenizer_json: std::fs::read(dir.join("tokenizer.json")).ok(),
        generation_config_json: None,
        weight_shards: Vec::new(),
    }
}

fn model_config(files: &HfFiles) -> ModelConfig {
    ModelConfig::from_json(&files.config_json).unwrap()
}

/// A fixture's files, its own tokenizer, and the default fine-tuning run of it.
fn fine_tune_of(name: &str) -> (HfFiles, Tokenizer, TrainConfig) {
    let files = files(name);
    let model_config = model_config(&files);
    let tokenizer = tokenizer_for_config(&files, &model_config).unwrap();
    (files, tokenizer, TrainConfig::fine_tune(model_config, name))
}

fn finetune_case() -> (serde_json::Value, Corpus) {
    let dir = case("gpt2-tiny").join("finetune");
    let expected: serde_json::Value = serde_json::from_slice(&read(dir.join("expected.json"))).unwrap();
    let docs = documents_of("documents.jsonl", &read(dir.join("documents.jsonl")), None).unwrap();
    (expected, Corpus::from_documents(docs).unwrap())
}

fn chunks(expected: &serde_json::Value) -> Vec<Vec<u32>> {
    expected["chunks"].as_array().unwrap().iter().map(ids).collect()
}

#[test]
fn per_doc_packing_gives_exactly_the_tutorial_chunks() {
    let (expected, corpus) = finetune_case();
    let tokenizer = Tokenizer::builtin("gpt2").unwrap();
    let context = expected["context"].as_u64().unwrap() as usize;
    let config = DataConfig { context, stride: context, val_fraction: 0.0, packing: Packing::PerDoc };
    let documents = encode_documents(&tokenizer, &corpus).unwrap();
    let data = Dataset::from_documents(documents, None, corpus.chars(), 50257, &config, true).unwrap();
    let rows: Vec<Vec<u32>> =
        (0..data.windows(Split::Train)).map(|i| data.window(Split::Train, i).to_vec()).collect();
    assert_eq!(rows, chunks(&expected), "the chunks `return_overflowing_tokens` keeps, in order");
    let stats = data.stats();
    assert_eq!(stats.dropped_tokens as u64, expected["dropped_tokens"].as_u64().unwrap());
    assert_eq!((stats.documents, stats.train_documents, stats.val_documents), (12, 12, 0));
}

#[test]
fn concat_puts_one_end_of_text_between_documents() {
    let tokenizer = Tokenizer::builtin("gpt2").unwrap();
    let corpus =
        Corpus::from_documents(vec!["First one.".into(), "  ".into(), "Second.".into(), "Third".into()])
            .unwrap();
    assert_eq!(corpus.documents().len(), 3, "the blank document is dropped");
    let eot = document_separator(&tokenizer).unwrap();
    assert_eq!(eot, 50256);
    let config = DataConfig { context: 2, stride: 1, val_fraction: 0.0, packing: Packing::Concat };
    let docs = encode_documents(&tokenizer, &corpus).unwrap();
    let data =
        Dataset::from_documents(docs.clone(), Some(eot), corpus.chars(), 50257, &config, true).unwrap();
    let mut stream: Vec<u32> = Vec::new();
    for i in 0..data.windows(Split::Train) {
        let w = data.window(Split::Train, i);
        if i == 0 {
            stream.extend(w);
        } else {
            stream.push(*w.last().unwrap());
        }
    }
    let want: Vec<u32> = [docs[0].clone(), vec![eot], docs[1].clone(), vec![eot], docs[2].clone()].concat();
    assert_eq!(stream, want);
    assert_eq!(stream.iter().filter(|&&t| t == eot).count(), 2);
}

#[test]
fn the_validation_split_takes_whole_documents() {
    let docs: Vec<Vec<u32>> = (0..10).map(|d| vec![d; 20]).collect();
    let config = DataConfig { context: 4, stride: 4, val_fraction: 0.2, packing: Packing::PerDoc };
    let data = Dataset::from_documents(docs, None, 200, 16, &config, true).unwrap();
    let stats = data.stats();
    assert_eq!((stats.train_documents, stats.val_documents), (8, 2));
    assert!((0..data.windows(Split::Val)).all(|i| data.window(Split::Val, i)[0] >= 8), "the last documents");
    assert_eq!(stats.train_windows, 8 * 5);
}

/// A prefix of the sample whose token count `n` has `(n - off) % context == 0` and holds at
/// least `rows` windows: then `hearth eval`'s windows and the trainer's rows are the same.
fn aligned_text(tokenizer: &Tokenizer, context: usize, off: usize, rows: usize) -> String {
    let text =
        String::from_utf8(read(fixtures().join("../../web/corpus/tiny_shakespeare_like.txt"))).unwrap();
    let mut prefix = String::new();
    for word in text.split_inclusive(' ') {
        prefix.push_str(word);
        let n = encode_text(tokenizer, &prefix).unwrap().len();
        if n >= rows * context + off && (n - off).is_multiple_of(context) {
            return prefix;
        }
    }
    panic!("no aligned prefix");
}

fn step0_loss(name: &str, off: usize, device: &Device) -> (f64, f64) {
    let (files, tokenizer, mut config) = fine_tune_of(name);
    let context = 16;
    let text = aligned_text(&tokenizer, context, off, 6);
    let corpus = Corpus::from_bytes(text.as_bytes()).unwrap();
    config.data = DataConfig { context, stride: context, val_fraction: 0.0, packing: Packing::Concat };
    (config.batch_size, config.eval_batches, config.seed, config.sample_tokens) = (1, 1000, 0, 2);
    let mut trainer = Trainer::fine_tune_within(
        config,
        &files.model_safetensors,
        tokenizer.clone(),
        &corpus,
        device,
        u64::MAX,
    )
    .unwrap();
    let step0 = block_on(trainer.evaluate()).unwrap();
    assert_eq!(step0.step, 0);
    let ids = encode_text(&tokenizer, &text).unwrap();
    let model = load_model(&files.config_json, &files.model_safetensors, device).unwrap();
    let eval = match &model {
        AnyModel::Gpt2(m) => block_on(score_windows(m, &ids, Some(context))).unwrap(),
        AnyModel::Bert(_) | AnyModel::ModernBert(_) => {
            block_on(score_masked(model.masked().unwrap(), &tokenizer, &ids, Some(context))).unwrap()
        }
        AnyModel::Llama(_) => unreachable!("the cases here are GPT-2, BERT and ModernBERT"),
    };
    (step0.train_loss, eval.loss)
}

#[test]
fn gpt2_step0_loss_equals_hearth_eval() {
    let (step0, eval) = step0_loss("gpt2-tiny-perturbed", 1, &Device::flex());
    assert!((step0 - eval).abs() < TOL, "step 0 {step0} vs eval {eval}");
}

#[test]
fn bert_step0_loss_equals_hearth_eval() {
    let (step0, eval) = step0_loss("bert-tiny-mlm-perturbed", 0, &Device::flex());
    assert!((step0 - eval).abs() < TOL, "step 0 {step0} vs eval {eval}");
}

#[test]
fn modernbert_step0_loss_equals_hearth_eval() {
    let (step0, eval) = step0_loss("modernbert-local", 0, &Device::flex());
    assert!((step0 - eval).abs() < TOL, "step 0 {step0} vs eval {eval}");
}

#[test]
fn twenty_fine_tuning_steps_match_pytorch() {
    let (expected, corpus) = finetune_case();
    let (files, tokenizer, mut config) = fine_tune_of("gpt2-tiny");
    let context = expected["context"].as_u64().unwrap() as usize;
    config.data = DataConfig { context, stride: context, val_fraction: 0.0, packing: Packing::PerDoc };
    config.batch_size = expected["batch"].as_u64().unwrap() as usize;
    config.steps = expected["steps"].as_u64().unwrap() as usize;
    config.seed = expected["seed"].as_u64().unwrap();
    (config.dropout, config.eval_batches, config.sample_tokens) = (0.0, 1000, 2);
    assert_eq!((config.lr, config.warmup, config.adamw.weight_decay, config.grad_clip), (5e-5, 0, 0.0, 1.0));
    let device = Device::flex();
    let mut trainer =
        Trainer::fine_tune_within(config, &files.model_safetensors, tokenizer, &corpus, &device, u64::MAX)
            .unwrap();
    let initial = expected["initial_loss"].as_f64().unwrap();
    let step0 = block_on(trainer.evaluate()).unwrap();
    assert!((step0.train_loss - initial).abs() < TOL, "step 0: {} vs PyTorch {initial}", step0.train_loss);
    for (step, want) in floats(&expected["losses"]).into_iter().enumerate() {
        let report = block_on(trainer.step()).unwrap();
        assert!(
            (report.loss - want).abs() < TOL,
            "step {}: loss {} vs PyTorch {want}",
            step + 1,
            report.loss
        );
    }
    assert!(trainer.is_done());
    let AnyModel::Gpt2(model) = trainer.model() else { panic!("a GPT-2") };
    let got = block_on(export_tensors(model.as_ref(), Layout::Gpt2)).unwrap();
    let want =
        SafetensorsFile::parse(&read(case("gpt2-tiny").join("finetune/params_after_step20.safetensors")))
            .unwrap()
            .all_f32()
            .unwrap();
    let wte_ids = ids(&expected["wte_ids"]);
    for (name, shape, values) in &got {
        if name == "transformer.wte.weight" {
            let width = shape[1];
            let (_, _, rows) = want.iter().find(|t| t.0 == "wte_rows").unwrap();
            let mine: Vec<f32> = wte_ids
                .iter()
                .flat_map(|&id| values[id as usize * width..(id as usize + 1) * width].to_vec())
                .collect();
            let diff = max_abs_diff(&mine, rows);
            assert!((diff as f64) < TOL, "wte rows differ by {diff}");
            continue;
        }
        let (_, want_shape, want_values) =
            want.iter().find(|t| &t.0 == name).unwrap_or_else(|| panic!("{name}"));
        assert_eq!(shape, want_shape, "{name}");
        let diff = max_abs_diff(values, want_values);
        assert!((diff as f64) < TOL, "{name} differs by {diff} after 20 steps");
    }
}

#[test]
fn a_fine_tuned_model_exports_and_reopens() {
    let (_, corpus) = finetune_case();
    let (files, tokenizer, mut config) = fine_tune_of("gpt2-tiny");
    config.data.context = 32;
    config.data.stride = 32;
    (config.steps, config.batch_size, config.sample_tokens) = (2, 2, 2);
    let device = Device::flex();
    let mut trainer =
        Trainer::fine_tune_within(config, &files.model_safetensors, tokenizer, &corpus, &device, u64::MAX)
            .unwrap();
    block_on(trainer.step()).unwrap();
    block_on(trainer.step()).unwrap();
    let out = block_on(export_model(trainer.model(), Some(trainer.tokenizer()))).unwrap();
    let reopened = load_model(&out.config_json, &out.model_safetensors, &device).unwrap();
    assert_eq!(reopened.num_params(), trainer.num_params());
    let saved = ModelConfig::from_json(&out.config_json).unwrap();
    assert_eq!(saved.dims(), (2, 4, 64));
    // The checkpoint resumes as the fine-tune it is.
    let checkpoint = block_on(trainer.checkpoint()).unwrap();
    let resumed = Trainer::resume(&checkpoint, &corpus, &device).unwrap();
    assert_eq!(resumed.step_count(), 2);
    assert!(resumed.config().init_from.is_some());
}

#[test]
fn a_mismatched_tokenizer_is_refused_before_fine_tuning() {
    let (_, corpus) = finetune_case();
    let files = files("gpt2-bytes-tiny");
    let model_config = model_config(&files);
    let config = TrainConfig::fine_tune(model_config, "gpt2-bytes-tiny");
    let gpt2 = Tokenizer::builtin("gpt2").unwrap();
    let e =
        Trainer::fine_tune_within(config, &files.model_safetensors, gpt2, &corpus, &Device::flex(), u64::MAX)
            .err()
            .unwrap()
            .to_string();
    assert!(e.contains("50257") && e.contains("256"), "{e}");
}

#[test]
fn epochs_decide_the_steps() {
    let (_, corpus) = finetune_case();
    let (files, tokenizer, mut config) = fine_tune_of("gpt2-tiny");
    config.data = DataConfig { context: 32, stride: 32, val_fraction: 0.0, packing: Packing::PerDoc };
    (config.batch_size, config.epochs) = (4, Some(2.0));
    let trainer = Trainer::fine_tune_within(
        config,
        &files.model_safetensors,
        tokenizer,
        &corpus,
        &Device::flex(),
        u64::MAX,
    )
    .unwrap();
    // 36 chunks, batch 4: 9 steps an epoch.
    assert_eq!(trainer.config().steps, 18);
    assert_eq!(trainer.epoch(), 0.0);
}

/// Found by the resume fuzzer: a damaged checkpoint's stride of 2⁶⁴ − 1 overflowed the window
/// loop. It now yields the one window that fits.
#[test]
fn a_huge_stride_does_not_overflow() {
    let config = DataConfig { context: 4, stride: usize::MAX, val_fraction: 0.0, packing: Packing::Concat };
    let data = Dataset::from_documents(vec![(0..20).collect()], None, 20, 32, &config, true).unwrap();
    assert_eq!(data.windows(Split::Train), 1);
}
