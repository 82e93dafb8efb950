//! `hearth bench`: the numbers beside PyTorch's in the shared baseline (bench_torch.py):
//! GPT-2 124M KV-cache generation (6-token prompt, 50 new tokens) and BERT-base fill-mask on an
//! 11-token sentence, both with random weights, fp32; with `--train`, training throughput of
//! nanoGPT's baby GPT (char-level, 6/6/384, context 256, batch 8), GPT-2 124M from random
//! weights and fine-tuning GPT-2 124M-sized weights with Hugging Face's recipe (context 128,
//! batch 2 each). With `--llama`, the same for today's decoders (bench_llama_torch.py beside it):
//! generation with SmolLM2-135M- and Qwen2.5-0.5B-shaped random weights, and with `--train`
//! the Llama-style presets of the baby GPT's and GPT-2 124M's shapes. With `--modernbert`,
//! fill-mask with ModernBERT-base-shaped random weights (bench_modernbert_torch.py beside it).

use std::time::Instant;

use burn::tensor::Device;
use clap::Args;
use hearth_lm::infer::{embeddings, inside, surprisal};
use hearth_lm::io::hf::{export_model, load_model_as};
use hearth_lm::model::causal::CausalLm;
use hearth_lm::model::precision::WeightDtype;
use hearth_lm::train::{Arch, TrainConfig, Trainer};
use hearth_lm::train::{Corpus, TokenizerChoice};
use hearth_lm::{AnyModel, BertConfig, Generator, Gpt2Config, LlamaConfig, ModelConfig, Sampling, Tokenizer};
use serde_json::json;

use crate::{print_json, CliResult};

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// New tokens per generation run.
    #[arg(long, default_value_t = 50)]
    new_tokens: usize,
    /// Timed repetitions of each job (after one warm-up).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    #[arg(long)]
    json: bool,
    /// Benchmark training throughput instead of inference.
    #[arg(long)]
    train: bool,
    /// Corpus for the training benchmark (default: the bundled Shakespeare sample).
    #[arg(long, default_value = "web/corpus/tiny_shakespeare_like.txt")]
    corpus: std::path::PathBuf,
    /// Timed optimizer steps per training job (after two warm-up steps).
    #[arg(long, default_value_t = 10)]
    steps: usize,
    /// Benchmark the views inside the model instead (GPT-2 124M random weights, 64 tokens):
    /// one layer's attention, all layers', the logit lens, surprisal, neighbours, projection.
    #[arg(long)]
    inside: bool,
    /// The Llama family instead of GPT-2 and BERT: SmolLM2-135M- and Qwen2.5-0.5B-shaped
    /// generation, or with --train the Llama-style presets of the GPT-2 jobs' shapes.
    #[arg(long)]
    llama: bool,
    /// ModernBERT-base-shaped fill-mask (22 layers, 768 wide, vocabulary 50,368) on a 12-token
    /// sentence instead of the GPT-2 and BERT jobs.
    #[arg(long)]
    modernbert: bool,
    /// Threads a training step's batch is split across (default: one per core).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    batch_threads: Option<u16>,
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

