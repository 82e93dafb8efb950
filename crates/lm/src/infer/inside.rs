//! What happens inside the model for one text: the attention weights of every layer and head
//! (as `transformers`' `output_attentions=True`), and the logit lens — the token the residual
//! stream would predict if decoding stopped after each layer.
//!
//! Every function computes on the model's device and reads back once: a view of GPT-2 124M
//! needs one layer (12 heads × T²) or one query row, never the whole stack.

use burn::tensor::{Int, Tensor};

use crate::error::{invalid, Result};
use crate::model::check_ids;
use crate::model::gpt2::Gpt2LMHeadModel;
use crate::model::llama::LlamaForCausalLM;
use crate::model::masked::MaskedLm;
use crate::model::modernbert::config::LayerType;
use crate::model::AnyModel;
use crate::tensor::{check_float_ids, ids_tensor, int_tensor, read_f32, top_k_pairs, top_k_rows};

/// `[layer][head][query][key]`.
pub type Attentions = Vec<Vec<Vec<Vec<f32>>>>;

/// One cell of the logit lens: the `k` most probable next tokens after a layer, at a position.
pub type LensCell = Vec<(u32, f64)>;

fn check_text(ids: &[u32], vocab: usize, max: usize) -> Result<()> {
    if ids.is_empty() {
        return Err(invalid!("the text has no tokens"));
    }
    if ids.len() > max {
        return Err(invalid!("the text has {} tokens; the model sees at most {max}", ids.len()));
    }
    check_ids(ids, vocab)
}

/// The model's context: the longest text these views take.
pub fn max_tokens(model: &AnyModel) -> usize {
    match model {
        AnyModel::Gpt2(m) => m.config().n_positions,
        AnyModel::Bert(m) => m.config().max_position_embeddings,
        AnyModel::Llama(m) => m.config().max_position_embeddings,
        AnyModel::ModernBert(m) => m.config().max_position_embeddings,
    }
}

/// Layers and heads per layer.
pub fn shape(model: &AnyModel) -> (usize, usize) {
    match model {
        AnyModel::Gpt2(m) => (m.config().n_layer, m.config().n_head),
        AnyModel::Bert(m) => (m.config().num_hidden_layers, m.config().num_attention_heads),
        AnyModel::Llama(m) => (m.config().num_hidden_layers, m.config().num_attention_heads),
        AnyModel::ModernBert(m) => (m.config().num_hidden_layers, m.config().num_attention_heads),
    }
}

/// Each layer's attention window: `Some(half)` for a ModernBERT local layer, whose tokens see only
/// the keys within `half` positions of them, `None` for a layer that sees every key (all of
/// them in the other architectures).
pub fn windows(model: &AnyModel) -> Vec<Option<usize>> {
    match model {
        AnyModel::ModernBert(m) => {
            let half = m.config().half_window();
            m.layer_types().into_iter().map(|k| (k == LayerType::Local).then_some(half)).collect()
        }
        _ => vec![None; shape(model).0],
    }
}

/// Every layer's attention weights for `ids` as device tensors, `[1, nh, t, t]` each (GPT-2:
/// causal, so row `q` is 0 after `q`; the encoders: one sentence without padding, a ModernBERT
/// local layer 0 outside its window).
fn layer_probs(model: &AnyModel, ids: &[u32]) -> Result<Vec<Tensor<4>>> {
    check_text(ids, model.vocab_size(), max_tokens(model))?;
    let device = model.device();
    Ok(match model {
        AnyModel::Gpt2(m) => m.inside(ids_tensor(ids, &device)).attentions,
        AnyModel::Llama(m) => m.inside(ids_tensor(ids, &device)).attentions,
        AnyModel::Bert(_) | AnyModel::ModernBert(_) => {
            let m = model.masked().expect("an encoder");
            m.attentions(ids_tensor(ids, &device), Tensor::<2, Int>::ones([1, ids.len()], &device))
        }
    })
}

