//! Mutation fuzzing of every parser that reads what a user brings: safetensors weights, model
//! configs, tokenizer files, and a training checkpoint's state and optimizer moments. Each
//! target gets 10,000 inputs made from a valid file by random byte edits (flips, interesting
//! bytes, insertions, deletions, truncations, duplicated chunks, numbers blown up to absurd
//! sizes), seeded so a failure reproduces. Every input must give `Ok` or `Err` — a panic fails
//! the test with the input that caused it. Allocation is bounded by construction — a config must
//! fit its weights file (`io::hf`), a run its memory budget (`model::memory`), and safetensors
//! lengths are checked against the file by the parser — and this binary proves it: its global
//! allocator refuses anything past `BUDGET` in all (the inputs are kilobytes), and a refused
//! allocation aborts the test run with "memory allocation of N bytes failed".

mod common;

use std::alloc::System;
use std::panic::{catch_unwind, AssertUnwindSafe};

use burn::tensor::Device;
use common::*;
use hearth_lm::io::checkpoint::Checkpoint;
use hearth_lm::io::hf::export_bert;
use hearth_lm::io::streamed::ModelStream;
use hearth_lm::io::weights::SafetensorsFile;
use hearth_lm::model::precision::WeightDtype;
use hearth_lm::train::documents_of;
use hearth_lm::train::{build_tokenizer, Arch, Corpus, TokenizerChoice, TrainConfig, Trainer};
use hearth_lm::{load_model, BertConfig, ModelConfig, Rng, Tokenizer};

const CASES: usize = 10_000;

/// Everything this binary holds at once, every fuzz test together: the seed files and models
/// are a few megabytes, so an input that sizes a buffer from a forged length or shape hits it.
const BUDGET: usize = 1 << 30;

#[global_allocator]
static ALLOCATOR: cap::Cap<System> = cap::Cap::new(System, BUDGET);

#[test]
fn the_allocation_budget_is_enforced() {
    assert_eq!(ALLOCATOR.limit(), BUDGET);
    // A fallible reservation past the budget is refused (an infallible one would abort).
    let mut past = Vec::<u8>::new();
    assert!(past.try_reserve_exact(BUDGET + 1).is_err(), "the cap let {BUDGET} + 1 bytes through");
    let mut within = Vec::<u8>::new();
    assert!(within.try_reserve_exact(1 << 20).is_ok());
}

/// One random edit of `input`.
fn mutate(input: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = out.len().max(1);
        let at = rng.below(len).min(out.len());
        // A position inside the data, for the edits that change a byte in place.
        let inside = at.min(out.len().saturating_sub(1));
        match rng.below(8) {
            0 if !out.is_empty() => out[inside] ^= 1 << rng.below(8),
            1 if !out.is_empty() => {
                const INTERESTING: [u8; 10] = [0, 0xff, 0x7f, 0x80, b'9', b'-', b'{', b'"', b'.', b'e'];
                out[inside] = INTERESTING[rng.below(INTERESTING.len())];
            }
            2 => {
                let bytes: Vec<u8> = (0..1 + rng.below(8)).map(|_| rng.below(256) as u8).collect();
                out.splice(at..at, bytes);
            }
            3 => {
                let end = (at + 1 + rng.below(16)).min(out.len());
                out.drain(at..end);
            }
            4 => out.truncate(at),
            5 => {
                let end = (at + 1 + rng.below(64)).min(out.len());
                let chunk = out[at..end].to_vec();
                out.splice(at..at, chunk);
            }
            _ => {
                // A digit run becomes an absurd number: sizes, steps, shapes, offsets.
                if let Some(start) = out.iter().skip(at).position(u8::is_ascii_digit).map(|p| p + at) {
                    let end = out[start..]
                        .iter()
                        .position(|b| !b.is_ascii_digit())
                        .map_or(out.len(), |p| p + start);
                    const HUGE: [&[u8]; 4] =
                        [b"18446744073709551615", b"1000000000", b"0", b"99999999999999999999999"];
                    out.splice(start..end, HUGE[rng.below(HUGE.len())].iter().copied());
                }
            }
        }
    }
    out
}