pub fn run(args: BenchArgs, device: &Device) -> CliResult {
    if args.llama && args.inside {
        return Err("--llama and --inside do not combine: the views are benchmarked on GPT-2".into());
    }
    if args.modernbert {
        if args.llama || args.train || args.inside {
            return Err("--modernbert is an inference job of its own: give it alone".into());
        }
        return fill_mask_modernbert(&args, device);
    }
    if args.llama && args.train {
        return train_llama(&args, device);
    }
    if args.llama {
        return generate_llama(&args, device);
    }
    if args.train {
        return train(&args, device);
    }
    if args.inside {
        return inside(&args, device);
    }
    if args.runs == 0 || args.new_tokens < 2 {
        return Err("bench needs --runs ≥ 1 and --new-tokens ≥ 2".into());
    }
    let gpt2_tok = Tokenizer::builtin("gpt2").map_err(|e| e.to_string())?;
    let prompt = gpt2_tok.encode_ids("Swimming at the beach is").map_err(|e| e.to_string())?;
    let weights = crate::device::weights();
    if !weights.supported_on(device) {
        return Err(format!("this device cannot store weights as {}; use --weights f32", weights.name()));
    }
    let config = Gpt2Config::preset("gpt2").map_err(|e| e.to_string())?;
    crate::device::check_model_as(&ModelConfig::Gpt2(config.clone()), weights)?;
    let AnyModel::Gpt2(gpt2) = random_model(ModelConfig::Gpt2(config), device, weights)? else {
        unreachable!("a GPT-2 config builds a GPT-2")
    };

    let (rate, prefill) = generation_rate(&*gpt2, &prompt, "gpt2-124m", weights, &args)?;

    let bert_tok = Tokenizer::builtin("bert-base-uncased").map_err(|e| e.to_string())?;
    let bert = BertConfig::preset("bert-base-uncased").map_err(|e| e.to_string())?;
    crate::device::check_model_as(&ModelConfig::Bert(bert.clone()), weights)?;
    let AnyModel::Bert(bert) = random_model(ModelConfig::Bert(bert), device, weights)? else {
        unreachable!("a BERT config builds a BERT")
    };
    let text = "Life is like a [MASK] of chocolates.";
    let latency = median_ms(args.runs, || {
        pollster::block_on(hearth_lm::fill_mask(&bert, &bert_tok, text, 5))
            .map(|_| ())
            .map_err(|e| e.to_string())
    })?;
    if args.json {
        print_json(&json!({
            "weights": weights.name(),
            "gpt2_124m_generate": { "new_tokens_per_s": rate, "prefill_ms": prefill, "prompt_tokens": prompt.len(), "new_tokens": args.new_tokens },
            "bert_base_fill_mask": { "latency_ms": latency, "tokens": 11 },
        }));
    } else {
        println!(
            "gpt2-124m generate ({} weights, KV cache, {} prompt + {} new): {rate:.1} tokens/s, prefill {prefill:.1} ms",
            weights.name(),
            prompt.len(),
            args.new_tokens
        );
        println!("bert-base fill-mask ({} weights, 11 tokens): {latency:.1} ms", weights.name());
    }
    Ok(())
}

/// The sentence of the BERT job as ModernBERT reads it: `[CLS]` 50281, GPT-2's byte-level BPE
/// ids of "Life is like a", `[MASK]` 50284, " of chocolates.", `[SEP]` 50282 (ModernBERT's
/// tokenizer is of GPT-2's family; bench_modernbert_torch.py feeds the same ids).
const MODERNBERT_IDS: [u32; 12] = [50281, 14662, 318, 588, 257, 50284, 286, 442, 4668, 689, 13, 50282];

/// ModernBERT-base-shaped fill-mask: the median milliseconds of the whole call (encoder, head at
/// the mask, top-5) after a warm-up, over at least five runs.
fn fill_mask_modernbert(args: &BenchArgs, device: &Device) -> CliResult {
    if args.runs == 0 {
        return Err("bench needs --runs ≥ 1".into());
    }
    let weights = crate::device::weights();
    if !weights.supported_on(device) {
        return Err(format!("this device cannot store weights as {}; use --weights f32", weights.name()));
    }
    let config = ModelConfig::ModernBert(Box::new(
        hearth_lm::ModernBertConfig::preset("ModernBERT-base").map_err(|e| e.to_string())?,
    ));
    crate::device::check_model_as(&config, weights)?;
    let model = random_model(config, device, weights)?;
    let encoder = model.masked().ok_or("ModernBERT is a masked LM")?;
    // Only to spell the predicted tokens.
    let tokenizer = Tokenizer::builtin("gpt2").map_err(|e| e.to_string())?;
    let latency = median_ms(args.runs, || {
        pollster::block_on(hearth_lm::infer::fill_mask::fill_mask_ids(
            encoder,
            &tokenizer,
            &MODERNBERT_IDS,
            50284,
            5,
        ))
        .map(|_| ())
        .map_err(|e| e.to_string())
    })?;
    if args.json {
        print_json(&json!({
            "weights": weights.name(),
            "modernbert_base_fill_mask": { "latency_ms": latency, "tokens": MODERNBERT_IDS.len() },
        }));
    } else {
        println!(
            "modernbert-base fill-mask ({} weights, {} tokens): {latency:.1} ms",
            weights.name(),
            MODERNBERT_IDS.len()
        );
    }
    Ok(())
}