/// `values` (row-major `[a][b][c][d]`) as nested vectors.
fn nest4(values: &[f32], [a, b, c, d]: [usize; 4]) -> Attentions {
    (0..a)
        .map(|i| {
            (0..b)
                .map(|j| (0..c).map(|k| values[((i * b + j) * c + k) * d..][..d].to_vec()).collect())
                .collect()
        })
        .collect()
}

/// The attention weights of every layer and head for `ids`.
pub async fn attentions(model: &AnyModel, ids: &[u32]) -> Result<Attentions> {
    let layers = layer_probs(model, ids)?;
    let [_, nh, t, s] = layers[0].dims();
    let n = layers.len();
    let values = read_f32(Tensor::cat(layers, 0)).await?;
    Ok(nest4(&values, [n, nh, t, s]))
}

/// One layer's attention weights, `[head][query][key]`: what the heatmap of a layer shows.
pub async fn attention_layer(model: &AnyModel, ids: &[u32], layer: usize) -> Result<Vec<Vec<Vec<f32>>>> {
    read_layer(layer_probs(model, ids)?, layer).await
}

/// Reads back layer `layer` of `layers` as `[head][query][key]`.
async fn read_layer(mut layers: Vec<Tensor<4>>, layer: usize) -> Result<Vec<Vec<Vec<f32>>>> {
    if layer >= layers.len() {
        return Err(invalid!("layer {layer} does not exist: the model has {} layers", layers.len()));
    }
    let probs = layers.swap_remove(layer);
    let [_, nh, t, s] = probs.dims();
    let values = read_f32(probs).await?;
    Ok(nest4(&values, [1, nh, t, s]).remove(0))
}

/// Where the token at `query` attends in every layer and head: `[layer][head][key]`.
pub async fn attention_from(model: &AnyModel, ids: &[u32], query: usize) -> Result<Vec<Vec<Vec<f32>>>> {
    let layers = layer_probs(model, ids)?;
    if query >= ids.len() {
        return Err(invalid!("token {query} does not exist: the text has {} tokens", ids.len()));
    }
    let [_, nh, _, s] = layers[0].dims();
    let n = layers.len();
    let rows: Vec<Tensor<4>> = layers.into_iter().map(|p| p.narrow(2, query, 1)).collect();
    let values = read_f32(Tensor::cat(rows, 0)).await?;
    Ok(nest4(&values, [n, nh, 1, s])
        .into_iter()
        .map(|l| l.into_iter().map(|mut h| h.remove(0)).collect())
        .collect())
}

/// A masked LM's attention weights for a padded batch: `[row][layer][head][query][key]`. Rows
/// shorter than the longest are padded with the model's pad id and masked, as a tokenizer's
/// padding does.
pub async fn encoder_attentions(model: &dyn MaskedLm, rows: &[Vec<u32>]) -> Result<Vec<Attentions>> {
    let t = rows.iter().map(Vec::len).max().unwrap_or(0);
    let layers = encoder_padded(model, rows, t)?;
    let n = layers.len();
    let b = rows.len();
    let [_, nh, _, _] = layers[0].dims();
    // [layer, b, nh, t, t] in one read.
    let values = read_f32(Tensor::cat(layers, 0)).await?;
    let all = nest4(&values, [n * b, nh, t, t]);
    Ok((0..b).map(|row| (0..n).map(|l| all[l * b + row].clone()).collect()).collect())
}

/// One layer of a masked LM's attention for `ids` followed by `pad` padding tokens that the
/// attention mask hides, as in a padded batch: `[head][query][key]`, every padding key weighted 0.
pub async fn encoder_attention_padded(
    model: &dyn MaskedLm,
    ids: &[u32],
    pad: usize,
    layer: usize,
) -> Result<Vec<Vec<Vec<f32>>>> {
    let t = ids.len().saturating_add(pad);
    let max = model.context();
    if t > max {
        return Err(invalid!("the text and its padding are {t} tokens; the model sees at most {max}"));
    }
    read_layer(encoder_padded(model, &[ids.to_vec()], t)?, layer).await
}