/// Runs `target` on `CASES` mutations of `seed_input`; panics name the input.
fn fuzz(name: &str, seed: u64, seed_input: &[u8], mut target: impl FnMut(&[u8])) {
    let mut rng = Rng::new(seed);
    let mut ok_inputs = 0usize;
    for case in 0..CASES {
        let input = mutate(seed_input, &mut rng);
        let result = catch_unwind(AssertUnwindSafe(|| target(&input)));
        if result.is_err() {
            let shown = String::from_utf8_lossy(&input[..input.len().min(400)]).into_owned();
            panic!("{name}: case {case} (seed {seed}) panicked; input starts {shown:?}");
        }
        ok_inputs += 1;
    }
    assert_eq!(ok_inputs, CASES);
}

/// The byte-level GPT-2 fixture's `config.json` and `model.safetensors`: the seed weights.
fn gpt2_files() -> (Vec<u8>, Vec<u8>) {
    let dir = case("gpt2-bytes-tiny");
    (read(dir.join("config.json")), read(dir.join("model.safetensors")))
}

#[test]
fn safetensors_loader_survives_mutated_weights() {
    let (config, weights) = gpt2_files();
    let device = Device::flex();
    fuzz("safetensors", 1, &weights, |bytes| {
        if let Ok(file) = SafetensorsFile::parse(bytes) {
            let _ = file.total_elements();
            let _ = file.all_f32();
        }
        let _ = load_model(&config, bytes, &device);
    });
}

#[test]
fn config_parsing_survives_mutated_configs() {
    let (gpt2_config, gpt2_weights) = gpt2_files();
    let bert = BertConfig::tiny();
    let bert_model = bert.init(&Device::flex());
    let bert_weights = block_on(export_bert(&bert_model, None)).unwrap().model_safetensors;
    let device = Device::flex();
    let modern = case("modernbert-biased");
    let (modern_config, modern_weights) =
        (read(modern.join("config.json")), read(modern.join("model.safetensors")));
    for (seed, config, weights) in [
        (2, gpt2_config, gpt2_weights),
        (3, bert.to_json().into_bytes(), bert_weights),
        (4, modern_config, modern_weights),
    ] {
        fuzz("config.json", seed, &config, |bytes| {
            if let Ok(parsed) = ModelConfig::from_json(bytes) {
                let _ = parsed.parameter_count();
                let _ = parsed.training_footprint(usize::MAX, usize::MAX).total();
                let _ = parsed.largest_tensor();
            }
            // A config that parses must still fit its weights before anything is allocated.
            let _ = load_model(bytes, &weights, &device);
        });
    }
}

#[test]
fn tokenizer_loading_survives_mutated_tokenizer_files() {
    let corpus =
        Corpus::from_bytes(b"First Citizen:\nBefore we proceed any further, hear me speak.\n").unwrap();
    for (seed, choice) in [(4, TokenizerChoice::Chars), (5, TokenizerChoice::Bytes)] {
        let json = build_tokenizer(&choice, &corpus, true).unwrap().to_json().unwrap();
        fuzz("tokenizer.json", seed, json.as_bytes(), |bytes| {
            if let Ok(tokenizer) = Tokenizer::from_bytes(bytes) {
                let _ = tokenizer.id_bound();
                if let Ok(ids) = tokenizer.encode_ids("Before we proceed, [MASK] me.") {
                    let _ = tokenizer.decode(&ids);
                }
            }
        });
    }
}

