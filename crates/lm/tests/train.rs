//! Pretraining behaviour: exact resume, the overfit check, export round trip, clear errors.

mod common;

use burn::tensor::Device;
use common::*;
use hearth_lm::io::checkpoint::{export_model, Checkpoint};
use hearth_lm::tensor::{ids_tensor, read_f32};
use hearth_lm::train::{encode_corpus, Corpus, TokenizerChoice};
use hearth_lm::train::{Arch, TrainConfig, Trainer};
use hearth_lm::AnyModel;
use hearth_lm::{generate, load_bert, load_gpt2, BertConfig, Gpt2Config, Sampling};

/// Burn's random draws (initialisation, dropout) come from one process-wide generator; tests
/// that train take turns so each run's seeds give each run's draws.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn shakespeare(chars: usize) -> Corpus {
    let text =
        String::from_utf8(read(fixtures().join("../../web/corpus/tiny_shakespeare_like.txt"))).unwrap();
    let end = text.char_indices().nth(chars).map_or(text.len(), |(i, _)| i);
    Corpus::from_bytes(&text.as_bytes()[..end]).unwrap()
}

fn small(arch: Arch, steps: usize) -> TrainConfig {
    let mut c = TrainConfig::nano(arch);
    (c.n_layer, c.n_head, c.n_embd) = (2, 2, 32);
    c.data.context = 32;
    c.data.stride = 32;
    c.batch_size = 4;
    c.steps = steps;
    c.warmup = 5;
    c.dropout = 0.1;
    c.eval_every = 1000;
    c.eval_batches = 2;
    c.sample_tokens = 8;
    c
}

fn weights(trainer: &Trainer) -> Vec<u8> {
    block_on(export_model(trainer)).unwrap().model_safetensors
}

fn run(trainer: &mut Trainer, steps: usize) {
    for _ in 0..steps {
        block_on(trainer.step()).unwrap();
    }
}

/// 10 steps + save + resume + 10 steps gives the same weights as 20 steps (dropout on, so the
/// dropout masks must resume too).
#[test]
fn resume_continues_exactly() {
    let _serial = serial();
    for (arch, dropout) in [(Arch::Gpt2, 0.0), (Arch::Gpt2, 0.1), (Arch::Bert, 0.1)] {
        let corpus = shakespeare(20_000);
        let device = Device::flex();
        let mut config = small(arch, 20);
        config.dropout = dropout;
        let mut straight = Trainer::new(config.clone(), &corpus, &device).unwrap();
        run(&mut straight, 20);

        let mut first = Trainer::new(config, &corpus, &device).unwrap();
        run(&mut first, 10);
        let checkpoint = block_on(first.checkpoint()).unwrap();
        drop(first);
        let mut resumed = Trainer::resume(&checkpoint, &corpus, &device).unwrap();
        assert_eq!(resumed.step_count(), 10);
        run(&mut resumed, 10);
        assert!(resumed.is_done());
        assert!(
            weights(&resumed) == weights(&straight),
            "{arch:?} dropout {dropout}: resumed weights differ"
        );
        assert_eq!(resumed.tokens_seen(), straight.tokens_seen());
    }
}

/// A small GPT trained for many epochs on a small text memorises it: train loss near zero,
/// validation loss rising, and a training prefix recites the training text.
#[test]
fn small_gpt_overfits_and_recites() {
    let _serial = serial();
    let corpus = shakespeare(500);
    let mut c = small(Arch::Gpt2, 300);
    (c.n_layer, c.n_head, c.n_embd) = (2, 4, 128);
    c.data.stride = 1;
    c.dropout = 0.0;
    c.batch_size = 16;
    c.lr = 3e-3;
    c.min_lr = 3e-4;
    c.warmup = 20;
    c.adamw.weight_decay = 0.0;
    c.eval_every = 100;
    c.eval_batches = 4;
    let device = Device::flex();
    let mut trainer = Trainer::new(c, &corpus, &device).unwrap();
    while !trainer.is_done() {
        block_on(trainer.step()).unwrap();
        if trainer.eval_due() {
            block_on(trainer.evaluate()).unwrap();
        }
    }
    let history = trainer.history();
    let last = history.last().unwrap();
    // Not exactly zero: the first positions of every window have almost no context.
    assert!(last.train_loss < 0.2, "train loss {} should be near zero", last.train_loss);
    let best_val = history.iter().filter_map(|h| h.val_loss).fold(f64::INFINITY, f64::min);
    let final_val = last.val_loss.unwrap();
    assert!(final_val > best_val + 0.2, "val loss should rise: best {best_val}, final {final_val}");

    let AnyModel::Gpt2(model) = trainer.model() else { unreachable!() };
    let model = burn::module::Module::valid(model.as_ref());
    let ids = encode_corpus(trainer.tokenizer(), &corpus).unwrap();
    let continuation = block_on(generate(&model, &ids[..16], 60, Sampling::ArgMax, 0)).unwrap();
    assert_eq!(
        trainer.tokenizer().decode(&continuation).unwrap(),
        trainer.tokenizer().decode(&ids[16..76]).unwrap(),
        "greedy continuation of a training prefix should recite the text"
    );
}