/// Every layer's attention tensors for `rows` padded to `t` tokens.
fn encoder_padded(model: &dyn MaskedLm, rows: &[Vec<u32>], t: usize) -> Result<Vec<Tensor<4>>> {
    for row in rows {
        check_text(row, model.vocab_size(), model.context())?;
    }
    let b = rows.len();
    let pad = model.pad_id();
    let ids: Vec<u32> =
        rows.iter().flat_map(|r| r.iter().copied().chain(std::iter::repeat_n(pad, t - r.len()))).collect();
    let keep: Vec<u32> = rows.iter().flat_map(|r| (0..t).map(move |i| u32::from(i < r.len()))).collect();
    let device = model.device();
    Ok(model.attentions(int_tensor(&ids, [b, t], &device), int_tensor(&keep, [b, t], &device)))
}

/// The logit lens of a GPT-2: `[layer][position]` → the `top_k` next tokens with their
/// probabilities, decoding each layer's residual stream with the final LayerNorm and the tied
/// unembedding. The last layer's cells are the model's own predictions. The top-k is taken on
/// the device, so one read brings back `layers × positions × 2k` numbers, not the vocabulary.
pub async fn logit_lens(model: &Gpt2LMHeadModel, ids: &[u32], top_k: usize) -> Result<Vec<Vec<LensCell>>> {
    check_text(ids, model.config().vocab_size, model.config().n_positions)?;
    let inside = model.inside(ids_tensor(ids, &model.device()));
    lens_of(inside.residuals, |r| model.decode_residual(r), ids.len(), model.config().vocab_size, top_k).await
}

/// The logit lens of any decoder (GPT-2 or the Llama family); a BERT has no next token to lens.
pub async fn logit_lens_of(model: &AnyModel, ids: &[u32], top_k: usize) -> Result<Vec<Vec<LensCell>>> {
    match model {
        AnyModel::Gpt2(m) => logit_lens(m, ids, top_k).await,
        AnyModel::Llama(m) => logit_lens_llama(m, ids, top_k).await,
        AnyModel::Bert(_) | AnyModel::ModernBert(_) => Err(invalid!(
            "the logit lens needs a causal model (GPT-2, Llama, Qwen); this is a masked LM ({})",
            model.config().architecture()
        )),
    }
}

/// The logit lens of a Llama-family decoder: each layer's residual stream through the final
/// RMSNorm and the output projection.
pub async fn logit_lens_llama(
    model: &LlamaForCausalLM,
    ids: &[u32],
    top_k: usize,
) -> Result<Vec<Vec<LensCell>>> {
    let c = model.config();
    check_text(ids, c.vocab_size, c.max_position_embeddings)?;
    let inside = model.inside(ids_tensor(ids, &model.device()));
    lens_of(inside.residuals, |r| model.decode_residual(r), ids.len(), c.vocab_size, top_k).await
}

/// The top `top_k` tokens of every residual stream decoded by `decode`, layer by position.
async fn lens_of(
    residuals: Vec<Tensor<3>>,
    decode: impl Fn(Tensor<3>) -> Tensor<3>,
    t: usize,
    vocab: usize,
    top_k: usize,
) -> Result<Vec<Vec<LensCell>>> {
    check_float_ids(vocab)?;
    if top_k == 0 || top_k > vocab {
        return Err(invalid!("--top-k must be between 1 and the vocabulary's {vocab} tokens, got {top_k}"));
    }
    let n = residuals.len();
    let cells: Vec<Tensor<2>> =
        residuals.into_iter().map(|r| top_k_rows(decode(r).reshape([t, vocab]), top_k)).collect();
    let values = read_f32(Tensor::cat(cells, 0)).await?;
    let rows: Vec<LensCell> = values.chunks(2 * top_k).map(top_k_pairs).collect();
    Ok((0..n).map(|l| rows[l * t..(l + 1) * t].to_vec()).collect())
}
