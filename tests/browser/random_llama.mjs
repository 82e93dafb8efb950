// Writes a SmolLM2-135M-shaped Llama with seeded random weights as the hub publishes such a
// checkpoint: SmolLM2-135M's own config.json (30 layers, 576 wide, 9 query and 3 key/value
// heads, SwiGLU 1536, vocabulary 49,152, tied embeddings, rope theta 100,000), weights in bf16,
// in two shards with a `model.safetensors.index.json` — so the tab's streaming loader meets what a
// real download of a modern checkpoint brings. Made on the spot (269 MB), never committed.
//
//   node tests/browser/random_llama.mjs OUT_DIR GPT2_TOKENIZER_JSON
//
// Its tokenizer is a byte-level BPE of SmolLM2's size, 49,152 tokens, cut from GPT-2's (in the
// repository): GPT-2's first 48,895 merges (merge r makes token 256 + r) and `<|endoftext|>`
// as the last id, 49,151, which the config names as bos and eos. Weights are uniform with
// std 0.02, RMSNorm weights 1: values with a spread, so greedy decoding is not a tie.
import fs from 'node:fs';
import path from 'node:path';
import { uniform, writeSafetensors } from './safetensors.mjs';

const [out, tokenizer] = process.argv.slice(2);
if (!out || !tokenizer) {
  console.error('usage: node tests/browser/random_llama.mjs OUT_DIR GPT2_TOKENIZER_JSON');
  process.exit(1);
}
const L = 30, d = 576, heads = 9, kvHeads = 3, inter = 1536, vocab = 49152;
const headDim = d / heads;
const eos = vocab - 1;

// SmolLM2-135M's config.json as the hub has it (top-level rope_theta, bf16).
const config = {
  architectures: ['LlamaForCausalLM'], attention_bias: false, attention_dropout: 0.0, bos_token_id: eos,
  eos_token_id: eos, hidden_act: 'silu', hidden_size: d, initializer_range: 0.041666666666666664,
  intermediate_size: inter, is_llama_config: true, max_position_embeddings: 8192, mlp_bias: false,
  model_type: 'llama', num_attention_heads: heads, num_hidden_layers: L, num_key_value_heads: kvHeads,
  pretraining_tp: 1, rms_norm_eps: 1e-5, rope_interleaved: false, rope_scaling: null, rope_theta: 100000,
  tie_word_embeddings: true, torch_dtype: 'bfloat16', transformers_version: '4.42.3', use_cache: true,
  vocab_size: vocab,
};

// [name, shape, fill]: 'rand' (uniform, std 0.02) or 'one'. Shard 1: the embedding and the first
// half of the layers; shard 2: the rest and the final norm.
const shards = [[['model.embed_tokens.weight', [vocab, d], 'rand']], []];
for (let i = 0; i < L; i++) {
  const p = `model.layers.${i}.`;
  shards[i < L / 2 ? 0 : 1].push(
    [p + 'input_layernorm.weight', [d], 'one'],
    [p + 'self_attn.q_proj.weight', [heads * headDim, d], 'rand'],
    [p + 'self_attn.k_proj.weight', [kvHeads * headDim, d], 'rand'],
    [p + 'self_attn.v_proj.weight', [kvHeads * headDim, d], 'rand'],
    [p + 'self_attn.o_proj.weight', [d, heads * headDim], 'rand'],
    [p + 'post_attention_layernorm.weight', [d], 'one'],
    [p + 'mlp.gate_proj.weight', [inter, d], 'rand'],
    [p + 'mlp.up_proj.weight', [inter, d], 'rand'],
    [p + 'mlp.down_proj.weight', [d, inter], 'rand'],
  );
}
shards[1].push(['model.norm.weight', [d], 'one']);

fs.mkdirSync(out, { recursive: true });
fs.writeFileSync(path.join(out, 'config.json'), JSON.stringify(config, null, 2));
// GPT-2's tokenizer cut to 49,152 tokens.
const t = JSON.parse(fs.readFileSync(tokenizer, 'utf8'));
const merges = t.model.merges.slice(0, eos - 256);
t.model.merges = merges;
t.model.vocab = Object.fromEntries(Object.entries(t.model.vocab).filter(([, id]) => id < eos));
t.model.vocab['<|endoftext|>'] = eos;
t.added_tokens = t.added_tokens.filter((a) => a.content === '<|endoftext|>').map((a) => ({ ...a, id: eos }));
if (Object.keys(t.model.vocab).length !== vocab || t.added_tokens.length !== 1) {
  console.error(`${tokenizer}: not GPT-2's tokenizer (the cut has ${Object.keys(t.model.vocab).length} tokens)`);
  process.exit(1);
}
fs.writeFileSync(path.join(out, 'tokenizer.json'), JSON.stringify(t));
const names = shards.map((_, i) => `model-0000${i + 1}-of-0000${shards.length}.safetensors`);
const weightMap = {};
let totalSize = 0;
const next = uniform(0x5eed1e55);
const SQRT12 = Math.sqrt(12);
shards.forEach((tensors, s) => {
  for (const [name] of tensors) weightMap[name] = names[s];
  totalSize += writeSafetensors(path.join(out, names[s]), tensors, 'BF16',
    (fill) => (fill === 'one' ? 1 : next() * SQRT12 * 0.02));
});
const params = shards.flat().reduce((a, [, shape]) => a + shape.reduce((x, y) => x * y, 1), 0);
const index = { metadata: { total_size: totalSize }, weight_map: weightMap };
fs.writeFileSync(path.join(out, 'model.safetensors.index.json'), JSON.stringify(index, null, 2));
console.log(`${out}: ${params} parameters in ${names.length} bf16 shards, ${(totalSize / 1e6).toFixed(1)} MB`);
