//! A Hugging Face model loaded while its `model.safetensors` arrives: each tensor goes to the
//! device as soon as its bytes are complete ([`super::stream`]), so the caller's memory holds
//! one tensor at a time, not the file. Everything that can be known from the file's header —
//! a missing or mis-shaped tensor, a non-float dtype, a config that does not belong to these
//! weights, a tensor larger than the device binds — is refused from the header, before the
//! data is downloaded. A sharded checkpoint (`model.safetensors.index.json`) streams one shard
//! after another ([`ModelStream::sharded`]): each shard's header is checked as it arrives, and
//! what no shard held is named once the last has.

use std::collections::{HashMap, HashSet};

use burn::tensor::{DType, Device, Tensor, TensorData};
use safetensors::Dtype;

use super::hf::check_file_holds;
use super::stream::{TensorInfo, TensorSink, TensorStream};
use super::weights::{load_module_from_tensors, stored_parameters, Layout};
use crate::error::{invalid, Error, Result};
use crate::model::config::ModelConfig;
use crate::model::memory::human_bytes;
use crate::model::precision::WeightDtype;
use crate::model::AnyModel;

/// A model whose weights are arriving; see the module's documentation.
pub struct ModelStream {
    stream: TensorStream,
    uploads: Uploads,
}

/// The receiving end: checks the header against the model, uploads each tensor it needs.
struct Uploads {
    model: Option<AnyModel>,
    config: ModelConfig,
    layout: Layout,
    device: Device,
    max_tensor_bytes: u64,
    /// The most bytes one tensor may have in the file: the caller holds them until it is
    /// complete (2× its stored size for an f32 file stored as f16, 2× for f64 stored as f32).
    max_in_flight_bytes: u64,
    /// The storage of matrices on the device; vectors are f32.
    weights: WeightDtype,
    tensors: HashMap<String, (Vec<usize>, Tensor<1>)>,
    /// Bytes uploaded so far, as stored on the device.
    uploaded: u64,
    /// For a sharded checkpoint, what the shards so far held.
    shards: Option<Shards>,
}

/// What the shards of a sharded checkpoint held so far: a shard's header cannot say whether a
/// tensor it lacks is in another shard, so the file-wide checks wait for the last one.
#[derive(Default)]
struct Shards {
    /// Values in the shards' headers (against the config: see `check_file_holds`).
    values: u128,
    /// The parameters some shard held, by key: a second is refused.
    found: HashSet<String>,
    /// Bytes of the shards that have ended.
    ended_bytes: u64,
}

impl ModelStream {
    /// Starts loading the architecture `config_json` describes onto `device`, its matrices
    /// stored as `weights` (which the device must support). A model over `max_model_bytes` (its
    /// weights as stored) is refused now, a tensor over `max_tensor_bytes` (as stored) from the
    /// file's header.
    pub fn new(
        config_json: &[u8],
        device: &Device,
        weights: WeightDtype,
        max_model_bytes: u64,
        max_tensor_bytes: u64,
    ) -> Result<Self> {
        if !weights.supported_on(device) {
            return Err(invalid!("this device cannot store weights as {}; use f32", weights.name()));
        }
        let config = ModelConfig::from_json(config_json)?;
        let need = config.weight_bytes(weights);
        if need > max_model_bytes as u128 {
            return Err(invalid!(
                "the model's weights need {} as {}, more than this device can hold ({})",
                human_bytes(need),
                weights.name(),
                human_bytes(max_model_bytes as u128)
            ));
        }
        // Lazy: no parameter is allocated until the file's tensor replaces it.
        let model = match &config {
            ModelConfig::Gpt2(c) => {
                c.validate()?;
                AnyModel::Gpt2(Box::new(c.init(device)))
            }
            ModelConfig::Bert(c) => {
                c.validate()?;
                AnyModel::Bert(Box::new(c.init(device)))
            }
            ModelConfig::Llama(c) => AnyModel::Llama(Box::new(c.init(device)?)),
            ModelConfig::ModernBert(c) => AnyModel::ModernBert(Box::new(c.init(device)?)),
        };
        let uploads = Uploads {
            layout: Layout::of(&model),
            model: Some(model),
            config,
            device: device.clone(),
            max_tensor_bytes,
            max_in_flight_bytes: u64::MAX,
            weights,
            tensors: HashMap::new(),
            uploaded: 0,
            shards: None,
        };
        Ok(Self { stream: TensorStream::new(), uploads })
    }