fn tiny_run() -> (Checkpoint, Corpus) {
    let corpus =
        Corpus::from_bytes("To be, or not to be, that is the question.\n".repeat(30).as_bytes()).unwrap();
    let mut c = TrainConfig::nano(Arch::Gpt2);
    (c.n_layer, c.n_head, c.n_embd) = (1, 2, 8);
    (c.data.context, c.data.stride, c.batch_size, c.steps) = (8, 8, 2, 4);
    (c.eval_batches, c.sample_tokens) = (1, 2);
    let mut trainer = Trainer::new(c, &corpus, &Device::flex()).unwrap();
    block_on(trainer.step()).unwrap();
    block_on(trainer.evaluate()).unwrap();
    (block_on(trainer.checkpoint()).unwrap(), corpus)
}

fn replaced(checkpoint: &Checkpoint, name: &str, bytes: &[u8]) -> Checkpoint {
    let files = checkpoint
        .files
        .iter()
        .map(|(n, b)| (n.clone(), if n == name { bytes.to_vec() } else { b.clone() }))
        .collect();
    Checkpoint { files }
}

#[test]
fn resume_survives_mutated_trainer_state_and_optimizer_moments() {
    let (checkpoint, corpus) = tiny_run();
    let device = Device::flex();
    for (seed, name) in [(6, "trainer_state.json"), (7, "optimizer.safetensors")] {
        let original = checkpoint.get(name).unwrap().to_vec();
        fuzz(name, seed, &original, |bytes| {
            let _ = Trainer::resume(&replaced(&checkpoint, name, bytes), &corpus, &device);
        });
    }
}

/// The weights arriving in chunks, as the browser streams them: every mutated file, cut at a
/// random chunk size, gives a model or an error.
#[test]
fn streamed_safetensors_survive_mutated_weights() {
    let (config, weights) = gpt2_files();
    let device = Device::flex();
    let mut chunks = Rng::new(11);
    fuzz("streamed safetensors", 10, &weights, |bytes| {
        let chunk = 1 + chunks.below(4096);
        let Ok(mut loading) = ModelStream::new(&config, &device, WeightDtype::F32, 1 << 28, 1 << 26) else {
            panic!("the fixture's config is valid");
        };
        let pushed = bytes.chunks(chunk).try_for_each(|part| loading.push(part));
        if pushed.is_ok() {
            let _ = loading.finish();
        }
    });
}

/// Every refusal of a corpus file quotes a bounded part of it, whatever the file holds.
fn bounded_message(result: Result<Vec<String>, hearth_lm::Error>) {
    if let Err(e) = result {
        let message = e.to_string();
        assert!(message.len() < 4000, "a {}-byte message", message.len());
    }
}

#[test]
fn document_parsers_survive_mutated_jsonl_and_csv() {
    let jsonl = b"{\"text\": \"First Citizen: before we proceed\", \"id\": 1}\n{\"id\": 2, \"text\": \"hear me \\\"speak\\\"\", \"tags\": [1, {\"a\": null}]}\n\n{\"text\": \"x\"}\n";
    fuzz("jsonl", 12, jsonl, |bytes| bounded_message(documents_of("d.jsonl", bytes, None)));
    let csv = b"id,text,notes\r\n1,plain,\"a, b\"\n2,\"two\nlines \"\"q\"\"\",\n\n3,last,z\n";
    fuzz("csv", 13, csv, |bytes| bounded_message(documents_of("d.csv", bytes, Some("text"))));
}

/// A JSONL line is read keeping only the text field: a line of 32 million small numbers (64 MB)
/// cost 16 × that as a `serde_json::Value` (a 32-byte value per 2-byte number: 1 GiB and the
/// vector's doubling), over this binary's whole budget, before the field was looked up.
#[test]
fn a_jsonl_line_costs_its_text_field_not_a_parsed_copy_of_everything() {
    let mut line = String::from("{\"text\": \"kept\", \"embedding\": [");
    line.push_str(&"1,".repeat(32_000_000));
    line.push_str("1]}\n");
    let docs = documents_of("big.jsonl", line.as_bytes(), None).unwrap();
    assert_eq!(docs, ["kept"]);
}

