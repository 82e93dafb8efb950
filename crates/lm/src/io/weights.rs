//! Reading and writing Hugging Face `model.safetensors` bytes, and mapping them onto Burn
//! modules by parameter path.
//!
//! Our module fields follow the checkpoint keys (`transformer.h.0.attn.c_attn.weight`), so one
//! path-driven mapper loads and one visitor exports both architectures; [`Layout`] holds the
//! few differences (Burn's `gamma`/`beta` names, Rust-forbidden names, weight orientation).

use std::collections::{BTreeMap, HashMap};

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::{Device, FloatDType, Shape, Tensor, TensorData};
use safetensors::{Dtype, SafeTensors};

use super::writer::Writer;
use crate::error::{Error, Result};
use crate::model::precision::WeightDtype;
use crate::model::AnyModel;

/// How an architecture's Burn parameter paths relate to its Hugging Face keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// GPT-2: `Conv1D` weights are stored `[in, out]`, as Burn's `Linear` keeps them.
    Gpt2,
    /// BERT: `nn.Linear` weights are stored `[out, in]` and must be transposed.
    Bert,
    /// The Llama family: `nn.Linear` too; keys as the module fields name them.
    Llama,
    /// ModernBERT: `nn.Linear`; `Wqkv`, `Wo` and `Wi` spelled in lower case by the fields.
    ModernBert,
}

impl Layout {
    /// The layout of a model's architecture.
    pub fn of(model: &AnyModel) -> Layout {
        match model {
            AnyModel::Gpt2(_) => Layout::Gpt2,
            AnyModel::Bert(_) => Layout::Bert,
            AnyModel::Llama(_) => Layout::Llama,
            AnyModel::ModernBert(_) => Layout::ModernBert,
        }
    }

    /// The Hugging Face key of a Burn parameter path.
    pub fn hf_key(self, burn_path: &str) -> String {
        burn_path
            .split('.')
            .map(|part| match part {
                "gamma" => "weight",
                "beta" => "bias",
                "layer_norm" if self == Layout::Bert => "LayerNorm",
                "self_attn" if self == Layout::Bert => "self",
                "wqkv" if self == Layout::ModernBert => "Wqkv",
                "wo" if self == Layout::ModernBert => "Wo",
                "wi" if self == Layout::ModernBert => "Wi",
                other => other,
            })
            .collect::<Vec<_>>()
            .join(".")
    }

    /// Keys under which a checkpoint may hold `key`: HF's hub checkpoints of GPT-2 have no
    /// `transformer.` prefix, bare `BertModel` checkpoints no `bert.` prefix, and the original
    /// BERT release names LayerNorm parameters `gamma`/`beta`.
    fn candidates(self, key: &str) -> Vec<String> {
        let mut keys = vec![key.to_string()];
        if let Some((first, rest)) = key.split_once('.') {
            if matches!(first, "transformer" | "bert") {
                keys.push(rest.to_string());
            }
        }
        if self == Layout::Bert && key.contains("LayerNorm.") {
            let legacy: Vec<String> = keys
                .iter()
                .map(|k| {
                    k.replace("LayerNorm.weight", "LayerNorm.gamma")
                        .replace("LayerNorm.bias", "LayerNorm.beta")
                })
                .collect();
            keys.extend(legacy);
        }
        keys
    }

    fn transposes(self, container: &str) -> bool {
        matches!(self, Layout::Bert | Layout::Llama | Layout::ModernBert) && container == "Struct:Linear"
    }
}

/// The Burn path of the parameter a visitor or mapper is at, with the type of the module
/// holding it: what turns a parameter into its Hugging Face key and orientation.
#[derive(Debug, Default)]
pub(crate) struct ParamPath(Vec<(String, String)>);

impl ParamPath {
    pub(crate) fn enter(&mut self, name: &str, container_type: &str) {
        self.0.push((name.to_string(), container_type.to_string()));
    }

    pub(crate) fn exit(&mut self) {
        self.0.pop();
    }

    /// The Hugging Face key of the current parameter.
    pub(crate) fn key(&self, layout: Layout) -> String {
        let parts: Vec<&str> = self.0.iter().map(|(n, _)| n.as_str()).collect();
        layout.hf_key(&parts.join("."))
    }

    /// Whether the current parameter is stored transposed in the checkpoint.
    fn transposed<const D: usize>(&self, layout: Layout) -> bool {
        D == 2 && layout.transposes(self.0.last().map_or("", |(_, c)| c.as_str()))
    }
}

/// A tensor as a checkpoint holds it: `(key, shape, row-major f32 values)`.
pub type NamedTensor = (String, Vec<usize>, Vec<f32>);

