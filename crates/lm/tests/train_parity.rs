//! The optimizer and gradients against PyTorch: the 20-step AdamW runs recorded in
//! `gpt2-bytes-tiny/train`, `llama-gqa-tied/train`, `qwen3-qknorm-headdim/train` and
//! `modernbert-local/train` (exact batches, and masks, given): losses per step, step-0 gradients, and parameters after steps 1 and 20, all
//! within 1e-4.

mod common;

use burn::tensor::{Device, Int, Tensor, TensorData};
use common::*;
use hearth_lm::io::weights::{export_tensors, Layout, NamedTensor, SafetensorsFile};
use hearth_lm::tensor::cross_entropy;
use hearth_lm::tensor::read_f32;
use hearth_lm::train::optim::{gradient_tensors, AdamW, AdamWConfig};
use hearth_lm::{load_gpt2, Gpt2Config};

const TOL: f32 = 1e-4;

fn safetensors(path: std::path::PathBuf) -> Vec<NamedTensor> {
    let bytes = read(path);
    SafetensorsFile::parse(&bytes).unwrap().all_f32().unwrap()
}

fn compare(label: &str, got: &[NamedTensor], want: &[NamedTensor]) {
    // By name: the files list tensors in their own order.
    let (mut got, mut want) = (got.to_vec(), want.to_vec());
    got.sort_by(|a, b| a.0.cmp(&b.0));
    want.sort_by(|a, b| a.0.cmp(&b.0));
    let got_keys: Vec<&String> = got.iter().map(|t| &t.0).collect();
    let want_keys: Vec<&String> = want.iter().map(|t| &t.0).collect();
    assert_eq!(got_keys, want_keys, "{label}: keys");
    for ((key, gs, gv), (_, ws, wv)) in got.iter().zip(&want) {
        assert_eq!(gs, ws, "{label}: shape of {key}");
        let diff = max_abs_diff(gv, wv);
        assert!(diff < TOL, "{label}: {key} differs by {diff}");
    }
}

/// Gradients as PyTorch lays them out: the matrices `is_linear` names are `nn.Linear`
/// weights, `[out, in]` there and `[in, out]` in Burn.
fn torch_orientation(tensors: Vec<NamedTensor>, is_linear: impl Fn(&str) -> bool) -> Vec<NamedTensor> {
    tensors
        .into_iter()
        .map(|(key, shape, values)| {
            if is_linear(&key) {
                let (rows, cols) = (shape[0], shape[1]);
                let t = (0..rows * cols).map(|i| values[(i % rows) * cols + i / rows]).collect();
                (key, vec![cols, rows], t)
            } else {
                (key, shape, values)
            }
        })
        .collect()
}

/// The file of parameters the PyTorch run recorded after `steps` steps, if it recorded them.
fn recorded_params(steps: usize) -> Option<&'static str> {
    match steps {
        1 => Some("params_after_step1.safetensors"),
        20 => Some("params_after_step20.safetensors"),
        _ => None,
    }
}