/// A CSV file is read a row at a time keeping the chosen column: its other columns are never
/// copied, and a file of bad rows keeps five messages, not one per row.
#[test]
fn a_csv_costs_its_chosen_column_and_bad_rows_cost_nothing() {
    // 6 million rows of 9 bytes (54 MB): every field of every row as a `String` in a `Vec` per
    // row was ~20 × the text, over this binary's budget.
    let mut csv = String::from("text,n\n");
    csv.push_str(&"t,123456\n".repeat(6_000_000));
    let docs = documents_of("big.csv", csv.as_bytes(), None).unwrap();
    assert_eq!(docs.len(), 6_000_000);
    assert!(docs.iter().all(|d| d == "t"));
    drop(docs);
    // Rows with a field too many: counted, five named.
    let mut bad = String::from("text\n");
    bad.push_str(&"a,b\n".repeat(3_000_000));
    let e = documents_of("bad.csv", bad.as_bytes(), None).unwrap_err().to_string();
    assert!(e.starts_with("bad.csv: 3000000 bad CSV rows: line 2: 2 fields"), "{}", &e[..e.len().min(300)]);
    assert!(e.contains("and 2999995 more"), "{}", &e[..e.len().min(300)]);
}

/// PyTorch's checkpoint format: files torch wrote (`tests/fixtures/make_torch_cases.py`) read
/// with the values torch gives, and 10,000 mutations of each read or refused within the budget.
#[test]
fn torch_checkpoints_read_as_torch_reads_them_and_survive_mutation() {
    use hearth_lm::io::torch::{from_torch_bytes, to_torch_bytes, PtValue};
    let dir = fixtures().join("torch");
    let exp: serde_json::Value = serde_json::from_slice(&read(dir.join("expected.json"))).unwrap();
    let adamw = read(dir.join("adamw_state.pt"));
    let state = from_torch_bytes(&adamw).unwrap();
    for (i, want) in [0, 1].into_iter().zip(exp["adamw"]["exp_avg"].as_array().unwrap()) {
        let PtValue::Dict(states) = state.get("state").unwrap() else { panic!("state is a dict") };
        let (key, param) = &states[i];
        assert_eq!(key, &PtValue::Int(i as i64));
        let PtValue::Tensor(m) = param.get("exp_avg").unwrap() else { panic!("exp_avg is a tensor") };
        let want: Vec<f32> = floats(want).into_iter().map(|x| x as f32).collect();
        assert_eq!(*m.data, want);
        assert_eq!(
            m.shape,
            exp["adamw"]["shapes"][i]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap() as usize)
                .collect::<Vec<_>>()
        );
        let PtValue::Tensor(step) = param.get("step").unwrap() else { panic!("step is a tensor") };
        assert_eq!((step.shape.len(), step.data[0]), (0, 1.0));
    }
    let PtValue::List(groups) = state.get("param_groups").unwrap() else { panic!("param_groups is a list") };
    assert_eq!(groups[0].get("weight_decay"), Some(&PtValue::Float(0.1)));
    assert_eq!(groups[1].get("params"), Some(&PtValue::List(vec![PtValue::Int(1)])));
    assert_eq!(
        groups[0].get("betas"),
        Some(&PtValue::Tuple(vec![PtValue::Float(0.9), PtValue::Float(0.999)]))
    );
    let sched = from_torch_bytes(&read(dir.join("lambdalr_state.pt"))).unwrap();
    assert_eq!(sched.get("last_epoch"), Some(&PtValue::Int(3)));
    assert_eq!(sched.get("lr_lambdas"), Some(&PtValue::List(vec![PtValue::None, PtValue::None])));
    // What torch wrote, written again by us, reads back the same.
    assert_eq!(from_torch_bytes(&to_torch_bytes(&state, "optimizer").unwrap()).unwrap(), state);
    fuzz("adamw_state.pt", 5, &adamw, |bytes| {
        if let Err(e) = from_torch_bytes(bytes) {
            assert!(e.to_string().len() < 400, "{e}");
        }
    });
}