/// A parsed safetensors file, or the shards of one checkpoint (`model-00001-of-00003.safetensors`
/// …) read as one; tensors are converted to f32 only when a module asks for them.
pub struct SafetensorsFile<'a> {
    shards: Vec<SafeTensors<'a>>,
}

impl<'a> SafetensorsFile<'a> {
    /// Parses the header; fails with a clear message on anything that is not safetensors.
    pub fn parse(bytes: &'a [u8]) -> Result<Self> {
        Self::parse_shards(&[bytes])
    }

    /// Parses every shard's header. A tensor name in two shards is an error: which one a module
    /// got would depend on the order the files were given in.
    pub fn parse_shards(shards: &[&'a [u8]]) -> Result<Self> {
        let shards = shards
            .iter()
            .enumerate()
            .map(|(i, bytes)| {
                SafeTensors::deserialize(bytes).map_err(|e| {
                    let which = if shards.len() > 1 { format!("shard {}: ", i + 1) } else { String::new() };
                    Error::Safetensors(format!("{which}{e}"))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let file = Self { shards };
        let names = file.names();
        if let Some(pair) = names.windows(2).find(|w| w[0] == w[1]) {
            let name: String = pair[0].chars().take(120).collect();
            return Err(Error::Safetensors(format!("tensor `{name}` is in two shards")));
        }
        Ok(file)
    }

    /// Every tensor name in the file (all shards), sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> =
            self.shards.iter().flat_map(|s| s.names().into_iter().map(String::from)).collect();
        names.sort();
        names
    }

    fn view(&self, name: &str) -> Option<safetensors::tensor::TensorView<'_>> {
        self.shards.iter().find_map(|s| s.tensor(name).ok())
    }

    /// Values in all tensors together (saturating; a header can claim any shape).
    pub fn total_elements(&self) -> u128 {
        self.shards
            .iter()
            .flat_map(|s| s.tensors())
            .map(|(_, view)| view.shape().iter().fold(1u128, |n, &d| n.saturating_mul(d as u128)))
            .fold(0u128, u128::saturating_add)
    }

    /// The first tensor that is not stored as f32, with its dtype (optimizer state must be f32).
    pub fn first_non_f32(&self) -> Option<(String, String)> {
        self.names().into_iter().find_map(|name| {
            let dtype = self.view(&name)?.dtype();
            (dtype != Dtype::F32).then(|| (name, format!("{dtype:?}")))
        })
    }

    /// Every tensor, converted to f32, sorted by name.
    pub fn all_f32(&self) -> Result<Vec<NamedTensor>> {
        self.names()
            .into_iter()
            .map(|name| {
                let view =
                    self.view(&name).ok_or_else(|| Error::Safetensors(format!("`{name}` vanished")))?;
                let values = to_f32(&name, view.dtype(), view.data())?;
                Ok((name, view.shape().to_vec(), values))
            })
            .collect()
    }

    /// The first of `keys` present, as `(key, shape, f32 values)`.
    fn find(&self, keys: &[String]) -> Option<Result<NamedTensor>> {
        let (key, view) = keys.iter().find_map(|k| self.view(k).map(|v| (k, v)))?;
        Some(
            to_f32(key, view.dtype(), view.data()).map(|values| (key.clone(), view.shape().to_vec(), values)),
        )
    }
}

fn to_f32(key: &str, dtype: Dtype, data: &[u8]) -> Result<Vec<f32>> {
    let values = match dtype {
        Dtype::F32 => data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
        Dtype::F16 => data.chunks_exact(2).map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
        Dtype::BF16 => {
            data.chunks_exact(2).map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32()).collect()
        }
        Dtype::F64 => data
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().expect("chunks of 8")) as f32)
            .collect(),
        other => {
            return Err(Error::Safetensors(format!(
                "tensor `{key}` has dtype {other:?}; expected a float type"
            )))
        }
    };
    Ok(values)
}

/// Where [`Loader`] takes each parameter's tensor from.
enum Source<'a, 'b> {
    /// A whole file in memory: a tensor is converted to f32 when its parameter asks for it.
    File(&'b SafetensorsFile<'a>),
    /// Tensors already on the device (a file streamed tensor by tensor), flattened, under their
    /// file keys, with the shape the file gave them.
    Uploaded(HashMap<String, (Vec<usize>, Tensor<1>)>),
}

