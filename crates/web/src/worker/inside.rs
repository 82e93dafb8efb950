//! The inside-the-model views: attention, logit lens, surprisal, embedding neighbours and the
//! projection, each computed on the worker's device with one read back, and the check of all of
//! them against the CPU backend.

use hearth_lm::infer::embeddings::{most_frequent, nearest, projection, token_id};
use hearth_lm::infer::inside::{
    attention_from, attention_layer, attentions, encoder_attention_padded, logit_lens_of, max_tokens, shape,
};
use hearth_lm::infer::surprisal::surprisal;
use hearth_lm::{AnyModel, Tokenizer};

use super::infer::{candidates, compared, loaded, on_cpu};
use super::state::LoadedModel;
use super::{emit, emit_error, state};
use crate::protocol::{Event, InsideQuery, InsideResult, InsideText, Placed, Slot, TokenScore, Topic};

/// The most a view lists or projects: what a person can read, and a bound on the work.
const MAX_TOP_K: usize = 20;
/// Tokens an attention map draws at most (a head is tokens² cells; 128² is already 16,384).
const MAX_MAP_TOKENS: usize = 128;
/// Positions the logit-lens grid shows at most.
const MAX_LENS_TOKENS: usize = 256;
const MAX_PROJECTED: usize = 1000;
/// Bytes of the pretrain corpus tokenized to count token frequencies.
const FREQUENCY_SAMPLE: usize = 1 << 20;

/// The text's ids and the tokens shown on the axes (GPT-2's byte-level tokens decoded, so a
/// space reads as a space).
fn tokens_of(model: &AnyModel, tokenizer: &Tokenizer, text: &str) -> Result<(Vec<u32>, Vec<String>), String> {
    let encoded = tokenizer.encode(text).map_err(|e| e.to_string())?;
    if encoded.ids.is_empty() {
        return Err("type a text to look inside".into());
    }
    let max = max_tokens(model);
    if encoded.ids.len() > max {
        return Err(format!("the text has {} tokens; the model sees at most {max}", encoded.ids.len()));
    }
    let tokens = match model {
        AnyModel::Gpt2(_) | AnyModel::Llama(_) => {
            encoded.ids.iter().map(|&id| tokenizer.decode(&[id]).unwrap_or_default()).collect()
        }
        AnyModel::Bert(_) | AnyModel::ModernBert(_) => encoded.tokens,
    };
    Ok((encoded.ids, tokens))
}

fn finite<'a>(values: impl IntoIterator<Item = &'a f32>) -> Result<(), String> {
    if values.into_iter().all(|v| v.is_finite()) {
        Ok(())
    } else {
        Err("the model produced NaN or infinite weights for this text (a diverged run?)".into())
    }
}

fn causal<'a>(model: &'a AnyModel, what: &str) -> Result<&'a dyn hearth_lm::model::causal::CausalLm, String> {
    model
        .causal()
        .ok_or_else(|| format!("{what} needs a causal model (GPT-2, Llama, Qwen); this is a BERT masked LM"))
}

fn top_k(k: usize) -> Result<usize, String> {
    if (1..=MAX_TOP_K).contains(&k) {
        Ok(k)
    } else {
        Err(format!("top-k must be between 1 and {MAX_TOP_K}, got {k}"))
    }
}

/// The tokens to project and whose frequencies chose them: the pretrain corpus's most frequent
/// tokens (the model trained here, or any model on the corpus loaded there), else the text's.
fn frequent_tokens(tokenizer: &Tokenizer, text_ids: &[u32], count: usize) -> (Vec<(u32, usize)>, String) {
    if let Some(corpus) = state::corpus() {
        let mut ids = Vec::new();
        let mut bytes = 0;
        for doc in corpus.corpus.documents() {
            if bytes >= FREQUENCY_SAMPLE {
                break;
            }
            let end = doc
                .char_indices()
                .map(|(i, _)| i)
                .find(|&i| i >= FREQUENCY_SAMPLE - bytes)
                .unwrap_or(doc.len());
            bytes += end;
            ids.extend(tokenizer.encode_ids(&doc[..end]).unwrap_or_default());
        }
        if ids.len() >= 3 {
            let frequent = most_frequent(ids, count);
            let what = if frequent.len() < count {
                format!("every distinct token of {} (the most frequent first)", corpus.name)
            } else {
                format!("the {count} most frequent tokens of {}", corpus.name)
            };
            return (frequent, what);
        }
    }
    (
        most_frequent(text_ids.iter().copied(), count),
        "the tokens of this text (load a corpus in Pretrain to project its most frequent tokens)".into(),
    )
}

