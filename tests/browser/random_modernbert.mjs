// Writes a ModernBERT-base-shaped masked LM with seeded random weights: ModernBERT-base's own
// config.json as the hub publishes it (22 layers, 768 wide, 12 heads, GeGLU 1152, vocabulary
// 50,368, global attention every third layer and a 128-token window between, rope bases 160,000
// and 10,000), weights in bf16 in one model.safetensors (the tied decoder not stored) — what the
// tab's streaming loader meets in a real download. Made on the spot (300 MB), never committed.
//
//   node tests/browser/random_modernbert.mjs OUT_DIR GPT2_TOKENIZER_JSON
//
// Its tokenizer is GPT-2's byte-level BPE (in the repository) with ModernBERT's special tokens at
// ModernBERT's ids — [UNK] 50280, [CLS] 50281, [SEP] 50282, [PAD] 50283, [MASK] 50284 (taking the
// space before it) — and `[CLS] text [SEP]` added as ModernBERT's tokenizer adds them. Weights are
// uniform with std 0.02, LayerNorm weights 1: values with a spread, so the top-5 is not a tie.
import fs from 'node:fs';
import path from 'node:path';
import { uniform, writeSafetensors } from './safetensors.mjs';

const [out, tokenizer] = process.argv.slice(2);
if (!out || !tokenizer) {
  console.error('usage: node tests/browser/random_modernbert.mjs OUT_DIR GPT2_TOKENIZER_JSON');
  process.exit(1);
}
const L = 22, d = 768, heads = 12, inter = 1152, vocab = 50368;
const [UNK, CLS, SEP, PAD, MASK] = [50280, 50281, 50282, 50283, 50284];

// answerdotai/ModernBERT-base's config.json (the hub's layout: global_attn_every_n_layers and the
// rope bases at the top level).
const config = {
  architectures: ['ModernBertForMaskedLM'], attention_bias: false, attention_dropout: 0.0, bos_token_id: CLS,
  classifier_activation: 'gelu', classifier_bias: false, classifier_dropout: 0.0, classifier_pooling: 'mean',
  cls_token_id: CLS, decoder_bias: true, deterministic_flash_attn: false, embedding_dropout: 0.0,
  eos_token_id: SEP, global_attn_every_n_layers: 3, global_rope_theta: 160000.0, gradient_checkpointing: false,
  hidden_activation: 'gelu', hidden_size: d, initializer_cutoff_factor: 2.0, initializer_range: 0.02,
  intermediate_size: inter, layer_norm_eps: 1e-05, local_attention: 128, local_rope_theta: 10000.0,
  max_position_embeddings: 8192, mlp_bias: false, mlp_dropout: 0.0, model_type: 'modernbert', norm_bias: false,
  norm_eps: 1e-05, num_attention_heads: heads, num_hidden_layers: L, pad_token_id: PAD,
  position_embedding_type: 'absolute', reference_compile: true, repad_logits_with_grad: false, sep_token_id: SEP,
  sparse_pred_ignore_index: -100, sparse_prediction: false, torch_dtype: 'float32',
  transformers_version: '4.48.0.dev0', vocab_size: vocab,
};

// [name, shape, fill]: 'rand' (uniform, std 0.02) or 'one'.
const tensors = [
  ['model.embeddings.tok_embeddings.weight', [vocab, d], 'rand'],
  ['model.embeddings.norm.weight', [d], 'one'],
];
for (let i = 0; i < L; i++) {
  const p = `model.layers.${i}.`;
  if (i > 0) tensors.push([p + 'attn_norm.weight', [d], 'one']);
  tensors.push(
    [p + 'attn.Wqkv.weight', [3 * d, d], 'rand'],
    [p + 'attn.Wo.weight', [d, d], 'rand'],
    [p + 'mlp_norm.weight', [d], 'one'],
    [p + 'mlp.Wi.weight', [2 * inter, d], 'rand'],
    [p + 'mlp.Wo.weight', [d, inter], 'rand'],
  );
}
tensors.push(
  ['model.final_norm.weight', [d], 'one'],
  ['head.dense.weight', [d, d], 'rand'],
  ['head.norm.weight', [d], 'one'],
  ['decoder.bias', [vocab], 'rand'],
);

fs.mkdirSync(out, { recursive: true });
fs.writeFileSync(path.join(out, 'config.json'), JSON.stringify(config, null, 2));
const t = JSON.parse(fs.readFileSync(tokenizer, 'utf8'));
if (Object.keys(t.model.vocab).length !== 50257) {
  console.error(`${tokenizer}: not GPT-2's tokenizer`);
  process.exit(1);
}
const special = (id, content) =>
  ({ id, content, single_word: false, lstrip: content === '[MASK]', rstrip: false, normalized: false, special: true });
t.added_tokens = [
  ...t.added_tokens,
  special(UNK, '[UNK]'), special(CLS, '[CLS]'), special(SEP, '[SEP]'), special(PAD, '[PAD]'), special(MASK, '[MASK]'),
];
const piece = (id) => ({ SpecialToken: { id, type_id: 0 } });
const seq = (id) => ({ Sequence: { id, type_id: 0 } });
t.post_processor = {
  type: 'TemplateProcessing',
  single: [piece('[CLS]'), seq('A'), piece('[SEP]')],
  pair: [piece('[CLS]'), seq('A'), piece('[SEP]'), seq('B'), piece('[SEP]')],
  special_tokens: {
    '[CLS]': { id: '[CLS]', ids: [CLS], tokens: ['[CLS]'] },
    '[SEP]': { id: '[SEP]', ids: [SEP], tokens: ['[SEP]'] },
  },
};
fs.writeFileSync(path.join(out, 'tokenizer.json'), JSON.stringify(t));
const next = uniform(0x30de2b37);
const SQRT12 = Math.sqrt(12);
const bytes = writeSafetensors(path.join(out, 'model.safetensors'), tensors, 'BF16',
  (fill) => (fill === 'one' ? 1 : next() * SQRT12 * 0.02));
const params = tensors.reduce((a, [, shape]) => a + shape.reduce((x, y) => x * y, 1), 0);
console.log(`${out}: ModernBERT-base-shaped, ${params} parameters, ${bytes} bytes of bf16 weights`);