impl Source<'_, '_> {
    /// The first of `keys` the source holds, as `(key, stored shape, flattened tensor)`.
    fn take(
        &mut self,
        keys: &[String],
        device: &Device,
        weights: WeightDtype,
    ) -> Option<Result<(String, Vec<usize>, Tensor<1>)>> {
        match self {
            Source::File(file) => file.find(keys).map(|found| {
                found.map(|(key, shape, values)| {
                    let n = values.len();
                    // Converted on the way to the device, so an f16 model never has an f32 copy there.
                    let dtype = weights.for_rank(shape.len()).dtype();
                    (key, shape, Tensor::<1>::from_data(TensorData::new(values, [n]), (device, dtype)))
                })
            }),
            Source::Uploaded(tensors) => keys
                .iter()
                .find_map(|k| tensors.remove_entry(k))
                .map(|(key, (shape, tensor))| Ok((key, shape, tensor))),
        }
    }
}

/// Replaces every float parameter of a freshly initialised module with the checkpoint's tensor.
/// The module's parameters are lazy: they are never initialised, only replaced.
struct Loader<'a, 'b> {
    source: Source<'a, 'b>,
    layout: Layout,
    device: Device,
    /// The storage of matrices; vectors are always f32.
    weights: WeightDtype,
    path: ParamPath,
    error: Option<Error>,
}

impl ModuleMapper for Loader<'_, '_> {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path.enter(name, container_type);
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.exit();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        if self.error.is_some() {
            return param;
        }
        let key = self.path.key(self.layout);
        let transpose = self.path.transposed::<D>(self.layout);
        let stored_shape = stored_shape(param.lazy_shape().to_vec(), transpose);

        match self.source.take(&self.layout.candidates(&key), &self.device, self.weights) {
            None => {
                self.error = Some(Error::MissingTensor(key));
                param
            }
            Some(Err(e)) => {
                self.error = Some(e);
                param
            }
            Some(Ok((found, shape, tensor))) => {
                if shape != stored_shape {
                    self.error = Some(Error::ShapeMismatch { key: found, got: shape, want: stored_shape });
                    return param;
                }
                let tensor = tensor.reshape::<D, _>(Shape::from(stored_shape));
                let tensor = if transpose { tensor.transpose() } else { tensor };
                // A no-op for what the source already made in this dtype.
                let tensor = tensor.cast(self.weights.for_rank(D).float());
                Param::from_tensor(tensor)
            }
        }
    }
}

/// The shape a checkpoint stores a parameter of shape `want` in.
fn stored_shape(want: Vec<usize>, transposed: bool) -> Vec<usize> {
    if transposed {
        vec![want[1], want[0]]
    } else {
        want
    }
}

/// Loads every float parameter of `module` from `file`, erroring on the first missing or
/// mis-shaped tensor (named by its Hugging Face key).
pub fn load_module<M: Module>(
    module: M,
    file: &SafetensorsFile<'_>,
    layout: Layout,
    device: &Device,
    weights: WeightDtype,
) -> Result<M> {
    load_from(module, Source::File(file), layout, device, weights)
}

/// Loads every float parameter of `module` from tensors already on `device`, keyed as the file
/// that held them (see [`stored_parameters`] for which ones a module needs).
pub fn load_module_from_tensors<M: Module>(
    module: M,
    tensors: HashMap<String, (Vec<usize>, Tensor<1>)>,
    layout: Layout,
    device: &Device,
    weights: WeightDtype,
) -> Result<M> {
    load_from(module, Source::Uploaded(tensors), layout, device, weights)
}

fn load_from<M: Module>(
    module: M,
    source: Source<'_, '_>,
    layout: Layout,
    device: &Device,
    weights: WeightDtype,
) -> Result<M> {
    let mut loader =
        Loader { source, layout, device: device.clone(), weights, path: ParamPath::default(), error: None };
    let module = module.map(&mut loader);
    match loader.error {
        Some(e) => Err(e),
        None => Ok(module),
    }
}

/// Every float parameter of a module as a checkpoint stores it: its Hugging Face key, the keys
/// a file may hold it under, and its shape there. Read from the parameters' declared shapes,
/// so a freshly initialised (lazy) module allocates nothing.
struct Stored {
    layout: Layout,
    path: ParamPath,
    params: Vec<StoredParameter>,
}

/// One parameter of [`stored_parameters`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredParameter {
    pub key: String,
    pub candidates: Vec<String>,
    pub shape: Vec<usize>,
    /// Stored as the transpose of the module's `[in, out]` matrix (`nn.Linear`'s `[out, in]`).
    pub transposed: bool,
}

impl ModuleVisitor for Stored {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path.enter(name, container_type);
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.exit();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let key = self.path.key(self.layout);
        let transposed = self.path.transposed::<D>(self.layout);
        let shape = stored_shape(param.lazy_shape().to_vec(), transposed);
        let candidates = self.layout.candidates(&key);
        self.params.push(StoredParameter { key, candidates, shape, transposed });
    }
}

