//! A run trains, evaluates and checkpoints within the memory it was admitted under. This
//! binary's global allocator refuses anything past the limit the test sets — the run's admitted
//! `Footprint::total()` above what the process held before the run — and a refused allocation
//! aborts the binary ("memory allocation of N bytes failed") or, where the code asks first
//! (`try_reserve`), fails the step or the checkpoint with a message.
//!
//! What it caught (issue 31): checkpoints held every tensor three times over while they were
//! serialised (~7× the f32 weights at the peak), outside the budget, so a GPT-2 124M fine-tune
//! that the tab's budget admitted trapped at its first autosave; and the run's tokenized corpus
//! and a checkpoint's small files (the tokenizer's JSON, the state) were not counted at all.
//!
//! The matmul library keeps per-thread packing buffers for the life of the process (a few MB a
//! thread, whatever the model): a first run of the same shape makes them before the limit is
//! set, as any earlier work in the CLI or the tab's worker would have. One test, so nothing else
//! allocates beside it.

mod common;

use std::alloc::System;

use burn::tensor::Device;
use common::*;
use hearth_lm::train::{Arch, Corpus, TokenizerChoice, TrainConfig, Trainer};

#[global_allocator]
static ALLOCATOR: cap::Cap<System> = cap::Cap::new(System, usize::MAX);

fn config(arch: Arch, tokenizer: TokenizerChoice) -> TrainConfig {
    let mut config = TrainConfig::nano(arch);
    // Weights dominate (a checkpoint's files are sized by them), in many tensors: 4 layers of
    // width 128, short rows.
    config.tokenizer = tokenizer;
    (config.n_layer, config.n_head, config.n_embd) = (4, 4, 128);
    config.data.context = 32;
    config.data.stride = 32;
    config.batch_size = 2;
    config.steps = 6;
    config.eval_every = 1000;
    config.eval_batches = 2;
    config.dropout = 0.0;
    config
}

/// Steps, an evaluation, a checkpoint and a step after it, with the allocator limited to the
/// run's admitted total; returns the checkpoint's bytes of files.
fn run_within_admitted(config: TrainConfig, corpus: &Corpus) -> usize {
    let device = Device::flex();
    // One thread: the packing buffers are per thread, and a step on another would make its own.
    let mut warm = Trainer::new(config.clone(), corpus, &device).unwrap();
    warm.set_threads(1);
    block_on(warm.step()).unwrap();
    let need = warm.admitted().unwrap();
    drop(warm);
    let budget = need.total();
    let base = ALLOCATOR.allocated();
    ALLOCATOR.set_limit(base + usize::try_from(budget).unwrap()).unwrap();
    let result = (|| -> hearth_lm::Result<usize> {
        let mut trainer = Trainer::new_within(config, corpus, &device, u64::try_from(budget).unwrap())?;
        trainer.set_threads(1);
        for _ in 0..2 {
            block_on(trainer.step())?;
        }
        block_on(trainer.evaluate())?;
        let checkpoint = block_on(trainer.checkpoint())?;
        let files = checkpoint.files.iter().map(|(_, b)| b.len()).sum();
        drop(checkpoint);
        block_on(trainer.step())?;
        Ok(files)
    })();
    // Lifted before any assertion: a panic's message needs memory too.
    ALLOCATOR.set_limit(usize::MAX).unwrap();
    result.unwrap_or_else(|e| panic!("within {budget} bytes ({need:?}): {e}"))
}

#[test]
fn runs_train_and_checkpoint_within_the_memory_they_were_admitted_under() {
    let text = read(fixtures().join("../../web/corpus/tiny_shakespeare_like.txt"));
    let corpus = Corpus::from_bytes(&text[..20_000]).unwrap();

    let gpt2 = config(Arch::Gpt2, TokenizerChoice::Bytes);
    let probe = Trainer::new(gpt2.clone(), &corpus, &Device::flex()).unwrap();
    let (need, weights) = (probe.admitted().unwrap(), probe.admitted().unwrap().weights);
    drop(probe);
    assert!(
        need.checkpoint > need.gradients + need.activations,
        "the checkpoint is the larger phase: {need:?}"
    );
    assert!(need.data > 0, "the tokenized corpus is counted: {need:?}");
    let files = run_within_admitted(gpt2, &corpus);
    // The files are what the budget said: the weights' and the two moments' f32 files.
    assert!(files as f64 >= 2.9 * weights as f64, "{files} bytes of files for {weights} bytes of weights");

    run_within_admitted(config(Arch::Llama, TokenizerChoice::Bytes), &corpus);
    run_within_admitted(config(Arch::Bert, "bert-base-uncased".parse().unwrap()), &corpus);
}
