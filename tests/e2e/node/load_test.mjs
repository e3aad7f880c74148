// Bounded load test of dsv4 serve: CLIENTS concurrent streaming clients run REQUESTS requests (chat and
// completions alternating, SSE with usage, ignore_eos so each makes exactly max_tokens tokens). Every stream
// must be well formed (200, JSON events with one id, one finish_reason per choice, a usage event, [DONE] last)
// and there must be zero errors; afterwards the server must be back to its baseline: no request in flight,
// KV pages used as before, resident memory within 10% + 32 MiB of the warmed-up baseline. Prints throughput
// and latency percentiles (JSON and a docs/perf.md table row).
// Environment: DSV4_BUILD, DSV4_REPO, DSV4_LOAD_CLIENTS (64), DSV4_LOAD_REQUESTS (256), DSV4_LOAD_MAX_TOKENS (32),
// DSV4_LOAD_ARGS (extra `dsv4 serve` arguments), DSV4_LOAD_MODEL (serve this model directory instead).
import os from 'node:os';
import { startServer, waitFor } from './harness.mjs';

const CLIENTS = Number(process.env.DSV4_LOAD_CLIENTS ?? 64);
const REQUESTS = Number(process.env.DSV4_LOAD_REQUESTS ?? 256);
const MAX_TOKENS = Number(process.env.DSV4_LOAD_MAX_TOKENS ?? 32);
const EXTRA = (process.env.DSV4_LOAD_ARGS ?? '--max-running 64').split(' ').filter(Boolean);
const words = 'the quick brown fox jumps over the lazy dog while the robot paints the city'.split(' ');

function prompt(i) {
  let s = '';
  for (let k = 0; k < 8 + (i * 7) % 40; k++) s += words[(i + k * 3) % words.length] + ' ';
  return s.trim();
}

// One streaming request; resolves to its timings or throws with what was malformed.
async function one(base, i) {
  const chat = i % 2 === 0;
  const body = { max_tokens: MAX_TOKENS, ignore_eos: true, seed: i, stream: true, stream_options: { include_usage: true } };
  if (chat) body.messages = [{ role: 'user', content: prompt(i) }]; else body.prompt = prompt(i);
  const t0 = performance.now();
  const res = await fetch(base + (chat ? '/v1/chat/completions' : '/v1/completions'), {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  if (res.status !== 200) throw new Error(`status ${res.status}: ${await res.text()}`);
  if (!res.headers.get('content-type').startsWith('text/event-stream')) throw new Error('not an event stream');
  const decoder = new TextDecoder();
  let buf = '', id = null, finish = null, usage = null, done = false, first = null, last = t0, tokens = 0;
  const gaps = [];
  const onData = (data) => {
    if (done) throw new Error('event after [DONE]');
    if (data === '[DONE]') { done = true; return; }
    const e = JSON.parse(data);
    if (e.error) throw new Error('error event: ' + data);
    if (e.object !== (chat ? 'chat.completion.chunk' : 'text_completion')) throw new Error('bad object ' + e.object);
    id ??= e.id;
    if (e.id !== id) throw new Error('id changed');
    if (e.usage) usage = e.usage;
    for (const c of e.choices) {
      if (finish) throw new Error('chunk after finish_reason');
      const text = chat ? c.delta.content : c.text;
      if (text) {
        const now = performance.now();
        if (first === null) first = now; else gaps.push(now - last);
        last = now;
        tokens++;
      }
      if (c.finish_reason) finish = c.finish_reason;
    }
  };
  for await (const part of res.body) {
    buf += decoder.decode(part, { stream: true });
    let k;
    while ((k = buf.indexOf('\n\n')) >= 0) {
      const ev = buf.slice(0, k);
      buf = buf.slice(k + 2);
      if (ev.startsWith(':')) continue;  // an SSE comment (the server's keep-alive in a silent stretch)
      if (!ev.startsWith('data: ')) throw new Error('not a data line: ' + ev.slice(0, 80));
      onData(ev.slice(6));
    }
  }
  if (buf.trim()) throw new Error('trailing bytes');
  if (!done) throw new Error('no [DONE]');
  if (finish !== 'length') throw new Error('finish_reason ' + finish);
  if (!usage || usage.completion_tokens !== MAX_TOKENS) throw new Error('usage ' + JSON.stringify(usage));
  return { ttft: (first ?? performance.now()) - t0, latency: performance.now() - t0, gaps, tokens: usage.completion_tokens };
}

async function run(base, n, clients) {
  let next = 0;
  const results = [], errors = [];
  const worker = async () => {
    while (next < n) {
      const i = next++;
      try { results.push(await one(base, i)); } catch (e) { errors.push(`request ${i}: ${e.message}`); }
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: clients }, worker));
  return { results, errors, seconds: (performance.now() - t0) / 1000 };
}

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] : NaN;
};