/// What loading `module` will ask a checkpoint for, parameter by parameter.
pub fn stored_parameters<M: Module>(module: &M, layout: Layout) -> Vec<StoredParameter> {
    let mut stored = Stored { layout, path: ParamPath::default(), params: Vec::new() };
    module.visit(&mut stored);
    stored.params
}

/// A parameter read later, one at a time: its value in checkpoint layout (f32, transposed where
/// the layout wants it, flattened), computed on the device only when it is read, so an export
/// never holds a second copy of the whole model.
type Deferred = Box<dyn FnOnce() -> Tensor<1>>;

/// Collects every float parameter under its Hugging Face key, with its shape in the file, so one
/// map holds tensors of every rank.
struct Exporter {
    layout: Layout,
    path: ParamPath,
    tensors: BTreeMap<String, (Vec<usize>, Deferred)>,
}

impl ModuleVisitor for Exporter {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.path.enter(name, container_type);
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.exit();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let key = self.path.key(self.layout);
        let transposed = self.path.transposed::<D>(self.layout);
        let shape = stored_shape(param.lazy_shape().to_vec(), transposed);
        let n = shape.iter().product::<usize>();
        let value = param.val();
        let read = move || {
            // Files are written in f32 whatever the model's storage.
            let value = value.cast(FloatDType::F32);
            let value = if transposed { value.transpose() } else { value };
            value.reshape([n])
        };
        self.tensors.insert(key, (shape, Box::new(read)));
    }
}

fn exporter<M: Module>(module: &M, layout: Layout) -> Exporter {
    let mut exporter = Exporter { layout, path: ParamPath::default(), tensors: BTreeMap::new() };
    module.visit(&mut exporter);
    exporter
}

/// Every float parameter's Hugging Face key and element count: what a checkpoint's optimizer
/// state is checked against.
pub fn parameter_sizes<M: Module>(module: &M, layout: Layout) -> BTreeMap<String, usize> {
    stored_parameters(module, layout).into_iter().map(|p| (p.key, p.shape.iter().product())).collect()
}

/// Every float parameter of `module` as `(hf_key, shape, values)`, read asynchronously (the
/// only way WebGPU can), sorted by key.
pub async fn export_tensors<M: Module>(module: &M, layout: Layout) -> Result<Vec<NamedTensor>> {
    let exporter = exporter(module, layout);
    let mut out = Vec::with_capacity(exporter.tensors.len());
    for (key, (shape, read)) in exporter.tensors {
        let values = crate::tensor::read_f32(read()).await?;
        out.push((key, shape, values));
    }
    Ok(out)
}

/// `module`'s weights as a safetensors file, written tensor by tensor: the file plus one tensor
/// at a time in memory (see `io::writer`).
pub async fn module_safetensors<M: Module>(module: &M, layout: Layout) -> Result<Vec<u8>> {
    let exporter = exporter(module, layout);
    let entries: Vec<(String, Vec<usize>)> =
        exporter.tensors.iter().map(|(k, (shape, _))| (k.clone(), shape.clone())).collect();
    let mut writer = Writer::new(&entries, PT)?;
    // The writer's order is the names sorted, as the map's.
    for (_, (_, read)) in exporter.tensors {
        push_tensor(&mut writer, read()).await?;
    }
    writer.finish()
}

/// Reads one tensor from the device and appends it: its host copy lives only for the call.
pub async fn push_tensor(writer: &mut Writer, tensor: Tensor<1>) -> Result<()> {
    let data = tensor.into_data_async().await.map_err(|e| Error::Backend(format!("{e:?}")))?;
    let values = data.as_slice::<f32>().map_err(|e| Error::Backend(format!("{e:?}")))?;
    writer.push(values)
}

/// The metadata `transformers` expects in a safetensors file.
pub const PT: &[(&str, &str)] = &[("format", "pt")];

/// Serialises named f32 tensors as safetensors bytes with the `{"format": "pt"}` metadata
/// `transformers` expects.
pub fn to_safetensors(tensors: &[NamedTensor]) -> Result<Vec<u8>> {
    let entries: Vec<(String, Vec<usize>)> = tensors.iter().map(|(k, s, _)| (k.clone(), s.clone())).collect();
    let mut writer = Writer::new(&entries, PT)?;
    let by_name: BTreeMap<&str, &[f32]> =
        tensors.iter().map(|(k, _, v)| (k.as_str(), v.as_slice())).collect();
    let order: Vec<String> = writer.order().map(String::from).collect();
    for name in order {
        writer.push(by_name.get(name.as_str()).copied().unwrap_or_default())?;
    }
    writer.finish()
}
