// A "scripted" test model: the golden tiny bf16 checkpoint (tests/data/golden/v4_tiny_bf16) rewritten so that
// greedy decoding follows a fixed token chain, to test tool-call and reasoning output end to end. Every
// block's output projection (attn.wo_b, experts' and shared expert's w2) is zeroed, so a block adds nothing to
// the residual streams and the final hidden state is a positive multiple of the token's embedding; head.weight
// is rebuilt in the span of the "from" tokens' final hidden states x_t (the embedding after the final RMSNorm):
// row j = sum_t c_jt x_t with c_j solving G c_j = d_j (G the Gram matrix of the x_t, d_j the wanted logits of
// j after each from-token). So after a from-token every target row's logit is exactly as asked (the given
// logit for its successor, 0 for the other targets; other tokens' rows are zero): a bigram model.
import fs from 'node:fs';
import path from 'node:path';

function bf16ToF32(u16) {
  const b = new ArrayBuffer(4);
  new Uint32Array(b)[0] = u16 << 16;
  return new Float32Array(b)[0];
}

function f32ToBf16(f) {
  const b = new ArrayBuffer(4);
  new Float32Array(b)[0] = f;
  const u = new Uint32Array(b)[0];
  return ((u + 0x7fff + ((u >> 16) & 1)) >>> 16) & 0xffff;  // round to nearest even
}

// Reads a safetensors file: { header, dataStart, buf }.
function readSafetensors(file) {
  const buf = fs.readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  return { header: JSON.parse(buf.subarray(8, 8 + n).toString('utf8')), dataStart: 8 + n, buf };
}

function tensor(st, name) {
  const h = st.header[name];
  if (!h || h.dtype !== 'BF16') throw new Error(`${name}: missing or not BF16`);
  const [a, b] = h.data_offsets;
  const bytes = st.buf.subarray(st.dataStart + a, st.dataStart + b);
  return { shape: h.shape, u16: new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.length / 2) };
}

// The final-norm output for token `id` (up to a positive scale, which RMSNorm removes).
function normed(embed, norm, id, eps) {
  const D = embed.shape[1];
  const e = Array.from({ length: D }, (_, i) => bf16ToF32(embed.u16[id * D + i]));
  const rms = Math.sqrt(e.reduce((a, v) => a + v * v, 0) / D + eps);
  return e.map((v, i) => (v / rms) * bf16ToF32(norm.u16[i]));
}

// Solves A x = b (A small and symmetric positive definite) by Gaussian elimination with partial pivoting.
function solve(A, b) {
  const n = b.length;
  const M = A.map((row, i) => [...row, b[i]]);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(M[r][c]) > Math.abs(M[p][c])) p = r;
    [M[c], M[p]] = [M[p], M[c]];
    for (let r = 0; r < n; r++) {
      if (r === c) continue;
      const f = M[r][c] / M[c][c];
      for (let k = c; k <= n; k++) M[r][k] -= f * M[c][k];
    }
  }
  return M.map((row, i) => row[n] / row[i]);
}

// Writes the scripted model into `dir` (created); `transitions` = [[fromId, toId, logit], ...].
export function buildScriptedModel(repo, dir, transitions) {
  const golden = path.join(repo, 'tests/data/golden/v4_tiny_bf16');
  fs.mkdirSync(dir, { recursive: true });
  fs.copyFileSync(path.join(golden, 'config.json'), path.join(dir, 'config.json'));
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) fs.copyFileSync(path.join(repo, 'tests/data/server', f), path.join(dir, f));
  const st = readSafetensors(path.join(golden, 'model.safetensors'));
  for (const name of Object.keys(st.header)) {
    if (/\.attn\.wo_b\.weight$|\.w2\.weight$/.test(name) && !name.startsWith('mtp.')) tensor(st, name).u16.fill(0);
  }
  const cfg = JSON.parse(fs.readFileSync(path.join(golden, 'config.json'), 'utf8'));
  const embed = tensor(st, 'embed.weight');
  const norm = tensor(st, 'norm.weight');
  const head = tensor(st, 'head.weight');
  const D = head.shape[1];
  const froms = [...new Set(transitions.map((t) => t[0]))];
  const targets = [...new Set(transitions.map((t) => t[1]))];
  const X = froms.map((t) => normed(embed, norm, t, cfg.rms_norm_eps));
  const dot = (a, b) => a.reduce((s, v, i) => s + v * b[i], 0);
  const G = X.map((a) => X.map((b) => dot(a, b)));
  head.u16.fill(0);
  for (const to of targets) {
    const d = froms.map((f) => transitions.find((t) => t[0] === f && t[1] === to)?.[2] ?? 0);
    const c = solve(G, d);
    for (let i = 0; i < D; i++) head.u16[to * D + i] = f32ToBf16(X.reduce((s, x, k) => s + c[k] * x[i], 0));
  }
  fs.writeFileSync(path.join(dir, 'model.safetensors'), st.buf);
  return dir;
}