async fn view(
    m: &LoadedModel,
    text: &str,
    query: &InsideQuery,
) -> Result<(InsideText, InsideResult), String> {
    let model = &m.model;
    let (ids, mut tokens) = tokens_of(model, &m.tokenizer, text)?;
    let (layers, heads) = shape(model);
    let mut padding = 0;
    let err = |e: hearth_lm::Error| e.to_string();
    let at_most = |max: usize, what: &str| {
        if ids.len() > max {
            Err(format!("the {what} shows at most {max} tokens; this text has {}: shorten it", ids.len()))
        } else {
            Ok(())
        }
    };
    match query {
        InsideQuery::Attention { .. } | InsideQuery::AttentionFrom { .. } => {
            at_most(MAX_MAP_TOKENS, "attention map")?
        }
        InsideQuery::Lens { .. } => at_most(MAX_LENS_TOKENS, "logit lens")?,
        _ => {}
    }
    let result = match query {
        InsideQuery::Attention { layer, pad } => {
            let heads = match model.masked() {
                Some(encoder) if *pad > 0 => {
                    padding = *pad;
                    let pad_token =
                        m.tokenizer.id_to_token(encoder.pad_id()).unwrap_or_else(|| "[PAD]".into());
                    tokens.extend(std::iter::repeat_n(pad_token, *pad));
                    encoder_attention_padded(encoder, &ids, *pad, *layer).await.map_err(err)?
                }
                _ => attention_layer(model, &ids, *layer).await.map_err(err)?,
            };
            finite(heads.iter().flatten().flatten())?;
            InsideResult::Attention { layer: *layer, heads }
        }
        InsideQuery::AttentionFrom { query } => {
            let layers = attention_from(model, &ids, *query).await.map_err(err)?;
            finite(layers.iter().flatten().flatten())?;
            InsideResult::AttentionFrom { query: *query, layers }
        }
        InsideQuery::Lens { top_k: k } => {
            let grid = logit_lens_of(model, &ids, top_k(*k)?).await.map_err(err)?;
            let cells = grid
                .into_iter()
                .map(|layer| {
                    layer
                        .into_iter()
                        .map(|cell| candidates(&m.tokenizer, cell.into_iter().map(|(id, p)| (id, p as f32))))
                        .collect()
                })
                .collect();
            InsideResult::Lens { cells }
        }
        InsideQuery::Surprisal { top_k: k } => {
            let scored = surprisal(causal(model, "surprisal")?, &ids, top_k(*k)?).await.map_err(err)?;
            let loss = scored.iter().map(|t| t.loss).sum::<f64>() / scored.len() as f64;
            let tokens = scored
                .into_iter()
                .zip(&tokens[1..])
                .map(|(t, token)| TokenScore {
                    token: token.clone(),
                    loss: t.loss,
                    prob: t.prob,
                    rank: t.rank,
                    top: candidates(&m.tokenizer, t.top.into_iter().map(|(id, p)| (id, p as f32))),
                })
                .collect();
            InsideResult::Surprisal { tokens, loss, perplexity: loss.exp() }
        }
        InsideQuery::Nearest { token, top_k: k } => {
            let id = token_id(&m.tokenizer, token.trim_end()).map_err(err)?;
            let near = nearest(model, id, top_k(*k)?).await.map_err(err)?;
            finite(near.iter().map(|(_, c)| c))?;
            let token = m.tokenizer.decode(&[id]).unwrap_or_default();
            // The candidates' `prob` holds the cosine.
            InsideResult::Nearest { token, neighbours: candidates(&m.tokenizer, near) }
        }
        InsideQuery::Projection { count } => {
            if !(3..=MAX_PROJECTED).contains(count) {
                return Err(format!("project between 3 and {MAX_PROJECTED} tokens, got {count}"));
            }
            let (frequent, source) = frequent_tokens(&m.tokenizer, &ids, *count);
            let chosen: Vec<u32> = frequent.iter().map(|(id, _)| *id).collect();
            let p = projection(model, &chosen).await.map_err(err)?;
            finite(p.points.iter().flatten().chain(&p.explained))?;
            let points = frequent
                .iter()
                .zip(&p.points)
                .map(|(&(id, count), xy)| Placed {
                    token: m.tokenizer.decode(&[id]).unwrap_or_default(),
                    count,
                    x: xy[0],
                    y: xy[1],
                })
                .collect();
            InsideResult::Projection { points, explained: p.explained, source }
        }
    };
    let kv_heads = match model {
        AnyModel::Llama(m) => m.config().kv_heads(),
        _ => heads,
    };
    let windows = hearth_lm::infer::inside::windows(model);
    Ok((InsideText { tokens, padding, layers, heads, kv_heads, windows }, result))
}

