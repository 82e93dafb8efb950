// Benchmarks (not tests, never in CI) of GPT-2 124M-sized random weights in the browser, on its
// WebGPU adapter (or ?backend=cpu): generation (prefill, then decode tokens/s, greedy — the token
// chosen on the GPU, one number read back — against top-p over the whole vocabulary, which
// reads all 50,257 logits per token), and the time to compute and draw the inside views at 64
// tokens; and loading (weights streamed onto the device: seconds and the worker's memory
// high-water mark). Run by hand:
//
//   target/release/hearth train --corpus web/corpus/tiny_shakespeare_like.txt --preset gpt2 \
//       --tokenizer gpt2 --context 64 --batch-size 1 --steps 1 --eval-every 1000 --out /tmp/hearth-bench-models/gpt2-124m
//   trunk build --release && node tests/browser/bench.mjs [--cpu] [--kernels plain|tuned] [--model NAME] [--only load|generate|inside]
//
// It serves /tmp/hearth-bench-models (HEARTH_BENCH_MODELS) as the hub; each job runs three
// times (the first includes shader compiles).
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const dist = path.resolve(root, process.env.HEARTH_DIST || 'dist');
const fixtures = path.resolve(process.env.HEARTH_BENCH_MODELS || '/tmp/hearth-bench-models');

// ---------------------------------------------------------------------------------------------
// A static server for dist/ and, under /fixtures/, the Hugging Face fixture directories (they
// stand in for the hub: no network in tests). It counts requests so caching can be checked.
const MIME = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.wasm': 'application/wasm',
  '.css': 'text/css', '.json': 'application/json', '.txt': 'text/plain; charset=utf-8',
};
const requests = new Map();
const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://localhost');
  requests.set(url.pathname, (requests.get(url.pathname) || 0) + 1);
  // A server that answers 200 with a web page where a file was asked for (a hub /blob/ page).
  if (url.pathname.startsWith('/html/')) {
    res.writeHead(200, { 'content-type': 'text/html', 'access-control-allow-origin': '*' });
    res.end('<!DOCTYPE html><html><body><h1>gpt2 · config.json</h1></body></html>');
    return;
  }
  const file = url.pathname.startsWith('/fixtures/')
    ? path.join(fixtures, url.pathname.slice('/fixtures/'.length))
    : path.join(dist, url.pathname === '/' ? 'index.html' : url.pathname);
  const base = url.pathname.startsWith('/fixtures/') ? fixtures : dist;
  if (!path.resolve(file).startsWith(base) || !fs.existsSync(file) || fs.statSync(file).isDirectory()) {
    res.writeHead(404).end('not found');
    return;
  }
  // Streamed from disk: GPT-2 XL's weights are 6.4 GB.
  res.writeHead(200, {
    'content-type': MIME[path.extname(file)] || 'application/octet-stream',
    'content-length': fs.statSync(file).size,
    'access-control-allow-origin': '*',
  });
  fs.createReadStream(file).pipe(res);
});
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const origin = `http://127.0.0.1:${server.address().port}`;

// ---------------------------------------------------------------------------------------------
// Chromium with the flags DEVELOPERS.md lists: headless=new keeps WebGPU, unsafe-webgpu enables
// it on Linux, the rest keep a closed network quiet. A fresh profile per run.
const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'hearth-chromium-'));
const browser = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  ignoreDefaultArgs: true,
  acceptDownloads: true,
  viewport: { width: 1200, height: 900 },
  args: [
    '--headless=new', '--enable-unsafe-webgpu', '--no-sandbox', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic',
    '--remote-debugging-pipe', `--user-data-dir=${profile}`, 'about:blank',
  ],
});

const pageErrors = [];
function watch(page) {
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  page.on('console', (m) => {
    if (m.type() === 'error') pageErrors.push(`console: ${m.text()}`);
  });
  page.setDefaultTimeout(60_000);
  return page;
}
const page = watch(browser.pages()[0] || (await browser.newPage()));
const tid = (id, p = page) => p.getByTestId(id);

