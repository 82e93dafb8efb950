// What the browser tests' random models share: a seeded generator, so every machine writes the
// same files, and a safetensors writer that streams each tensor's values in chunks (GPT-2
// medium's 1.4 GB never sits in memory).
import fs from 'node:fs';

/// xorshift32 from `seed`: uniform on [-0.5, 0.5), std 1/√12.
export function uniform(seed) {
  let state = seed;
  return () => {
    state ^= state << 13; state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5; state >>>= 0;
    return state / 4294967296 - 0.5;
  };
}

const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);
/// bf16 is the top half of an f32, rounded to nearest even.
function bf16(x) {
  F32[0] = x;
  const bits = U32[0];
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

const CHUNK = 1 << 22; // values per write

/// Writes `tensors` ([name, shape, fill] in file order) to `file` as `dtype` ('F32' or 'BF16');
/// `value(fill, index)` gives each element, `index` counting within its tensor. Returns the
/// bytes of the tensors' data.
export function writeSafetensors(file, tensors, dtype, value) {
  const size = dtype === 'F32' ? 4 : 2;
  const header = { __metadata__: { format: 'pt' } };
  let offset = 0;
  for (const [name, shape] of tensors) {
    const bytes = shape.reduce((a, b) => a * b, 1) * size;
    header[name] = { dtype, shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const fd = fs.openSync(file, 'w');
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(json.length));
  fs.writeSync(fd, prefix);
  fs.writeSync(fd, json);
  const buffer = dtype === 'F32' ? new Float32Array(CHUNK) : new Uint16Array(CHUNK);
  const store = dtype === 'F32' ? (x) => x : bf16;
  for (const [, shape, fill] of tensors) {
    let left = shape.reduce((a, b) => a * b, 1);
    let index = 0;
    while (left > 0) {
      const n = Math.min(left, CHUNK);
      for (let i = 0; i < n; i++, index++) buffer[i] = store(value(fill, index));
      fs.writeSync(fd, Buffer.from(buffer.buffer, 0, n * size));
      left -= n;
    }
  }
  fs.closeSync(fd);
  return offset;
}