/// The exported Hugging Face files reload to the same logits, for each architecture.
#[test]
fn exported_model_reloads_with_identical_logits() {
    let _serial = serial();
    let corpus = shakespeare(20_000);
    let device = Device::flex();
    for arch in [Arch::Gpt2, Arch::Bert, Arch::ModernBert] {
        let mut trainer = Trainer::new(small(arch, 5), &corpus, &device).unwrap();
        run(&mut trainer, 5);
        let files = block_on(export_model(&trainer)).unwrap();
        let ids: Vec<u32> = (0..10).collect();
        let (before, after) = match trainer.model() {
            AnyModel::Gpt2(m) => {
                let m = burn::module::Module::valid(m.as_ref());
                let c = Gpt2Config::from_json(&files.config_json).unwrap();
                let reloaded = load_gpt2(&c, &files.model_safetensors, &device).unwrap();
                let x = || ids_tensor(&ids, &device);
                (
                    block_on(read_f32(m.forward(x(), None))).unwrap(),
                    block_on(read_f32(reloaded.forward(x(), None))).unwrap(),
                )
            }
            AnyModel::Bert(m) => {
                let m = burn::module::Module::valid(m.as_ref());
                let c = BertConfig::from_json(&files.config_json).unwrap();
                let reloaded = load_bert(&c, &files.model_safetensors, &device).unwrap();
                let x = || ids_tensor(&ids, &device);
                let z = || burn::tensor::Tensor::<2, burn::tensor::Int>::zeros([1, 10], &device);
                let o = || burn::tensor::Tensor::<2, burn::tensor::Int>::ones([1, 10], &device);
                (
                    block_on(read_f32(m.forward(x(), z(), o()))).unwrap(),
                    block_on(read_f32(reloaded.forward(x(), z(), o()))).unwrap(),
                )
            }
            AnyModel::ModernBert(m) => {
                let m = burn::module::Module::valid(m.as_ref());
                let reloaded =
                    hearth_lm::load_model(&files.config_json, &files.model_safetensors, &device).unwrap();
                let reloaded = reloaded.masked().expect("a masked LM");
                let x = || ids_tensor(&ids, &device);
                let o = || burn::tensor::Tensor::<2, burn::tensor::Int>::ones([1, 10], &device);
                (
                    block_on(read_f32(m.forward(x(), o()))).unwrap(),
                    block_on(read_f32(reloaded.mlm_head(reloaded.hidden(x(), o())))).unwrap(),
                )
            }
            AnyModel::Llama(_) => unreachable!("the runs here are GPT-2, BERT and ModernBERT"),
        };
        assert_eq!(before, after, "{arch:?}");
        assert!(files.tokenizer_json.is_some());
    }
}

