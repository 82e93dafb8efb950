//! Weights stored in f16 (matrices; vectors stay f32) against `transformers`' f32 outputs on the
//! fixture checkpoints, on the Flex CPU backend, which computes in f16 like a `shader-f16` GPU
//! (the same model code runs on both; `crates/cli/tests/gpu.rs` runs it on wgpu).
//!
//! The tolerance: f16 keeps 11 significant bits, so each weight and each product is rounded to
//! a relative 2⁻¹¹ ≈ 4.9e-4 before the sum returns to f32. Measured (`cargo test -p hearth-lm
//! --test f16_weights -- --nocapture` prints it), the logits' largest difference from
//! `transformers`' f32 ones is 2.7e-4 to 5.5e-3 across the fixtures; [`TOL_F16`] = 1e-2 bounds
//! that, 100× the f32 path's 1e-4. Greedy ids and the loss are checked too.

mod common;

use burn::module::Module;
use burn::tensor::{DType, Device, Int, Tensor, TensorData};
use common::*;
use hearth_lm::io::hf::{export_model, load_model_as};
use hearth_lm::io::streamed::ModelStream;
use hearth_lm::model::precision::WeightDtype;
use hearth_lm::tensor::{ids_tensor, read_f32};
use hearth_lm::{generate, load_model, score, AnyModel, ModelConfig, Sampling};

const TOL_F16: f32 = 1e-2;

fn load_f16(case_name: &str, device: &Device) -> AnyModel {
    let dir = case(case_name);
    load_model_as(
        &read(dir.join("config.json")),
        &read(dir.join("model.safetensors")),
        device,
        WeightDtype::F16,
    )
    .unwrap()
}

/// Every parameter's dtype by rank: matrices f16, vectors f32.
fn dtypes_by_rank(model: &AnyModel) -> (Vec<DType>, Vec<DType>) {
    struct Dtypes(Vec<DType>, Vec<DType>);
    impl burn::module::ModuleVisitor for Dtypes {
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
            let dtype = param.val().dtype();
            if D == 1 {
                self.0.push(dtype)
            } else {
                self.1.push(dtype)
            }
        }
    }
    let mut seen = Dtypes(Vec::new(), Vec::new());
    match model {
        AnyModel::Gpt2(m) => m.visit(&mut seen),
        AnyModel::Bert(m) => m.visit(&mut seen),
        AnyModel::Llama(m) => m.visit(&mut seen),
        AnyModel::ModernBert(m) => m.visit(&mut seen),
    }
    (seen.0, seen.1)
}

fn assert_f16_matrices(model: &AnyModel) {
    let (vectors, matrices) = dtypes_by_rank(model);
    assert!(!matrices.is_empty() && matrices.iter().all(|d| *d == DType::F16), "{matrices:?}");
    assert!(!vectors.is_empty() && vectors.iter().all(|d| *d == DType::F32), "{vectors:?}");
}

#[test]
fn gpt2_with_f16_weights_matches_transformers_within_the_stated_tolerance() {
    let device = Device::flex();
    for case_name in ["gpt2-tiny", "gpt2-tiny-perturbed", "gpt2-bytes-tiny"] {
        let exp = expected(case_name);
        let prompt = ids(&exp["input_ids"]);
        let (_, want) = read_npy(case(case_name).join("logits.npy"));
        let model = load_f16(case_name, &device);
        assert_f16_matrices(&model);
        let AnyModel::Gpt2(m) = &model else { panic!("a GPT-2 case") };
        let got = block_on(read_f32(m.forward(ids_tensor(&prompt, &device), None))).unwrap();
        let diff = max_abs_diff(&got, &want);
        println!("{case_name}: f16 weights, logits max |Δ| = {diff:.2e}");
        assert!(diff < TOL_F16, "{case_name}: logits differ by {diff}");

        let n = exp["greedy_new_tokens"].as_u64().unwrap() as usize;
        let greedy = block_on(generate(m.as_ref(), &prompt, n, Sampling::ArgMax, 0)).unwrap();
        assert_eq!(greedy, ids(&exp["greedy_new_ids"]), "{case_name}: greedy ids");

        let s = block_on(score(m.as_ref(), &prompt)).unwrap();
        let want_loss = exp["loss_labels_eq_input_ids"].as_f64().unwrap();
        assert!((s.loss - want_loss).abs() < TOL_F16 as f64, "{case_name}: loss {} vs {want_loss}", s.loss);
    }
}

#[test]
fn bert_with_f16_weights_matches_transformers_within_the_stated_tolerance() {
    let device = Device::flex();
    for case_name in ["bert-tiny-mlm", "bert-tiny-mlm-perturbed"] {
        let exp = expected(case_name);
        let input: Vec<i64> = ids(&exp["input_ids"]).iter().map(|&x| x as i64).collect();
        let (_, want) = read_npy(case(case_name).join("logits.npy"));
        let model = load_f16(case_name, &device);
        assert_f16_matrices(&model);
        let AnyModel::Bert(m) = &model else { panic!("a BERT case") };
        let t = input.len();
        let row = |v: Vec<i64>| Tensor::<2, Int>::from_data(TensorData::new(v, [1, t]), &device);
        let out = m.forward(row(input.clone()), row(vec![0; t]), row(vec![1; t]));
        let got = block_on(read_f32(out)).unwrap();
        let diff = max_abs_diff(&got, &want);
        println!("{case_name}: f16 weights, logits max |Δ| = {diff:.2e}");
        assert!(diff < TOL_F16, "{case_name}: logits differ by {diff}");
    }
}

