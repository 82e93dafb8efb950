//! A checkpoint is written within what the memory budget counts for it: its files (the weights'
//! and the two moments' f32 files) and one tensor read from the device. This binary's global
//! allocator refuses anything past the limit the test sets — that much above what the run holds
//! between steps — and a refused allocation aborts the binary with "memory allocation of N bytes
//! failed". Checkpoints used to hold every tensor three times over while
//! they were serialised (values, bytes, file: ~7× the f32 weights at the peak with the two
//! moments' file), outside the budget: a GPT-2 124M fine-tune that the tab's budget admitted
//! trapped at its first autosave (issue 31). One test, so nothing else allocates beside it.

mod common;

use std::alloc::System;

use burn::tensor::Device;
use common::*;
use hearth_lm::train::{Arch, Corpus, TokenizerChoice, TrainConfig, Trainer};

#[global_allocator]
static ALLOCATOR: cap::Cap<System> = cap::Cap::new(System, usize::MAX);

/// `config.json`, `tokenizer.json` (byte tokens), `tokenizer_config.json`, `trainer_state.json`.
const SMALL_FILES: usize = 1 << 20;

#[test]
fn a_checkpoint_costs_what_the_budget_counts_for_it() {
    let text = read(fixtures().join("../../web/corpus/tiny_shakespeare_like.txt"));
    let corpus = Corpus::from_bytes(&text[..20_000]).unwrap();
    let mut config = TrainConfig::nano(Arch::Gpt2);
    // Weights dominate (a checkpoint's files are sized by them), in many tensors: 4 layers of
    // width 128, byte tokens, short rows.
    config.tokenizer = TokenizerChoice::Bytes;
    (config.n_layer, config.n_head, config.n_embd) = (4, 4, 128);
    config.data.context = 32;
    config.data.stride = 32;
    config.batch_size = 2;
    config.steps = 4;
    config.eval_every = 1000;
    config.dropout = 0.0;
    let device = Device::flex();
    // The tokenizer the run will build, to ask what the run needs.
    let probe = Trainer::new(config.clone(), &corpus, &device).unwrap();
    let need = config.check_memory(probe.tokenizer(), u64::MAX).unwrap();
    drop(probe);
    let budget = u64::try_from(need.total()).unwrap();
    let weights = need.weights;
    assert!(
        need.checkpoint > need.gradients + need.activations,
        "the checkpoint is the larger phase: {need:?}"
    );

    let mut trainer = Trainer::new_within(config, &corpus, &device, budget).unwrap();
    for _ in 0..2 {
        block_on(trainer.step()).unwrap();
    }
    // Between steps, a checkpoint may use what the budget counts for it (its files and one
    // tensor) beyond what the run holds, and a little for its JSON files.
    let base = ALLOCATOR.allocated();
    let checkpoint_budget = usize::try_from(need.checkpoint).unwrap() + SMALL_FILES;
    ALLOCATOR.set_limit(base + checkpoint_budget).unwrap();
    let checkpoint = block_on(trainer.checkpoint()).unwrap();
    let files: usize = checkpoint.files.iter().map(|(_, b)| b.len()).sum();
    // The files are what the budget said: the weights' and the two moments' f32 files.
    assert!(files as f64 >= 2.9 * weights as f64, "{files} bytes of files for {weights} bytes of weights");
    ALLOCATOR.set_limit(usize::MAX).unwrap();
    drop(checkpoint);
    block_on(trainer.step()).unwrap();
}