const srv = await startServer(['--no-access-log', ...EXTRA], { model: process.env.DSV4_LOAD_MODEL });
let failed = false;
try {
  const warm = await run(srv.base, CLIENTS, CLIENTS);  // warms the allocator and the engine's buffers
  if (warm.errors.length) throw new Error('warm-up: ' + warm.errors.slice(0, 3).join('; '));
  await waitFor(async () => (await srv.metrics()).dsv4_server_inflight_requests === 0);
  const before = await srv.metrics();
  const { results, errors, seconds } = await run(srv.base, REQUESTS, CLIENTS);
  const idle = await waitFor(async () => {
    const m = await srv.metrics();
    return m.dsv4_server_inflight_requests === 0 && m.dsv4_num_requests_running === 0 && m.dsv4_num_requests_waiting === 0;
  });
  const after = await srv.metrics();
  const tokens = results.reduce((a, r) => a + r.tokens, 0);
  const gaps = results.flatMap((r) => r.gaps);
  const summary = {
    clients: CLIENTS, requests: REQUESTS, max_tokens: MAX_TOKENS, ok: results.length, errors: errors.length,
    seconds: +seconds.toFixed(2), requests_per_s: +(results.length / seconds).toFixed(2),
    generated_tokens_per_s: +(tokens / seconds).toFixed(1),
    ttft_ms: { p50: pct(results.map((r) => r.ttft), 50), p90: pct(results.map((r) => r.ttft), 90), p99: pct(results.map((r) => r.ttft), 99) },
    latency_ms: { p50: pct(results.map((r) => r.latency), 50), p90: pct(results.map((r) => r.latency), 90), p99: pct(results.map((r) => r.latency), 99) },
    inter_token_ms: { p50: pct(gaps, 50), p90: pct(gaps, 90), p99: pct(gaps, 99) },
    kv_pages_used: [before.dsv4_kv_pages_used, after.dsv4_kv_pages_used],
    rss_mib: [before.process_resident_memory_bytes / 2 ** 20, after.process_resident_memory_bytes / 2 ** 20].map((x) => +x.toFixed(1)),
    machine: `${os.cpus().length} x ${os.cpus()[0]?.model ?? '?'}`,
  };
  for (const k of ['ttft_ms', 'latency_ms', 'inter_token_ms']) for (const p in summary[k]) summary[k][p] = +summary[k][p].toFixed(1);
  console.log(JSON.stringify(summary, null, 1));
  const f = (o) => `${o.p50} / ${o.p90} / ${o.p99}`;
  console.log(`| ${CLIENTS} | ${REQUESTS} | ${MAX_TOKENS} | ${summary.requests_per_s} | ${summary.generated_tokens_per_s} | ` +
    `${f(summary.ttft_ms)} | ${f(summary.inter_token_ms)} | ${f(summary.latency_ms)} | ${errors.length} |`);
  const problems = [...errors.slice(0, 5)];
  if (!idle) problems.push('requests still in flight after the run');
  if (after.dsv4_kv_pages_used !== before.dsv4_kv_pages_used) problems.push('KV pages used did not return to baseline');
  if (after.process_resident_memory_bytes > before.process_resident_memory_bytes * 1.1 + 32 * 2 ** 20)
    problems.push('resident memory grew: ' + summary.rss_mib.join(' -> ') + ' MiB');
  if (problems.length) { console.log('FAIL:\n' + problems.join('\n')); failed = true; }
} finally {
  const code = await srv.stop();
  if (code !== 0) { console.log('FAIL: exit code ' + code + '\n' + srv.stderr().slice(-2000)); failed = true; }
}
process.exit(failed ? 1 : 0);