#[test]
fn loss_falls_with_every_tokenizer() {
    let _serial = serial();
    let corpus = shakespeare(30_000);
    let device = Device::flex();
    for (arch, tokenizer) in [
        (Arch::Gpt2, TokenizerChoice::Bytes),
        (Arch::Gpt2, TokenizerChoice::Gpt2),
        (Arch::Gpt2, TokenizerChoice::Bpe(300)),
        (Arch::Bert, TokenizerChoice::BertBaseUncased),
        (Arch::Bert, TokenizerChoice::Chars),
    ] {
        let mut c = small(arch, 30);
        c.tokenizer = tokenizer.clone();
        c.lr = 3e-3;
        let mut trainer = Trainer::new(c, &corpus, &device).unwrap();
        let first = block_on(trainer.evaluate()).unwrap().train_loss;
        run(&mut trainer, 30);
        let last = block_on(trainer.evaluate()).unwrap();
        assert!(last.train_loss < first, "{arch:?}/{tokenizer}: loss {first} -> {}", last.train_loss);
        assert!(!last.sample.is_empty());
    }
}

#[test]
fn bad_corpora_and_checkpoints_are_clear_errors() {
    let _serial = serial();
    let device = Device::flex();
    assert!(Corpus::from_bytes(b"").is_err());
    assert!(Corpus::from_bytes(&[0x89, b'P', b'N', b'G', 0, 0, 1, 2]).is_err());
    let tiny = Corpus::from_bytes(b"too short for a window").unwrap();
    let err = Trainer::new(small(Arch::Gpt2, 5), &tiny, &device).err().unwrap().to_string();
    assert!(err.contains("tokens"), "{err}");

    let corpus = shakespeare(20_000);
    let mut trainer = Trainer::new(small(Arch::Gpt2, 5), &corpus, &device).unwrap();
    run(&mut trainer, 2);
    let good = block_on(trainer.checkpoint()).unwrap();
    let without =
        |name: &str| Checkpoint { files: good.files.iter().filter(|(n, _)| n != name).cloned().collect() };
    let replaced = |name: &str, bytes: &[u8]| Checkpoint {
        files: good
            .files
            .iter()
            .map(|(n, b)| (n.clone(), if n == name { bytes.to_vec() } else { b.clone() }))
            .collect(),
    };
    let err =
        |c: &Checkpoint, corpus: &Corpus| Trainer::resume(c, corpus, &device).err().unwrap().to_string();
    assert!(err(&without("model.safetensors"), &corpus).contains("model.safetensors"));
    assert!(err(&replaced("model.safetensors", b"junk"), &corpus).contains("safetensors"));
    assert!(err(&replaced("trainer_state.json", b"{"), &corpus).contains("trainer_state.json"));
    assert!(err(&good, &shakespeare(19_000)).contains("corpus"));
    assert!(Trainer::resume(&good, &corpus, &device).is_ok());
}

#[test]
fn absurd_settings_are_rejected() {
    let _serial = serial();
    let corpus = shakespeare(20_000);
    let device = Device::flex();
    type Mutation = Box<dyn Fn(&mut TrainConfig)>;
    let cases: Vec<(&str, Mutation)> = vec![
        ("lr", Box::new(|c| c.lr = -1.0)),
        ("batch-size", Box::new(|c| c.batch_size = 0)),
        ("dropout", Box::new(|c| c.dropout = 1.5)),
        ("n-head", Box::new(|c| c.n_head = 3)),
        ("beta2", Box::new(|c| c.adamw.beta2 = 1.0)),
    ];
    for (needle, mutate) in cases {
        let mut c = small(Arch::Gpt2, 5);
        mutate(&mut c);
        let err = Trainer::new(c, &corpus, &device).err().unwrap().to_string();
        assert!(err.contains(needle), "{needle}: {err}");
    }
}

/// A NaN loss stops the step with a message and changes nothing: the step count, the weights
/// and the checkpoint stay those of the last good step.
#[test]
fn nan_loss_stops_without_losing_state() {
    let _serial = serial();
    let corpus = shakespeare(20_000);
    let device = Device::flex();
    let mut trainer = Trainer::new(small(Arch::Gpt2, 10), &corpus, &device).unwrap();
    run(&mut trainer, 2);
    let good = block_on(trainer.checkpoint()).unwrap();
    // Poison one weight of the saved model, as a diverged update would.
    let st = hearth_lm::io::weights::SafetensorsFile::parse(good.get("model.safetensors").unwrap()).unwrap();
    let mut tensors = st.all_f32().unwrap();
    tensors.iter_mut().find(|t| t.0 == "transformer.ln_f.weight").unwrap().2[0] = f32::NAN;
    let poisoned = hearth_lm::io::weights::to_safetensors(&tensors).unwrap();
    let files = good
        .files
        .iter()
        .map(|(n, b)| (n.clone(), if n == "model.safetensors" { poisoned.clone() } else { b.clone() }))
        .collect();
    let mut broken = Trainer::resume(&Checkpoint { files }, &corpus, &device).unwrap();
    let before = weights(&broken);
    let err = block_on(broken.step()).unwrap_err().to_string();
    assert!(err.contains("diverged") && err.contains("NaN"), "{err}");
    assert_eq!(broken.step_count(), 2);
    assert!(weights(&broken) == before, "a failed step must not change the weights");
}