/// The median milliseconds of `job` over at least five runs (`--runs` if more), after one
/// warm-up run.
fn median_ms(runs: usize, mut job: impl FnMut() -> Result<(), String>) -> Result<f64, String> {
    let mut latencies = Vec::new();
    for run in 0..=runs.max(5) {
        let start = Instant::now();
        job()?;
        if run > 0 {
            latencies.push(start.elapsed().as_secs_f64() * 1000.0);
        }
    }
    Ok(median(latencies))
}

/// Median new tokens/s after the first (decode) and prefill milliseconds of greedy generation
/// with the KV cache, over `--runs` runs after one warm-up.
fn generation_rate(
    model: &dyn CausalLm,
    prompt: &[u32],
    label: &str,
    weights: WeightDtype,
    args: &BenchArgs,
) -> Result<(f64, f64), String> {
    let mut rates = Vec::new();
    let mut prefills = Vec::new();
    for run in 0..=args.runs {
        let mut g = Generator::new(model, prompt, Sampling::ArgMax, 0).map_err(|e| e.to_string())?;
        let start = Instant::now();
        pollster::block_on(g.step()).map_err(|e| e.to_string())?;
        let prefill = start.elapsed().as_secs_f64();
        let decode_start = Instant::now();
        for _ in 1..args.new_tokens {
            pollster::block_on(g.step()).map_err(|e| e.to_string())?;
        }
        let rate = (args.new_tokens - 1) as f64 / decode_start.elapsed().as_secs_f64();
        if run > 0 {
            rates.push(rate);
            prefills.push(prefill * 1000.0);
        }
        if !args.json {
            let run = if run == 0 { "warm-up".to_string() } else { format!("run {run}") };
            eprintln!(
                "{label} ({}) generate {run}: prefill {:.1} ms, {rate:.1} tokens/s",
                weights.name(),
                prefill * 1000.0
            );
        }
    }
    Ok((median(rates), median(prefills)))
}

/// The prompt of the Llama-family jobs: six ids, as GPT-2's "Swimming at the beach is" (the
/// models are random, so which ids does not matter; bench_llama_torch.py uses the same).
const LLAMA_PROMPT: [u32; 6] = [1000, 2000, 3000, 4000, 5000, 6000];

/// Generation with SmolLM2-135M- and Qwen2.5-0.5B-shaped random weights (their configs'
/// shapes: `LlamaConfig::preset`), prompt [`LLAMA_PROMPT`], greedy with the KV cache.
fn generate_llama(args: &BenchArgs, device: &Device) -> CliResult {
    if args.runs == 0 || args.new_tokens < 2 {
        return Err("bench needs --runs ≥ 1 and --new-tokens ≥ 2".into());
    }
    let weights = crate::device::weights();
    if !weights.supported_on(device) {
        return Err(format!("this device cannot store weights as {}; use --weights f32", weights.name()));
    }
    let mut out = serde_json::Map::new();
    for name in ["SmolLM2-135M", "Qwen2.5-0.5B"] {
        let config = ModelConfig::Llama(Box::new(LlamaConfig::preset(name).map_err(|e| e.to_string())?));
        crate::device::check_model_as(&config, weights)?;
        let model = random_model(config, device, weights)?;
        let causal = model.causal().ok_or("a Llama-family model generates")?;
        let (rate, prefill) = generation_rate(causal, &LLAMA_PROMPT, name, weights, args)?;
        if !args.json {
            println!(
                "{name} generate ({} weights, KV cache, {} prompt + {} new): {rate:.1} tokens/s, prefill {prefill:.1} ms",
                weights.name(),
                LLAMA_PROMPT.len(),
                args.new_tokens
            );
        }
        out.insert(
            format!("{name}_generate"),
            json!({ "new_tokens_per_s": rate, "prefill_ms": prefill, "prompt_tokens": LLAMA_PROMPT.len(), "new_tokens": args.new_tokens }),
        );
    }
    if args.json {
        print_json(&json!({ "weights": weights.name(), "jobs": out }));
    }
    Ok(())
}