/// Coming back from Trainer (`io::handoff::checkpoint_from_trainer`) with a mutated
/// `handoff.json` or Trainer `trainer_state.json` (the fixture of `make_handoff_case.sh`), and a
/// plain Trainer checkpoint's mutated `optimizer.pt` or `trainer_state.json` taken over by a
/// fine-tune (`Trainer::adopt_trainer_checkpoint`): a checkpoint or one clear refusal, never a
/// panic or an allocation past the budget.
#[test]
fn coming_back_from_trainer_survives_mutated_state_files() {
    use hearth_lm::io::handoff::{checkpoint_from_trainer, TrainerCheckpoint};
    let dir = fixtures().join("handoff").join("gpt2");
    let file = |name: &str| read(dir.join(name));
    let handed_off = Checkpoint {
        files: ["config.json", "tokenizer.json"]
            .iter()
            .map(|n| (n.to_string(), file(&format!("checkpoint-4/{n}"))))
            .collect(),
    };
    let (handoff, hearth_state, state) =
        (file("handoff.json"), file("hearth_state.json"), file("checkpoint-6/trainer_state.json"));
    let trainer = |state: &[u8]| Checkpoint {
        files: vec![
            ("model.safetensors".into(), file("checkpoint-6/model.safetensors")),
            ("optimizer.pt".into(), file("checkpoint-6/optimizer.pt")),
            ("trainer_state.json".into(), state.to_vec()),
        ],
    };
    let good = trainer(&state);
    let come_back = |handoff_json: &[u8], checkpoint: &Checkpoint| {
        let t = TrainerCheckpoint {
            handoff_json,
            hearth_state: &hearth_state,
            losses: None,
            checkpoint,
            handed_off: &handed_off,
        };
        if let Err(e) = checkpoint_from_trainer(t) {
            assert!(e.to_string().len() < 600, "{e}");
        }
    };
    fuzz("handoff.json", 11, &handoff, |bytes| come_back(bytes, &good));
    fuzz("trainer_state.json", 12, &state, |bytes| come_back(&handoff, &trainer(bytes)));

    // The same files as a plain Trainer checkpoint: a fine-tune of its weights takes them over.
    let run: hearth_lm::io::checkpoint::TrainerState = serde_json::from_slice(&hearth_state).unwrap();
    let mut config = run.config.clone();
    config.tokenizer = TokenizerChoice::Pretrained;
    config.steps = 10;
    let model = ModelConfig::from_json(&file("checkpoint-6/config.json")).unwrap();
    config.init_from =
        Some(hearth_lm::train::InitFrom { source: "checkpoint-6".into(), model, files: Default::default() });
    let text = read(fixtures().join("../../web/corpus/tiny_shakespeare_like.txt"));
    let corpus = Corpus::from_bytes(&text[..20_000]).unwrap();
    let tokenizer = Tokenizer::from_bytes(&file("checkpoint-4/tokenizer.json")).unwrap();
    let weights = file("checkpoint-6/model.safetensors");
    let mut fine_tune =
        Trainer::fine_tune_within(config, &weights, tokenizer, &corpus, &Device::flex(), u64::MAX).unwrap();
    let optimizer = file("checkpoint-6/optimizer.pt");
    fine_tune.adopt_trainer_checkpoint(&optimizer, &state).unwrap();
    let mut adopt = |optimizer: &[u8], state: &[u8]| {
        if let Err(e) = fine_tune.adopt_trainer_checkpoint(optimizer, state) {
            assert!(e.to_string().len() < 600, "{e}");
        }
    };
    fuzz("optimizer.pt (plain)", 13, &optimizer, |bytes| adopt(bytes, &state));
    fuzz("trainer_state.json (plain)", 14, &state, |bytes| adopt(&optimizer, bytes));
}