/// Every tensor of a `model.safetensors` as f32 values, by name.
fn tensors(bytes: &[u8]) -> std::collections::BTreeMap<String, Vec<f32>> {
    let st = safetensors::SafeTensors::deserialize(bytes).unwrap();
    st.tensors()
        .into_iter()
        .map(|(name, view)| {
            let values =
                view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
            (name, values)
        })
        .collect()
}

/// A step whose batch is split across threads (4 rows on 3 threads: shards of 1, 1 and 2 rows,
/// so the weighting by predictions matters) is the step the whole batch takes on one thread,
/// up to float rounding: same losses, gradient norms and weights, on both CPU backends and
/// both kinds of model.
#[test]
fn threaded_steps_match_one_thread() {
    let _serial = serial();
    let corpus = shakespeare(20_000);
    for (name, device) in cpu_devices() {
        for arch in [Arch::Gpt2, Arch::Bert] {
            let mut config = small(arch, 6);
            config.dropout = 0.0;
            let mut one = Trainer::new(config.clone(), &corpus, &device).unwrap();
            one.set_threads(1);
            let mut three = Trainer::new(config, &corpus, &device).unwrap();
            three.set_threads(3);
            for _ in 0..6 {
                let a = block_on(one.step()).unwrap();
                let b = block_on(three.step()).unwrap();
                assert_eq!((a.threads, b.threads), (1, 3), "{name} {arch:?}");
                assert!((a.loss - b.loss).abs() < 1e-5, "{name} {arch:?}: loss {} vs {}", a.loss, b.loss);
                let norm = (a.grad_norm - b.grad_norm).abs() / a.grad_norm;
                assert!(norm < 1e-4, "{name} {arch:?}: gradient norm {} vs {}", a.grad_norm, b.grad_norm);
            }
            let (wa, wb) = (tensors(&weights(&one)), tensors(&weights(&three)));
            assert_eq!(wa.keys().collect::<Vec<_>>(), wb.keys().collect::<Vec<_>>());
            for (key, a) in &wa {
                let d = max_abs_diff(a, &wb[key]);
                assert!(d < 1e-5, "{name} {arch:?}: `{key}` differs by {d}");
            }
        }
    }
}

/// With dropout a step stays on one thread (its masks come from one random stream).
#[test]
fn dropout_keeps_a_step_on_one_thread() {
    let _serial = serial();
    let corpus = shakespeare(20_000);
    let mut trainer = Trainer::new(small(Arch::Gpt2, 2), &corpus, &Device::flex()).unwrap();
    trainer.set_threads(4);
    assert_eq!(block_on(trainer.step()).unwrap().threads, 1);
}

/// Each shard past the first holds another set of gradients: a budget with no room for one keeps
/// the step on one thread, room for one more set allows two.
#[test]
fn memory_budget_limits_the_threads() {
    let _serial = serial();
    let corpus = shakespeare(20_000);
    let mut config = small(Arch::Gpt2, 2);
    config.dropout = 0.0;
    let first = Trainer::new(config.clone(), &corpus, &Device::flex()).unwrap();
    let need = first.admitted().unwrap();
    drop(first);
    for (budget, threads) in [(need.total(), 1), (need.total() + need.gradients, 2)] {
        let mut trainer =
            Trainer::new_within(config.clone(), &corpus, &Device::flex(), budget as u64).unwrap();
        trainer.set_threads(4);
        assert_eq!(block_on(trainer.step()).unwrap().threads, threads, "budget {budget}");
    }
}