/// Training tokens/s of the Llama-style presets of the two GPT-2 jobs' shapes: the baby
/// (6 layers, 6 heads, 384 wide, characters, context 256, batch 8) and the 124M-sized (12/12/768,
/// GPT-2's tokenizer, context 128, batch 2); each with half as many key/value heads as query
/// heads (the page's default), SwiGLU at 8/3 width, tied embeddings, dropout 0.
fn train_llama(args: &BenchArgs, device: &Device) -> CliResult {
    let corpus = crate::train::read_corpus(&args.corpus)?;
    let mut baby = TrainConfig::nano(Arch::Llama);
    (baby.n_layer, baby.n_head, baby.n_embd) = (6, 6, 384);
    (baby.data.context, baby.data.stride, baby.batch_size) = (256, 256, 8);
    let mut big = TrainConfig::nano(Arch::Llama);
    big.tokenizer = TokenizerChoice::Gpt2;
    (big.n_layer, big.n_head, big.n_embd) = (12, 12, 768);
    (big.data.context, big.data.stride, big.batch_size) = (128, 128, 2);
    let mut out = serde_json::Map::new();
    for (name, mut config, steps) in
        [("llama_baby", baby, args.steps), ("llama_124m_shape", big, args.steps.min(5))]
    {
        config.dropout = 0.0;
        config.llama.n_kv_head = Some(config.n_head / 2);
        let tokens_per_step = (config.data.context * config.batch_size) as f64;
        let rate = train_rate(config, &corpus, args, steps, device)?;
        if !args.json {
            println!("train {name}: {rate:.0} tokens/s ({:.3} s/step)", tokens_per_step / rate);
        }
        out.insert(
            format!("train_{name}"),
            json!({ "tokens_per_s": rate, "seconds_per_step": tokens_per_step / rate }),
        );
    }
    if args.json {
        print_json(&serde_json::Value::Object(out));
    }
    Ok(())
}

/// Tokens/s of `steps` optimizer steps (after two warm-up steps) of one configuration.
fn train_rate(
    config: TrainConfig,
    corpus: &Corpus,
    args: &BenchArgs,
    steps: usize,
    device: &Device,
) -> Result<f64, String> {
    let mut config = config;
    config.steps = steps + 2;
    config.eval_every = usize::MAX;
    let trainer = Trainer::new_within(config, corpus, device, crate::device::budget(u64::MAX))
        .map_err(|e| e.to_string())?;
    timed_steps(trainer, args, steps)
}

/// Tokens/s of fine-tuning GPT-2 124M-sized random weights (as if loaded from a directory) with
/// `TrainConfig::fine_tune`'s recipe, context 128, batch 2, dropout 0 as bench_torch.py.
fn fine_tune_rate(corpus: &Corpus, args: &BenchArgs, steps: usize, device: &Device) -> Result<f64, String> {
    let model = gpt2_124m()?.init(device);
    let files =
        pollster::block_on(hearth_lm::io::hf::export_gpt2(&model, None)).map_err(|e| e.to_string())?;
    drop(model);
    let config_model = hearth_lm::ModelConfig::from_json(&files.config_json).map_err(|e| e.to_string())?;
    let mut config = TrainConfig::fine_tune(config_model, "random GPT-2 124M");
    (config.batch_size, config.dropout, config.steps, config.eval_every) = (2, 0.0, steps + 2, usize::MAX);
    let tokenizer = Tokenizer::builtin("gpt2").map_err(|e| e.to_string())?;
    let trainer =
        Trainer::fine_tune_within(config, &files.model_safetensors, tokenizer, corpus, device, u64::MAX)
            .map_err(|e| e.to_string())?;
    timed_steps(trainer, args, steps)
}