    /// Refuses, from the header, a tensor whose bytes in the file exceed `bytes`: what the
    /// caller can hold of one tensor while it arrives (no limit unless set).
    pub fn with_in_flight_limit(mut self, bytes: u64) -> Self {
        self.uploads.max_in_flight_bytes = bytes;
        self
    }

    /// The weights come as several files (the shards an index names), pushed one after the
    /// other with [`ModelStream::end_shard`] between them.
    pub fn sharded(mut self) -> Self {
        self.uploads.shards = Some(Shards::default());
        self
    }

    /// Takes the next bytes of `model.safetensors` (or of the current shard).
    pub fn push(&mut self, chunk: &[u8]) -> Result<()> {
        self.stream.push(chunk, &mut self.uploads)
    }

    /// Ends the current shard, which must be complete; the next push starts the next one.
    pub fn end_shard(&mut self) -> Result<()> {
        let Some(shards) = &mut self.uploads.shards else {
            return Err(invalid!("end_shard on a stream that is not sharded"));
        };
        self.stream.finish()?;
        shards.ended_bytes = shards.ended_bytes.saturating_add(self.stream.received());
        self.stream = TensorStream::new();
        Ok(())
    }

    /// Bytes received so far of the current file (shard), and its length once its header has
    /// said it.
    pub fn progress(&self) -> (u64, Option<u64>) {
        (self.stream.received(), self.stream.expected_len())
    }

    /// Bytes received so far of every file (all shards).
    pub fn received_bytes(&self) -> u64 {
        let ended = self.uploads.shards.as_ref().map_or(0, |s| s.ended_bytes);
        ended.saturating_add(self.stream.received())
    }

    /// Bytes on the device so far (the weights as stored).
    pub fn uploaded_bytes(&self) -> u64 {
        self.uploads.uploaded
    }

    /// The model, once the whole file has arrived.
    pub fn finish(mut self) -> Result<AnyModel> {
        self.stream.finish()?;
        if let Some(shards) = &self.uploads.shards {
            check_file_holds(&self.uploads.config, shards.values)?;
        }
        let model = self.uploads.model.take().expect("finish is called once");
        let (tensors, layout, device, weights) =
            (self.uploads.tensors, self.uploads.layout, self.uploads.device, self.uploads.weights);
        Ok(match model {
            AnyModel::Gpt2(m) => {
                AnyModel::Gpt2(Box::new(load_module_from_tensors(*m, tensors, layout, &device, weights)?))
            }
            AnyModel::Bert(m) => {
                AnyModel::Bert(Box::new(load_module_from_tensors(*m, tensors, layout, &device, weights)?))
            }
            AnyModel::Llama(m) => {
                AnyModel::Llama(Box::new(load_module_from_tensors(*m, tensors, layout, &device, weights)?))
            }
            AnyModel::ModernBert(m) => AnyModel::ModernBert(Box::new(load_module_from_tensors(
                *m, tensors, layout, &device, weights,
            )?)),
        })
    }
}