#[test]
fn modernbert_with_f16_weights_matches_transformers_within_the_stated_tolerance() {
    let device = Device::flex();
    for case_name in ["modernbert-local", "modernbert-biased"] {
        let exp = expected(case_name);
        let input: Vec<i64> = ids(&exp["input_ids"]).iter().map(|&x| x as i64).collect();
        let (_, want) = read_npy(case(case_name).join("logits.npy"));
        let model = load_f16(case_name, &device);
        assert_f16_matrices(&model);
        let m = model.masked().expect("a masked LM");
        let t = input.len();
        let row = |v: Vec<i64>| Tensor::<2, Int>::from_data(TensorData::new(v, [1, t]), &device);
        let got = block_on(read_f32(m.mlm_head(m.hidden(row(input.clone()), row(vec![1; t]))))).unwrap();
        let diff = max_abs_diff(&got, &want);
        println!("{case_name}: f16 weights, logits max |Δ| = {diff:.2e}");
        assert!(diff < TOL_F16, "{case_name}: logits differ by {diff}");
    }
}

/// The streaming loader stores matrices as f16 as they arrive: the bytes on the device are the
/// config's f16 count, and the logits are those of the whole-file load.
#[test]
fn streamed_f16_weights_hold_half_the_bytes() {
    let device = Device::flex();
    let dir = case("gpt2-tiny");
    let (config, weights) = (read(dir.join("config.json")), read(dir.join("model.safetensors")));
    let mut loading = ModelStream::new(&config, &device, WeightDtype::F16, u64::MAX, u64::MAX).unwrap();
    for chunk in weights.chunks(4096) {
        loading.push(chunk).unwrap();
    }
    let uploaded = loading.uploaded_bytes() as u128;
    let model_config = ModelConfig::from_json(&config).unwrap();
    assert_eq!(uploaded, model_config.weight_bytes(WeightDtype::F16));
    assert!(uploaded < model_config.weight_bytes(WeightDtype::F32) * 6 / 10, "{uploaded}");
    let streamed = loading.finish().unwrap();
    assert_f16_matrices(&streamed);

    let prompt = ids(&expected("gpt2-tiny")["input_ids"]);
    let logits = |m: &AnyModel| {
        let AnyModel::Gpt2(m) = m else { panic!("GPT-2") };
        block_on(read_f32(m.forward(ids_tensor(&prompt, &device), None))).unwrap()
    };
    assert_eq!(logits(&streamed), logits(&load_f16("gpt2-tiny", &device)));
}

/// What the caller holds while a tensor arrives is its size in the file, not on the device: an
/// f32 file stored as f16 holds twice the stored bytes, and a limit between the two refuses it
/// from the header (the page sets its 1 GiB; the fixture's embedding is 64 kB in the file).
#[test]
fn the_in_flight_limit_counts_the_files_bytes() {
    let device = Device::flex();
    let dir = case("gpt2-tiny");
    let (config, weights) = (read(dir.join("config.json")), read(dir.join("model.safetensors")));
    let largest = ModelConfig::from_json(&config).unwrap().largest_tensor() as u64;
    let loading = |limit: u64| {
        let mut stream = ModelStream::new(&config, &device, WeightDtype::F16, u64::MAX, u64::MAX)
            .unwrap()
            .with_in_flight_limit(limit);
        stream.push(&weights).map(|_| ())
    };
    // Stored as f16 the embedding is 2 bytes a value; in flight it is the file's 4.
    let err = loading(largest * 3).unwrap_err().to_string();
    assert!(err.contains("in the file") && err.contains("while it arrives"), "{err}");
    loading(largest * 4).unwrap();
}

/// A model stored in f16 exports f32 safetensors (what `transformers` and training read), and
/// its weights are the f32 ones rounded to f16.
#[test]
fn an_f16_model_exports_f32_files() {
    let device = Device::flex();
    let dir = case("gpt2-tiny");
    let files = block_on(export_model(&load_f16("gpt2-tiny", &device), None)).unwrap();
    let file = safetensors::SafeTensors::deserialize(&files.model_safetensors).unwrap();
    let original = read(dir.join("model.safetensors"));
    let original = safetensors::SafeTensors::deserialize(&original).unwrap();
    let (wte, want) =
        (file.tensor("transformer.wte.weight").unwrap(), original.tensor("transformer.wte.weight").unwrap());
    assert_eq!(wte.dtype(), safetensors::Dtype::F32);
    let floats =
        |b: &[u8]| b.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect::<Vec<_>>();
    let rounded: Vec<f32> = floats(want.data()).iter().map(|&x| half::f16::from_f32(x).to_f32()).collect();
    assert_eq!(floats(wte.data()), rounded);
    // And it loads back for training (f32).
    let reopened = load_model(&files.config_json, &files.model_safetensors, &device).unwrap();
    let (_, matrices) = dtypes_by_rank(&reopened);
    assert!(matrices.iter().all(|d| *d == DType::F32));
}

/// A device without f16 (the ndarray backend, like a WebGPU adapter without `shader-f16`) is
/// refused f16 storage with a message, never handed tensors it would compute garbage with.
#[test]
fn f16_storage_is_refused_where_the_device_lacks_it() {
    let device = ndarray();
    assert!(!WeightDtype::F16.supported_on(&device));
    assert_eq!(WeightDtype::smallest_on(&device), WeightDtype::F32);
    assert_eq!(WeightDtype::smallest_on(&Device::flex()), WeightDtype::F16);
    let dir = case("gpt2-tiny");
    let (config, weights) = (read(dir.join("config.json")), read(dir.join("model.safetensors")));
    let err = load_model_as(&config, &weights, &device, WeightDtype::F16).err().unwrap().to_string();
    assert!(err.contains("cannot store weights as f16"), "{err}");
    let err =
        ModelStream::new(&config, &device, WeightDtype::F16, u64::MAX, u64::MAX).err().unwrap().to_string();
    assert!(err.contains("cannot store weights as f16"), "{err}");
}