fn timed_steps(mut trainer: Trainer, args: &BenchArgs, steps: usize) -> Result<f64, String> {
    if let Some(threads) = args.batch_threads {
        trainer.set_threads(threads.into());
    }
    for _ in 0..2 {
        pollster::block_on(trainer.step()).map_err(|e| e.to_string())?;
    }
    let start = Instant::now();
    let mut tokens = 0;
    for _ in 0..steps {
        tokens += pollster::block_on(trainer.step()).map_err(|e| e.to_string())?.tokens;
    }
    Ok(tokens as f64 / start.elapsed().as_secs_f64())
}

fn train(args: &BenchArgs, device: &Device) -> CliResult {
    let corpus = crate::train::read_corpus(&args.corpus)?;
    let mut baby = TrainConfig::nano(Arch::Gpt2);
    (baby.n_layer, baby.n_head, baby.n_embd) = (6, 6, 384);
    baby.data.context = 256;
    baby.data.stride = 256;
    baby.batch_size = 8;
    baby.dropout = 0.0; // as bench_torch.py: dropout 0 everywhere
    let mut gpt2 = TrainConfig::nano(Arch::Gpt2);
    gpt2.tokenizer = TokenizerChoice::Gpt2;
    (gpt2.n_layer, gpt2.n_head, gpt2.n_embd) = (12, 12, 768);
    gpt2.data.context = 128;
    gpt2.data.stride = 128;
    gpt2.batch_size = 2;
    gpt2.dropout = 0.0;
    let baby_rate = train_rate(baby, &corpus, args, args.steps, device)?;
    if !args.json {
        println!("train baby GPT (6L/6H/384, ctx 256, batch 8, chars): {baby_rate:.0} tokens/s");
    }
    let gpt2_rate = train_rate(gpt2, &corpus, args, args.steps.min(5), device)?;
    if !args.json {
        println!(
            "train GPT-2 124M (ctx 128, batch 2): {gpt2_rate:.0} tokens/s ({:.2} s/step)",
            256.0 / gpt2_rate
        );
    }
    let tune_rate = fine_tune_rate(&corpus, args, args.steps.min(5), device)?;
    if args.json {
        print_json(&json!({
            "train_baby_gpt": { "tokens_per_s": baby_rate },
            "train_gpt2_124m": { "tokens_per_s": gpt2_rate, "seconds_per_step": 256.0 / gpt2_rate },
            "finetune_gpt2_124m": { "tokens_per_s": tune_rate, "seconds_per_step": 256.0 / tune_rate },
        }));
    } else {
        println!(
            "fine-tune GPT-2 124M weights (ctx 128, batch 2, lr 5e-5 linear): {tune_rate:.0} tokens/s ({:.2} s/step)",
            256.0 / tune_rate
        );
    }
    Ok(())
}

/// One timed view: computes and reads back, or says why not.
type Job<'a> = &'a dyn Fn() -> Result<(), String>;

