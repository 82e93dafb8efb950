// Writes a GPT-2 with seeded random weights as a Hugging Face directory: the browser tests'
// GPT-2 medium-sized model (355M parameters, 1.4 GB of f32), made on the spot rather than
// committed or downloaded. Laid out as the hub's `gpt2-medium` checkpoint is — keys without the
// `transformer.` prefix, and each layer's causal-mask buffer `h.N.attn.bias`, which a loader
// must skip — so the streaming loader meets what a real download brings.
//
//   node tests/browser/random_gpt2.mjs OUT_DIR [n_layer n_embd n_head]   (default: GPT-2 medium)
//
// Weights are uniform with GPT-2's initial standard deviation (0.02), LayerNorms 1 and 0, biases
// 0.01-scaled: values with a spread, so greedy decoding is not a tie among 50,257 logits.
import fs from 'node:fs';
import path from 'node:path';
import { uniform, writeSafetensors } from './safetensors.mjs';

const [out, nLayer = '24', nEmbd = '1024', nHead = '16'] = process.argv.slice(2);
if (!out) {
  console.error('usage: node tests/browser/random_gpt2.mjs OUT_DIR [n_layer n_embd n_head]');
  process.exit(1);
}
const L = Number(nLayer), d = Number(nEmbd), heads = Number(nHead);
const vocab = 50257, positions = 1024;

const config = {
  activation_function: 'gelu_new', architectures: ['GPT2LMHeadModel'], attn_pdrop: 0.1,
  bos_token_id: 50256, embd_pdrop: 0.1, eos_token_id: 50256, initializer_range: 0.02,
  layer_norm_epsilon: 1e-5, model_type: 'gpt2', n_ctx: positions, n_embd: d, n_head: heads,
  n_inner: null, n_layer: L, n_positions: positions, resid_pdrop: 0.1,
  scale_attn_weights: true, tie_word_embeddings: true, vocab_size: vocab,
};

// [name, shape, fill]: fill is 'rand' (uniform, std 0.02), 'bias' (std 0.002), 'one', 'zero' or 'mask'.
const tensors = [['wte.weight', [vocab, d], 'rand'], ['wpe.weight', [positions, d], 'rand']];
for (let i = 0; i < L; i++) {
  const h = `h.${i}.`;
  tensors.push(
    [h + 'ln_1.weight', [d], 'one'], [h + 'ln_1.bias', [d], 'zero'],
    [h + 'attn.bias', [1, 1, positions, positions], 'mask'],
    [h + 'attn.c_attn.weight', [d, 3 * d], 'rand'], [h + 'attn.c_attn.bias', [3 * d], 'bias'],
    [h + 'attn.c_proj.weight', [d, d], 'rand'], [h + 'attn.c_proj.bias', [d], 'bias'],
    [h + 'ln_2.weight', [d], 'one'], [h + 'ln_2.bias', [d], 'zero'],
    [h + 'mlp.c_fc.weight', [d, 4 * d], 'rand'], [h + 'mlp.c_fc.bias', [4 * d], 'bias'],
    [h + 'mlp.c_proj.weight', [4 * d, d], 'rand'], [h + 'mlp.c_proj.bias', [d], 'bias'],
  );
}
tensors.push(['ln_f.weight', [d], 'one'], ['ln_f.bias', [d], 'zero']);

fs.mkdirSync(out, { recursive: true });
fs.writeFileSync(path.join(out, 'config.json'), JSON.stringify(config, null, 2));
const next = uniform(0x2545f491);
const SQRT12 = Math.sqrt(12);
const bytes = writeSafetensors(path.join(out, 'model.safetensors'), tensors, 'F32', (fill, index) => {
  switch (fill) {
    case 'rand': return next() * SQRT12 * 0.02;
    case 'bias': return next() * SQRT12 * 0.002;
    case 'one': return 1;
    case 'zero': return 0;
    // The causal mask: 1 on and below the diagonal.
    default: return (index % positions) <= Math.floor(index / positions) % positions ? 1 : 0;
  }
});
const params = tensors.filter(([n]) => !n.endsWith('attn.bias')).reduce((a, [, s]) => a + s.reduce((x, y) => x * y, 1), 0);
console.log(`${out}: ${params} parameters, ${(bytes / 1e6).toFixed(1)} MB of weights`);