fn run_on(device: Device) {
    let dir = case("gpt2-bytes-tiny");
    let train = dir.join("train");
    let exp: serde_json::Value = serde_json::from_slice(&read(train.join("expected.json"))).unwrap();
    let (shape, xs) = read_npy_i64(train.join("batches_x.npy"));
    let (_, ys) = read_npy_i64(train.join("batches_y.npy"));
    let (steps, b, t) = (shape[0], shape[1], shape[2]);

    let config = Gpt2Config::from_json(&read(dir.join("config.json"))).unwrap();
    let device = device.autodiff();
    let mut model = load_gpt2(&config, &read(dir.join("model.safetensors")), &device).unwrap();
    let cfg = AdamWConfig { beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.1, decay_all: true };
    let mut optim = AdamW::new(cfg, Layout::Gpt2);
    let want_losses = floats(&exp["losses"]);

    for (step, want_loss) in want_losses.iter().enumerate().take(steps) {
        let at = step * b * t;
        let x = Tensor::<2, Int>::from_data(TensorData::new(xs[at..at + b * t].to_vec(), [b, t]), &device);
        let y = Tensor::<1, Int>::from_data(TensorData::new(ys[at..at + b * t].to_vec(), [b * t]), &device);
        let logits = model.forward(x, None).reshape([b * t, config.vocab_size]);
        let loss = cross_entropy(logits, y);
        let value = block_on(read_f32(loss.clone())).unwrap()[0] as f64;
        assert!((value - want_loss).abs() < TOL as f64, "step {step}: loss {value} vs {want_loss}");
        let grads = block_on(optim.gradients(&model, loss.backward())).unwrap();
        if step == 0 {
            let got = block_on(gradient_tensors(&model, &grads, Layout::Gpt2)).unwrap();
            compare("step-0 gradients", &got, &safetensors(train.join("grads_step0.safetensors")));
        }
        model = block_on(optim.step(model, grads, 1e-3, 1.0)).unwrap();
        if let Some(file) = recorded_params(step + 1) {
            let got = block_on(export_tensors(&model, Layout::Gpt2)).unwrap();
            compare(file, &got, &safetensors(train.join(file)));
        }
    }
}

/// The same 20 steps for a Llama-family decoder (RMSNorm, rotary positions, grouped-query
/// attention, SwiGLU; Qwen3's QK-norm and untied head): what fine-tuning and `--arch llama`
/// pretraining run.
fn run_llama_on(name: &str, device: Device) {
    use hearth_lm::{load_model, AnyModel};
    let dir = case(name);
    let train = dir.join("train");
    let exp: serde_json::Value = serde_json::from_slice(&read(train.join("expected.json"))).unwrap();
    let (shape, xs) = read_npy_i64(train.join("batches_x.npy"));
    let (_, ys) = read_npy_i64(train.join("batches_y.npy"));
    let (steps, b, t) = (shape[0], shape[1], shape[2]);
    let device = device.autodiff();
    let AnyModel::Llama(model) =
        load_model(&read(dir.join("config.json")), &read(dir.join("model.safetensors")), &device).unwrap()
    else {
        panic!("{name} is a Llama-family case")
    };
    let mut model = *model;
    let vocab = model.config().vocab_size;
    let cfg = AdamWConfig { beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.1, decay_all: true };
    let mut optim = AdamW::new(cfg, Layout::Llama);
    for (step, want_loss) in floats(&exp["losses"]).iter().enumerate().take(steps) {
        let at = step * b * t;
        let x = Tensor::<2, Int>::from_data(TensorData::new(xs[at..at + b * t].to_vec(), [b, t]), &device);
        let y = Tensor::<1, Int>::from_data(TensorData::new(ys[at..at + b * t].to_vec(), [b * t]), &device);
        let loss = cross_entropy(model.forward(x, None).reshape([b * t, vocab]), y);
        let value = block_on(read_f32(loss.clone())).unwrap()[0] as f64;
        assert!((value - want_loss).abs() < TOL as f64, "{name} step {step}: loss {value} vs {want_loss}");
        let grads = block_on(optim.gradients(&model, loss.backward())).unwrap();
        if step == 0 {
            let got = torch_orientation(
                block_on(gradient_tensors(&model, &grads, Layout::Llama)).unwrap(),
                |key| key.ends_with("_proj.weight") || key == "lm_head.weight",
            );
            compare(
                &format!("{name} step-0 gradients"),
                &got,
                &safetensors(train.join("grads_step0.safetensors")),
            );
        }
        model = block_on(optim.step(model, grads, 1e-3, 1.0)).unwrap();
        if let Some(file) = recorded_params(step + 1) {
            let got = block_on(export_tensors(&model, Layout::Llama)).unwrap();
            compare(&format!("{name} {file}"), &got, &safetensors(train.join(file)));
        }
    }
}