pub async fn inside(seq: u64, slot: Slot, text: &str, query: InsideQuery) {
    let Some(m) = loaded(slot) else { return };
    match view(&m, text, &query).await {
        Ok((text, result)) => emit(&Event::Inside { seq, slot, text, result }),
        Err(e) => emit_error(Topic::from(slot), e),
    }
}

/// Every view's numbers, flattened, to compare two backends (ids are numbers too: a different
/// token in a list is a difference, not a tie to forgive).
async fn numbers(m: &AnyModel, ids: &[u32]) -> Result<Vec<(String, Vec<f32>)>, String> {
    let err = |e: hearth_lm::Error| e.to_string();
    let mut out = Vec::new();
    let a = attentions(m, ids).await.map_err(err)?;
    out.push(("attention".to_string(), a.into_iter().flatten().flatten().flatten().collect()));
    if let Some(g) = m.causal() {
        let lens = logit_lens_of(m, ids, 3).await.map_err(err)?;
        out.push((
            "logit lens".into(),
            lens.iter().flatten().flatten().flat_map(|&(id, p)| [id as f32, p as f32]).collect(),
        ));
        if ids.len() >= 2 {
            let s = surprisal(g, ids, 3).await.map_err(err)?;
            out.push(("surprisal".into(), s.iter().flat_map(|t| [t.loss as f32, t.rank as f32]).collect()));
        }
    }
    let near = nearest(m, ids[0], 10).await.map_err(err)?;
    out.push(("embedding neighbours".into(), near.iter().flat_map(|&(id, c)| [id as f32, c]).collect()));
    let frequent: Vec<u32> = (0..m.vocab_size().min(300) as u32).collect();
    let p = projection(m, &frequent).await.map_err(err)?;
    out.push(("projection".into(), p.points.iter().flatten().chain(&p.explained).copied().collect()));
    Ok(out)
}

/// Largest |a − b|; NaN anywhere counts as infinitely different.
fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() {
        return f32::INFINITY;
    }
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .map(|d| if d.is_nan() { f32::INFINITY } else { d })
        .fold(0.0, f32::max)
}

/// Every view of `text` on this device and on the CPU backend.
pub async fn verify(slot: Slot, text: &str) {
    let topic = Topic::from(slot);
    let Some(m) = loaded(slot) else { return };
    let Some(compute) = state::compute(topic) else { return };
    let result = async {
        let (mut ids, _) = tokens_of(&m.model, &m.tokenizer, text)?;
        // Every layer's attention is L·H·T² numbers: the comparison reads what a map would show.
        ids.truncate(MAX_MAP_TOKENS);
        let here = numbers(&m.model, &ids).await?;
        emit(&Event::Progress {
            topic,
            label: "the same views on the CPU backend".into(),
            done: 0,
            total: 0,
        });
        let cpu = on_cpu(&m.model).await?;
        let there = numbers(&cpu, &ids).await?;
        Ok::<_, String>(
            here.into_iter().zip(there).map(|((name, a), (_, b))| (name, max_diff(&a, &b))).collect(),
        )
    }
    .await;
    match result {
        Ok(diffs) => {
            emit(&Event::InsideVerified { slot, diffs, backend: compared(&m.model, &compute.info.backend) })
        }
        Err(e) => emit_error(topic, e),
    }
}
