// Test harness for `dsv4 serve`: builds the test model directory (the tiny golden checkpoint symlinked, plus
// the test tokenizer of tests/data/server), starts the server on a free loopback port, reads /metrics, and
// stops it with a signal, returning the exit code. Environment: DSV4_BUILD (build dir), DSV4_REPO (repo root).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const build = process.env.DSV4_BUILD;
const repo = process.env.DSV4_REPO;

export function modelDir() {
  const dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'dsv4-node-')), 'tiny-test');
  fs.mkdirSync(dir);
  const golden = path.join(repo, 'tests/data/golden/v4_tiny_fp8_mtp');
  for (const f of ['config.json', 'model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors',
    'model.safetensors.index.json']) fs.symlinkSync(path.join(golden, f), path.join(dir, f));
  for (const f of ['tokenizer.json', 'tokenizer_config.json'])
    fs.copyFileSync(path.join(repo, 'tests/data/server', f), path.join(dir, f));
  return dir;
}

// `model`: a model directory to serve instead of the test model.
export async function startServer(args = [], { model } = {}) {
  const dir = model ?? modelDir();
  const proc = spawn(path.join(build, 'dsv4'), ['serve', '-m', dir, '--port', '0', '--no-access-log', ...args],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  proc.stderr.on('data', (d) => { stderr += d; });
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve(signal ? -1 : code)));
  const port = await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error('server did not start: ' + stderr)), 60000);
    proc.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/127\.0\.0\.1:(\d+)/);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    });
    proc.on('exit', () => reject(new Error('server exited: ' + stderr)));
  });
  const base = `http://127.0.0.1:${port}`;
  return {
    port, base, proc, dir,
    stderr: () => stderr,
    async metrics() {
      const text = await (await fetch(base + '/metrics')).text();
      const m = {};
      for (const line of text.split('\n')) {
        if (!line || line.startsWith('#')) continue;
        const i = line.lastIndexOf(' ');
        m[line.slice(0, i)] = Number(line.slice(i + 1));
      }
      return m;
    },
    async stop(signal = 'SIGTERM') {
      proc.kill(signal);
      let timer;
      const code = await Promise.race([exited, new Promise((r) => { timer = setTimeout(() => r('timeout'), 30000); })]);
      clearTimeout(timer);
      if (!model) fs.rmSync(path.dirname(dir), { recursive: true, force: true });
      return code;
    },
  };
}

export async function waitFor(pred, ms = 10000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await pred()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}