impl Uploads {
    /// A tensor the model needs: its shape the parameter's, a float dtype, within the device's
    /// binding and what can be held while it arrives.
    fn check(&self, name: &str, info: &TensorInfo, shape: Vec<usize>) -> Result<()> {
        if info.shape != shape {
            return Err(Error::ShapeMismatch { key: name.to_string(), got: info.shape.clone(), want: shape });
        }
        burn_dtype(name, info.dtype)?;
        let stored = self.weights.for_rank(shape.len());
        let bytes = (shape.iter().product::<usize>() as u128).saturating_mul(stored.bytes());
        if bytes > self.max_tensor_bytes as u128 {
            return Err(invalid!(
                "tensor `{name}` needs {} as {}, more than this device holds in one buffer ({})",
                human_bytes(bytes),
                stored.name(),
                human_bytes(self.max_tensor_bytes as u128)
            ));
        }
        if info.byte_len() > self.max_in_flight_bytes {
            return Err(invalid!(
                "tensor `{name}` is {} in the file, more than the {} that can be held while it arrives",
                human_bytes(info.byte_len() as u128),
                human_bytes(self.max_in_flight_bytes as u128)
            ));
        }
        Ok(())
    }
}

impl TensorSink for Uploads {
    fn header(&mut self, tensors: &[(String, TensorInfo)]) -> Result<Vec<bool>> {
        let elements = tensors
            .iter()
            .map(|(_, info)| info.shape.iter().fold(1u128, |n, &d| n.saturating_mul(d as u128)))
            .fold(0u128, u128::saturating_add);
        match &mut self.shards {
            Some(shards) => shards.values = shards.values.saturating_add(elements),
            None => check_file_holds(&self.config, elements)?,
        }
        let index: HashMap<&str, usize> =
            tensors.iter().enumerate().map(|(i, (n, _))| (n.as_str(), i)).collect();
        let mut keep = vec![false; tensors.len()];
        let model = self.model.as_ref().expect("the header arrives before finish");
        let params = match model {
            AnyModel::Gpt2(m) => stored_parameters(m.as_ref(), self.layout),
            AnyModel::Bert(m) => stored_parameters(m.as_ref(), self.layout),
            AnyModel::Llama(m) => stored_parameters(m.as_ref(), self.layout),
            AnyModel::ModernBert(m) => stored_parameters(m.as_ref(), self.layout),
        };
        for param in params {
            let Some(&i) = param.candidates.iter().find_map(|k| index.get(k.as_str())) else {
                if self.shards.is_some() {
                    // In another shard, or missing: `finish` names it if no shard had it.
                    continue;
                }
                return Err(Error::MissingTensor(param.key));
            };
            let (name, info) = &tensors[i];
            if let Some(shards) = &mut self.shards {
                if !shards.found.insert(param.key.clone()) {
                    let name: String = name.chars().take(120).collect();
                    return Err(Error::Safetensors(format!("tensor `{name}` is in two shards")));
                }
            }
            self.check(name, info, param.shape)?;
            keep[i] = true;
        }
        Ok(keep)
    }

    fn tensor(&mut self, name: &str, info: &TensorInfo, bytes: Vec<u8>) -> Result<()> {
        let n = info.shape.iter().product::<usize>();
        let data = TensorData::try_from_bytes_vec(bytes, [n], burn_dtype(name, info.dtype)?)
            .map_err(|e| Error::Safetensors(format!("tensor `{name}`: {e}")))?;
        // Converted on the way to the dtype the model stores it in (f16/bf16/f64 files too).
        let stored = self.weights.for_rank(info.shape.len());
        let tensor = Tensor::<1>::from_data(data, (&self.device, stored.dtype()));
        self.uploaded += n as u64 * stored.bytes() as u64;
        self.tensors.insert(name.to_string(), (info.shape.clone(), tensor));
        Ok(())
    }
}

/// The Burn dtype of a float tensor in the file; anything else is refused.
fn burn_dtype(name: &str, dtype: Dtype) -> Result<DType> {
    match dtype {
        Dtype::F32 => Ok(DType::F32),
        Dtype::F16 => Ok(DType::F16),
        Dtype::BF16 => Ok(DType::BF16),
        Dtype::F64 => Ok(DType::F64),
        other => {
            Err(Error::Safetensors(format!("tensor `{name}` has dtype {other:?}; expected a float type")))
        }
    }
}