#[test]
fn twenty_adamw_steps_of_the_llama_family_match_pytorch() {
    for name in ["llama-gqa-tied", "qwen3-qknorm-headdim"] {
        run_llama_on(name, ndarray());
        run_llama_on(name, Device::flex());
    }
}

/// The same for ModernBERT's masked-LM objective (`modernbert-local/train`): the masks fixed by
/// the case's rule, so both sides see the same inputs and labels; the loss over the masked
/// positions only, as `ModernBertForMaskedLM(labels=…)` computes it.
fn run_modernbert_on(device: Device) {
    use hearth_lm::model::masked::masked_lm_loss;
    use hearth_lm::{load_model, AnyModel};
    let name = "modernbert-local";
    let dir = case(name);
    let train = dir.join("train");
    let exp: serde_json::Value = serde_json::from_slice(&read(train.join("expected.json"))).unwrap();
    let (shape, xs) = read_npy_i64(train.join("batches_x.npy"));
    let (_, ys) = read_npy_i64(train.join("batches_y.npy"));
    let (steps, b, t) = (shape[0], shape[1], shape[2]);
    let device = device.autodiff();
    let AnyModel::ModernBert(model) =
        load_model(&read(dir.join("config.json")), &read(dir.join("model.safetensors")), &device).unwrap()
    else {
        panic!("{name} is a ModernBERT case")
    };
    let mut model = *model;
    let cfg = AdamWConfig { beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.1, decay_all: true };
    let mut optim = AdamW::new(cfg, Layout::ModernBert);
    for (step, want_loss) in floats(&exp["losses"]).iter().enumerate().take(steps) {
        let at = step * b * t;
        let inputs: Vec<u32> = xs[at..at + b * t].iter().map(|&x| x as u32).collect();
        let labels: Vec<Option<u32>> = ys[at..at + b * t].iter().map(|&y| u32::try_from(y).ok()).collect();
        let loss = masked_lm_loss(&model, &inputs, &labels, [b, t]).unwrap();
        let value = block_on(read_f32(loss.clone())).unwrap()[0] as f64;
        assert!((value - want_loss).abs() < TOL as f64, "{name} step {step}: loss {value} vs {want_loss}");
        let grads = block_on(optim.gradients(&model, loss.backward())).unwrap();
        if step == 0 {
            let got = torch_orientation(
                block_on(gradient_tensors(&model, &grads, Layout::ModernBert)).unwrap(),
                |key| {
                    ["Wqkv.weight", "Wo.weight", "Wi.weight", "dense.weight"].iter().any(|l| key.ends_with(l))
                },
            );
            compare(
                &format!("{name} step-0 gradients"),
                &got,
                &safetensors(train.join("grads_step0.safetensors")),
            );
        }
        model = block_on(optim.step(model, grads, 1e-3, 1.0)).unwrap();
        if let Some(file) = recorded_params(step + 1) {
            let got = block_on(export_tensors(&model, Layout::ModernBert)).unwrap();
            compare(&format!("{name} {file}"), &got, &safetensors(train.join(file)));
        }
    }
}

#[test]
fn twenty_adamw_steps_of_modernbert_masked_lm_match_pytorch() {
    run_modernbert_on(ndarray());
    run_modernbert_on(Device::flex());
}

#[test]
fn twenty_adamw_steps_match_pytorch_on_ndarray() {
    run_on(ndarray());
}

#[test]
fn twenty_adamw_steps_match_pytorch_on_flex() {
    run_on(Device::flex());
}

/// The CPU-only paths (the fused AdamW, `-inf` attention masks) recognise both CPU backends,
/// with and without autodiff.
#[test]
fn cpu_backends_are_recognised() {
    use hearth_lm::tensor::is_cpu;
    assert!(is_cpu(&burn::tensor::Device::flex()));
    assert!(is_cpu(&ndarray()));
    assert!(is_cpu(&burn::tensor::Device::flex().autodiff()));
}