/// A hand-off to Hugging Face Trainer (`io::handoff`): Trainer's checkpoint with the AdamW
/// moments in PyTorch's layout (transposed for `nn.Linear`, decayed parameters first), the
/// schedule's state, the step, and a data order replayed from step 1 that does not depend on when
/// the run was handed off; a masked LM's rows as Hearth corrupts them. `tests/hf/check_handoff.sh`
/// runs Trainer on them (needs torch).
#[test]
fn a_handoff_holds_trainers_checkpoint_and_the_data_order() {
    use hearth_lm::io::handoff::read_optimizer;
    use hearth_lm::io::torch::{from_torch_bytes, PtValue};
    use hearth_lm::io::weights::SafetensorsFile;
    let _serial = serial();
    let device = Device::flex();
    let corpus = shakespeare(20_000);
    for arch in [Arch::Gpt2, Arch::Llama] {
        let mut config = small(arch, 6);
        (config.dropout, config.warmup) = (0.0, 1);
        let mut trainer = Trainer::new(config.clone(), &corpus, &device).unwrap();
        run(&mut trainer, 3);
        let files = block_on(trainer.handoff(8)).unwrap();
        let file = |name: &str| &files.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("{name}")).1;
        for name in ["checkpoint-3/config.json", "checkpoint-3/model.safetensors", "train_hf.py", "README.md"]
        {
            assert!(!file(name).is_empty(), "{name}");
        }
        assert!(files.iter().all(|(n, _)| n != "checkpoint-3/optimizer.safetensors"));
        let meta: serde_json::Value = serde_json::from_slice(file("handoff.json")).unwrap();
        assert_eq!((meta["step"].as_u64(), meta["steps"].as_u64()), (Some(3), Some(8)));
        let names: Vec<String> = serde_json::from_value(meta["parameters"].clone()).unwrap();
        let decayed = meta["decayed_parameters"].as_u64().unwrap() as usize;

        // The moments equal Hearth's own (optimizer.safetensors), in PyTorch's orientation.
        let checkpoint = block_on(trainer.checkpoint()).unwrap();
        let ours = SafetensorsFile::parse(checkpoint.get("optimizer.safetensors").unwrap())
            .unwrap()
            .all_f32()
            .unwrap();
        let model =
            SafetensorsFile::parse(file("checkpoint-3/model.safetensors")).unwrap().all_f32().unwrap();
        let optimizer = read_optimizer(file("checkpoint-3/optimizer.pt")).unwrap();
        assert_eq!(optimizer.len(), names.len());
        let mut transposed = 0;
        for (index, name) in names.iter().enumerate() {
            let (avg, sq, step) = &optimizer[&(index as i64)];
            assert_eq!(*step, 3.0);
            let shape = &model.iter().find(|(n, ..)| n == name).unwrap().1;
            assert_eq!(&avg.shape, shape, "{name}");
            let flat = |prefix: &str| {
                ours.iter().find(|(n, ..)| n == &format!("{prefix}.{name}")).unwrap().2.clone()
            };
            let (want_avg, want_sq) = (flat("exp_avg"), flat("exp_avg_sq"));
            if avg.data.as_slice() != want_avg.as_slice() {
                // nn.Linear: Hearth's [in, out] moment is PyTorch's [out, in] transposed.
                let [rows, cols] = [shape[0], shape[1]];
                let t =
                    |v: &[f32]| (0..rows * cols).map(|i| v[(i % cols) * rows + i / cols]).collect::<Vec<_>>();
                assert_eq!(avg.data.as_slice(), t(&want_avg), "{name}");
                assert_eq!(sq.data.as_slice(), t(&want_sq), "{name}");
                transposed += 1;
            } else {
                assert_eq!(sq.data.as_slice(), want_sq.as_slice(), "{name}");
            }
            assert_eq!(shape.len() >= 2, index < decayed, "{name}: decayed parameters come first");
        }
        assert_eq!(transposed > 0, arch == Arch::Llama, "only nn.Linear weights are transposed");

        // The groups and the schedule: the next update's rate, the base rate, the step.
        let groups = from_torch_bytes(file("checkpoint-3/optimizer.pt")).unwrap();
        let Some(PtValue::List(groups)) = groups.get("param_groups") else { panic!("no param_groups") };
        assert_eq!(groups.len(), 2);
        let next_lr = config.schedule().at(3);
        let mut schedule = config.schedule();
        schedule.decay_steps = 8;
        assert_eq!(groups[0].get("lr"), Some(&PtValue::Float(schedule.at(3))));
        assert_ne!(schedule.at(3), next_lr, "handing off to 8 steps extends the schedule");
        assert_eq!(groups[1].get("weight_decay"), Some(&PtValue::Float(0.0)));
        let scheduler = from_torch_bytes(file("checkpoint-3/scheduler.pt")).unwrap();
        assert_eq!(scheduler.get("last_epoch"), Some(&PtValue::Int(3)));
        let state: serde_json::Value =
            serde_json::from_slice(file("checkpoint-3/trainer_state.json")).unwrap();
        assert_eq!((state["global_step"].as_u64(), state["max_steps"].as_u64()), (Some(3), Some(8)));

        // The order is replayed from step 1: handing off two steps later writes the same one.
        let order = file("data/order.parquet").clone();
        assert_eq!(&order[..4], b"PAR1");
        run(&mut trainer, 2);
        let later = block_on(trainer.handoff(8)).unwrap();
        assert_eq!(later.iter().find(|(n, _)| n == "data/order.parquet").unwrap().1, order);
        let err = block_on(trainer.handoff(4)).unwrap_err().to_string();
        assert!(err.contains("has taken 5 steps"), "{err}");
    }
    // A masked LM: the corrupted rows of the steps to come (Trainer cannot draw Hearth's masks),
    // and the generator's state after each, for coming back.
    let mut masked = Trainer::new(small(Arch::Bert, 6), &corpus, &device).unwrap();
    run(&mut masked, 2);
    let files = block_on(masked.handoff(6)).unwrap();
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert!(
        names.contains(&"data/masked_train.parquet") && !names.contains(&"data/order.parquet"),
        "{names:?}"
    );
    let meta: serde_json::Value =
        serde_json::from_slice(&files.iter().find(|(n, _)| n == "handoff.json").unwrap().1).unwrap();
    assert_eq!(meta["objective"], "masked");
    assert_eq!(meta["mask_rng"].as_array().map(Vec::len), Some(5), "the states after steps 2…6");
}