async function waitFor(what, check, timeout = 60_000) {
  const start = Date.now();
  let last;
  while (Date.now() - start < timeout) {
    try {
      last = await check();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out after ${timeout} ms waiting for ${what} (last: ${last})`);
}
const text = async (id, p = page) => ((await tid(id, p).textContent()) || '').trim();

const cpu = process.argv.includes('--cpu');
// `--kernels plain|tuned`: one worker build, whatever the adapter (the page chooses otherwise).
const kernels = process.argv.includes('--kernels') ? process.argv[process.argv.indexOf('--kernels') + 1] : null;
const query = [cpu && 'backend=cpu', kernels && `kernels=${kernels}`].filter(Boolean).join('&');
await page.goto(`${origin}/${query ? `?${query}` : ''}#generate`);
await waitFor('the backend', async () => ['webgpu', 'cpu'].includes(await text('backend')));
// `--model NAME`: the directory under HEARTH_BENCH_MODELS (default gpt2-124m); random GPT-2
// medium, large and XL come from `node tests/browser/random_gpt2.mjs DIR 24 1024 16` (36 1280 20,
// 48 1600 25).
const model = process.argv.includes('--model') ? process.argv[process.argv.indexOf('--model') + 1] : 'gpt2-124m';
await tid('generate-url').fill(`${origin}/fixtures/${model}/model.safetensors`);
let start = Date.now();
await tid('generate-load-url').click();
await waitFor(`${model} to load`, async () => {
  const error = tid('generate-error');
  if (await error.count()) throw new Error(`${model}: ${await error.textContent()}`);
  return (await text('generate-model')).includes('parameters');
}, 1_800_000);
// The load's own line: file size, seconds, the worker's wasm memory high-water mark.
console.log(`backend ${await text('backend')}; ${model}: load ${Date.now() - start} ms; ${await text('generate-load-stats')}`);
// 64 GPT-2 tokens.
const prompt = 'It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of foolishness, it was the epoch of belief, it was the epoch of incredulity, it was the season of Light, it was the season of Darkness, it was the spring of';
// Generation: 6-token prompt, 32 new tokens; time to the first token (prefill + one step) and
// the decode rate after it.
async function generation(label, temperature, topP) {
  await tid('generate-prompt').fill('Swimming at the beach is');
  await tid('temperature').fill(String(temperature));
  await tid('top-k').fill('0');
  await tid('top-p').fill(String(topP));
  await tid('max-tokens').fill('32');
  for (let run = 0; run < runs; run++) {
    await tid('generate-run').click();
    const t0 = Date.now();
    let first = null;
    await waitFor('32 tokens', async () => {
      const n = (await text('generate-ids')).split(',').filter((x) => x.trim()).length;
      if (first === null && n >= 1 && n < 32) first = Date.now();
      return n === 32 && (await tid('generate-run').isEnabled());
    }, 600_000);
    const end = Date.now();
    console.log(`${label} run ${run}: first token ${first - t0} ms, decode ${(31 / ((end - first) / 1000)).toFixed(2)} tokens/s`);
  }
}
// `--only inside` / `--only generate` / `--only load`: one part (on SwiftShader each takes many minutes).
const only = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1] : null;
const runs = Number(process.env.HEARTH_BENCH_RUNS || 3);
if (only !== 'inside' && only !== 'load') {
  await generation('greedy (argmax on the device)', 0, 1);
  await generation('temperature 1, top-p 0.95 (reads every logit)', 1, 0.95);
}

await tid('generate-prompt').fill(prompt);
// A view is drawn when an element with its test id exists that was not there before the click.
const mark = (id) => page.evaluate((id) => document.querySelectorAll(`[data-testid=${id}]`).forEach((e) => { e.dataset.stale = '1'; }), id);
const fresh = (id) => page.locator(`[data-testid=${id}]:not([data-stale])`);
const results = {};
for (let run = 0; run < (only === 'generate' || only === 'load' ? 0 : runs); run++) {
  await tid('generate-inside-view-attention').click();
  await mark('attention-map');
  start = Date.now();
  await tid('generate-inside-look').click();
  await waitFor('the attention map', async () => (await fresh('attention-map').locator('rect.cell').count()) > 0, 600_000);
  const n = Math.round(Math.sqrt(await fresh('attention-map').locator('rect.cell').count()));
  (results.attention_one_layer_ms ||= []).push(Date.now() - start);
  await mark('generate-inside-lens');
  start = Date.now();
  await tid('generate-inside-view-lens').click();
  await waitFor('the logit lens', async () => (await fresh('generate-inside-lens').locator('td').count()) === 12 * n, 600_000);
  (results.logit_lens_top5_ms ||= []).push(Date.now() - start);
  console.log(`run ${run}: ${n} tokens`, JSON.stringify(results));
}
await browser.close();
fs.rmSync(profile, { recursive: true, force: true });
server.close();