/// Milliseconds of each view of the inside of GPT-2 124M (random weights) on a 64-token text,
/// read back included: the median of `--runs` after one warm-up.
fn inside(args: &BenchArgs, device: &Device) -> CliResult {
    let gpt2 = gpt2_124m()?.init(device);
    let model = hearth_lm::AnyModel::Gpt2(Box::new(gpt2));
    let hearth_lm::AnyModel::Gpt2(gpt2) = &model else { unreachable!() };
    let ids: Vec<u32> = (0..64).map(|i| (i * 677 % 50000) as u32).collect();
    let frequent: Vec<u32> = (256..556).collect();
    let runs = args.runs.max(1);
    let time = |f: Job| -> Result<f64, String> {
        let mut ms = Vec::new();
        for run in 0..=runs {
            let start = Instant::now();
            f()?;
            if run > 0 {
                ms.push(start.elapsed().as_secs_f64() * 1000.0);
            }
        }
        Ok(median(ms))
    };
    let e = |e: hearth_lm::Error| e.to_string();
    let jobs: [(&str, Job); 6] = [
        ("attention_one_layer", &|| {
            pollster::block_on(inside::attention_layer(&model, &ids, 11)).map(drop).map_err(e)
        }),
        ("attention_all_layers", &|| {
            pollster::block_on(inside::attentions(&model, &ids)).map(drop).map_err(e)
        }),
        ("logit_lens_top5", &|| pollster::block_on(inside::logit_lens(gpt2, &ids, 5)).map(drop).map_err(e)),
        ("surprisal_top5", &|| pollster::block_on(surprisal::surprisal(gpt2, &ids, 5)).map(drop).map_err(e)),
        ("nearest_10", &|| pollster::block_on(embeddings::nearest(&model, 1000, 10)).map(drop).map_err(e)),
        ("projection_300", &|| {
            pollster::block_on(embeddings::projection(&model, &frequent)).map(drop).map_err(e)
        }),
    ];
    let mut out = serde_json::Map::new();
    for (name, job) in jobs {
        let ms = time(job)?;
        if !args.json {
            println!("gpt2-124m {name} (64 tokens): {ms:.1} ms");
        }
        out.insert(name.to_string(), json!({ "ms": ms }));
    }
    if args.json {
        print_json(&serde_json::Value::Object(out));
    }
    Ok(())
}

/// GPT-2 124M's config (in f32, as training and the views inside use it), refused up front
/// where the GPU cannot bind its token embedding.
fn gpt2_124m() -> Result<Gpt2Config, String> {
    let config = Gpt2Config::preset("gpt2").map_err(|e| e.to_string())?;
    crate::device::check_model_as(&ModelConfig::Gpt2(config.clone()), WeightDtype::F32)?;
    Ok(config)
}

/// Random weights for `config` on `device`, matrices stored as `weights`. f16 goes the way a
/// loaded model does (built on the CPU, written as safetensors, loaded as f16): initialised on
/// the device, each matrix would first be allocated in f32, which a GPU that binds only the
/// f16 embedding refuses (lavapipe binds 128 MiB; GPT-2's embedding is 147 MiB as f32).
fn random_model(config: ModelConfig, device: &Device, weights: WeightDtype) -> Result<AnyModel, String> {
    let e = |e: hearth_lm::Error| e.to_string();
    match (weights, config) {
        (WeightDtype::F32, ModelConfig::Gpt2(c)) => Ok(AnyModel::Gpt2(Box::new(c.init(device)))),
        (WeightDtype::F32, ModelConfig::Bert(c)) => Ok(AnyModel::Bert(Box::new(c.init(device)))),
        (WeightDtype::F32, ModelConfig::Llama(c)) => {
            Ok(AnyModel::Llama(Box::new(c.init(device).map_err(e)?)))
        }
        (WeightDtype::F32, ModelConfig::ModernBert(c)) => {
            Ok(AnyModel::ModernBert(Box::new(c.init(device).map_err(e)?)))
        }
        (weights, config) => {
            let cpu = Device::flex();
            let model = match config {
                ModelConfig::Gpt2(c) => AnyModel::Gpt2(Box::new(c.init(&cpu))),
                ModelConfig::Bert(c) => AnyModel::Bert(Box::new(c.init(&cpu))),
                ModelConfig::Llama(c) => AnyModel::Llama(Box::new(c.init(&cpu).map_err(e)?)),
                ModelConfig::ModernBert(c) => AnyModel::ModernBert(Box::new(c.init(&cpu).map_err(e)?)),
            };
            let files = pollster::block_on(export_model(&model, None)).map_err(e)?;
            load_model_as(&files.config_json, &files.model_safetensors, device, weights).map_err(e)
        }
    }
}