/// Coming back from Trainer (`io::handoff::checkpoint_from_trainer`), against what Trainer really
/// wrote (`tests/fixtures/make_handoff_case.sh`: a GPT-2 and a BERT run handed off at step 4,
/// continued by Trainer to step 8): Hearth resumed from Trainer's checkpoint-6 takes Trainer's own
/// steps 7 and 8 (the BERT with the masks Hearth draws), with Trainer's evaluation at step 6 in
/// its history. Another optimizer's state (transformers' Adafactor), changed AdamW settings and a
/// step past the hand-off are refused by name.
#[test]
fn a_trainer_checkpoint_comes_back_and_continues_as_trainer_did() {
    use hearth_lm::io::handoff::{checkpoint_from_trainer, TrainerCheckpoint};
    use hearth_lm::io::torch::{from_torch_bytes, to_torch_bytes, PtValue};
    let _serial = serial();
    let corpus =
        Corpus::from_bytes(&read(fixtures().join("../../web/corpus/tiny_shakespeare_like.txt"))).unwrap();
    for arch in ["gpt2", "bert"] {
        let dir = fixtures().join("handoff").join(arch);
        let file = |name: &str| read(dir.join(name));
        let files = |sub: &str, names: &[&str]| Checkpoint {
            files: names.iter().map(|n| (n.to_string(), file(&format!("{sub}/{n}")))).collect(),
        };
        let handed_off = files("checkpoint-4", &["config.json", "tokenizer.json", "tokenizer_config.json"]);
        let trainer_files = |optimizer: Vec<u8>, state: Vec<u8>| {
            let mut c = files("checkpoint-6", &["config.json", "model.safetensors"]);
            c.files.push(("optimizer.pt".into(), optimizer));
            c.files.push(("trainer_state.json".into(), state));
            c
        };
        let (handoff_json, hearth_state, losses) =
            (file("handoff.json"), file("hearth_state.json"), file("hf_losses.jsonl"));
        let come_back = |checkpoint: &Checkpoint| {
            checkpoint_from_trainer(TrainerCheckpoint {
                handoff_json: &handoff_json,
                hearth_state: &hearth_state,
                losses: Some(&losses),
                checkpoint,
                handed_off: &handed_off,
            })
        };
        let (optimizer, state) = (file("checkpoint-6/optimizer.pt"), file("checkpoint-6/trainer_state.json"));
        let back = come_back(&trainer_files(optimizer.clone(), state.clone())).unwrap();

        let mut trainer = Trainer::resume(&back, &corpus, &Device::flex()).unwrap();
        assert_eq!(trainer.step_count(), 6);
        let evals: Vec<usize> = trainer.history().iter().map(|r| r.step).collect();
        assert_eq!(evals, [2, 4, 6], "{arch}: Hearth's evaluations, then Trainer's");
        let trainer_losses: Vec<f64> = String::from_utf8(losses.clone())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|l| l["event"] == "step" && l["step"].as_u64().unwrap() > 6)
            .map(|l| l["loss"].as_f64().unwrap())
            .collect();
        assert_eq!(trainer_losses.len(), 2);
        for want in trainer_losses {
            let got = block_on(trainer.step()).unwrap().loss;
            assert!((got - want).abs() < 1e-4, "{arch}: Hearth {got}, Trainer {want}");
        }
        if arch != "gpt2" {
            continue;
        }

        // Refusals, each naming what differs.
        let err = |optimizer: Vec<u8>, state: Vec<u8>| {
            come_back(&trainer_files(optimizer, state)).unwrap_err().to_string()
        };
        let e = err(file("adafactor.pt"), state.clone());
        assert!(e.contains("not AdamW's state") && e.contains("exp_avg_sq_row"), "{e}");
        let mut changed = from_torch_bytes(&optimizer).unwrap();
        if let PtValue::Dict(top) = &mut changed {
            if let Some((_, PtValue::List(groups))) =
                top.iter_mut().find(|(k, _)| *k == PtValue::Str("param_groups".into()))
            {
                if let PtValue::Dict(g) = &mut groups[0] {
                    for (k, v) in g.iter_mut() {
                        if *k == PtValue::Str("betas".into()) {
                            *v = PtValue::Tuple(vec![PtValue::Float(0.9), PtValue::Float(0.95)]);
                        }
                    }
                }
            }
        }
        let e = err(to_torch_bytes(&changed, "archive").unwrap(), state.clone());
        assert!(e.contains("betas[1] = 0.95"), "{e}");
        let past = String::from_utf8(state).unwrap().replace("\"global_step\": 6", "\"global_step\": 9");
        let e = err(optimizer, past.into_bytes());
        assert!(e.contains("outside the hand-off's steps"), "{e}");
    }
}

/// A checkpoint of a Trainer run Hearth did not hand off (the hand-off fixture's checkpoint-6,
/// read without its handoff.json): a fine-tune of its weights takes over its step and every
/// parameter's AdamW moments — equal, name by name and in Hearth's orientation, to what coming
/// back from the hand-off reads — and names what the checkpoint lacks. Another model's state, other
/// AdamW settings and a step at the run's end are refused by name.
#[test]
fn a_plain_trainer_checkpoint_continues_with_its_adamw_state() {
    use hearth_lm::io::checkpoint::TrainerState;
    use hearth_lm::io::handoff::{checkpoint_from_trainer, TrainerCheckpoint};
    use hearth_lm::io::weights::SafetensorsFile;
    use hearth_lm::train::InitFrom;
    use hearth_lm::{ModelConfig, Tokenizer};
    let _serial = serial();
    let corpus =
        Corpus::from_bytes(&read(fixtures().join("../../web/corpus/tiny_shakespeare_like.txt"))).unwrap();
    for arch in ["gpt2", "bert"] {
        let dir = fixtures().join("handoff").join(arch);
        let file = |name: &str| read(dir.join(name));
        let (optimizer, state) = (file("checkpoint-6/optimizer.pt"), file("checkpoint-6/trainer_state.json"));
        // What coming back from the hand-off reads: the reference.
        let mut trainer_files = Checkpoint::default();
        for name in ["config.json", "model.safetensors", "optimizer.pt", "trainer_state.json"] {
            trainer_files.files.push((name.into(), file(&format!("checkpoint-6/{name}"))));
        }
        let handed_off = Checkpoint {
            files: ["config.json", "tokenizer.json"]
                .iter()
                .map(|n| (n.to_string(), file(&format!("checkpoint-4/{n}"))))
                .collect(),
        };
        let back = checkpoint_from_trainer(TrainerCheckpoint {
            handoff_json: &file("handoff.json"),
            hearth_state: &file("hearth_state.json"),
            losses: None,
            checkpoint: &trainer_files,
            handed_off: &handed_off,
        })
        .unwrap();
        let want =
            SafetensorsFile::parse(back.get("optimizer.safetensors").unwrap()).unwrap().all_f32().unwrap();

        // The plain way: the weights as a fine-tune with the run's AdamW settings, then the state.
        let run: TrainerState = serde_json::from_slice(&file("hearth_state.json")).unwrap();
        let model = ModelConfig::from_json(&file("checkpoint-6/config.json")).unwrap();
        let tokenizer = Tokenizer::from_bytes(&file("checkpoint-4/tokenizer.json")).unwrap();
        let fine_tune = |steps: usize, weight_decay: f64| {
            let mut c = run.config.clone();
            c.init_from = Some(InitFrom {
                source: "checkpoint-6".into(),
                model: model.clone(),
                files: Default::default(),
            });
            c.tokenizer = TokenizerChoice::Pretrained;
            c.steps = steps;
            c.adamw.weight_decay = weight_decay;
            let weights = file("checkpoint-6/model.safetensors");
            Trainer::fine_tune_within(c, &weights, tokenizer.clone(), &corpus, &Device::flex(), u64::MAX)
                .unwrap()
        };
        let mut trainer = fine_tune(10, run.config.adamw.weight_decay);
        let adopted = trainer.adopt_trainer_checkpoint(&optimizer, &state).unwrap();
        assert_eq!((adopted.step, trainer.step_count()), (6, 6), "{arch}");
        assert!(
            adopted.lacking.iter().any(|l| l.contains("learning-rate schedule")),
            "{:?}",
            adopted.lacking
        );
        assert!(adopted.lacking.iter().any(|l| l.contains("data order")), "{:?}", adopted.lacking);
        let saved = block_on(trainer.checkpoint()).unwrap();
        let got =
            SafetensorsFile::parse(saved.get("optimizer.safetensors").unwrap()).unwrap().all_f32().unwrap();
        assert_eq!(got.len(), want.len(), "{arch}: moments of every parameter");
        assert_eq!(adopted.parameters * 2, want.len());
        for ((gn, gs, gv), (wn, ws, wv)) in got.iter().zip(&want) {
            assert_eq!((gn, gs), (wn, ws), "{arch}");
            assert_eq!(gv, wv, "{arch}: `{gn}` as coming back from the hand-off reads it");
        }
        let saved_state: serde_json::Value =
            serde_json::from_slice(saved.get("trainer_state.json").unwrap()).unwrap();
        assert_eq!(saved_state["optimizer_steps"], 6, "{arch}: AdamW's update count");
        // It trains on from there.
        assert!(block_on(trainer.step()).unwrap().loss.is_finite());

        if arch != "gpt2" {
            continue;
        }
        let e = fine_tune(10, 0.0).adopt_trainer_checkpoint(&optimizer, &state).unwrap_err().to_string();
        assert!(e.contains("weight_decay = 0.1, this run's is 0: pass --weight-decay 0.1"), "{e}");
        let e = fine_tune(6, 0.1).adopt_trainer_checkpoint(&optimizer, &state).unwrap_err().to_string();
        assert!(e.contains("the checkpoint is at step 6: give --steps above it"), "{e}");
        let bert = read(fixtures().join("handoff/bert/checkpoint-6/optimizer.pt"));
        let e = fine_tune(10, 0.1).adopt_trainer_checkpoint(&bert, &state).unwrap_err().to_string();
        assert!(e.contains("not this model's optimizer state"), "{e}");
        let e = fine_tune(10, 0.1)
            .adopt_trainer_checkpoint(&file("adafactor.pt"), &state)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not AdamW's state"), "{e}");
    }
}
