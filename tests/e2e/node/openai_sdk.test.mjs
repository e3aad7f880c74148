// dsv4 serve with the official OpenAI Node SDK as the client (tiny golden model, random weights: the tests
// check the protocol, not the text): models, chat and completions with and without streaming, usage,
// logprobs, stream == non-stream for a seed, the SDK's stream helper, the tool-call round trip (request side),
// error classes, API key, abort mid-stream freeing the request, SSE keep-alive comments skipped, and exit code 0
// on SIGTERM.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import OpenAI from 'openai';

import { startServer, waitFor } from './harness.mjs';

let srv;
let client;
const MODEL = 'tiny-test';
const hello = [{ role: 'user', content: 'Hello! What is the weather in Paris?' }];

before(async () => {
  srv = await startServer();
  client = new OpenAI({ baseURL: srv.base + '/v1', apiKey: 'unused', maxRetries: 0 });
});

after(async () => {
  assert.equal(await srv.stop('SIGTERM'), 0, 'dsv4 serve exits with 0 on SIGTERM');
});

test('models.list names the served model', async () => {
  const page = await client.models.list();
  assert.deepEqual(page.data.map((m) => m.id), [MODEL]);
});

test('chat completion, non-streaming', async () => {
  const r = await client.chat.completions.create({ model: MODEL, messages: hello, max_tokens: 12, seed: 1 });
  assert.equal(r.object, 'chat.completion');
  assert.equal(r.choices.length, 1);
  assert.equal(r.choices[0].message.role, 'assistant');
  assert.equal(typeof r.choices[0].message.content, 'string');
  assert.ok(['stop', 'length'].includes(r.choices[0].finish_reason));
  assert.ok(r.usage.prompt_tokens > 0);
  assert.ok(r.usage.completion_tokens >= 1 && r.usage.completion_tokens <= 12);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
});

test('chat streaming equals non-streaming for the same seed, with usage', async () => {
  const params = { model: MODEL, messages: hello, max_tokens: 40, seed: 11, temperature: 1, n: 2 };
  const whole = await client.chat.completions.create(params);
  const stream = await client.chat.completions.create({ ...params, stream: true, stream_options: { include_usage: true } });
  const text = ['', ''];
  const finish = [null, null];
  let usage = null;
  for await (const chunk of stream) {
    assert.equal(chunk.object, 'chat.completion.chunk');
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) {
      assert.equal(finish[c.index], null, 'no chunk after finish_reason');
      text[c.index] += c.delta.content ?? '';
      if (c.finish_reason) finish[c.index] = c.finish_reason;
    }
  }
  for (const k of [0, 1]) {
    assert.equal(text[k], whole.choices[k].message.content);
    assert.equal(finish[k], whole.choices[k].finish_reason);
  }
  assert.deepEqual(usage, whole.usage);
});

test('the SDK stream helper accumulates the final message and logprobs', async () => {
  const runner = client.chat.completions.stream({ model: MODEL, messages: hello, max_tokens: 10, seed: 3, logprobs: true, top_logprobs: 2 });
  const final = await runner.finalChatCompletion();
  const plain = await client.chat.completions.create({ model: MODEL, messages: hello, max_tokens: 10, seed: 3, logprobs: true, top_logprobs: 2 });
  assert.equal(final.choices[0].message.content, plain.choices[0].message.content);
  assert.equal(final.choices[0].logprobs.content.length, plain.usage.completion_tokens);
  for (const t of plain.choices[0].logprobs.content) {
    assert.equal(typeof t.token, 'string');
    assert.ok(t.logprob <= 0);
    assert.equal(t.top_logprobs.length, 2);
  }
});

test('completions: string and token prompts, streaming, logprobs, echo', async () => {
  const params = { model: MODEL, prompt: 'Once upon a time', max_tokens: 16, seed: 5, logprobs: 3 };
  const whole = await client.completions.create(params);
  assert.equal(whole.object, 'text_completion');
  assert.equal(whole.choices[0].logprobs.tokens.length, whole.usage.completion_tokens);
  let text = '';
  for await (const chunk of await client.completions.create({ ...params, stream: true })) text += chunk.choices[0]?.text ?? '';
  assert.equal(text, whole.choices[0].text);
  const echo = await client.completions.create({ model: MODEL, prompt: 'Once upon a time', max_tokens: 4, echo: true });
  assert.ok(echo.choices[0].text.startsWith('Once upon a time'));
  const ids = await client.completions.create({ model: MODEL, prompt: [10, 20, 30, 40], max_tokens: 3 });
  assert.equal(ids.usage.prompt_tokens, 4);
});

test('tool-call round trip: assistant tool_calls and the tool result are accepted and rendered', async () => {
  const tools = [{ type: 'function', function: { name: 'get_weather', description: 'Current weather',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } }];
  const first = await client.chat.completions.create({ model: MODEL, messages: hello, tools, tool_choice: 'auto', max_tokens: 8 });
  assert.ok(['stop', 'length', 'tool_calls'].includes(first.choices[0].finish_reason));
  const messages = [...hello,
    { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
    { role: 'tool', tool_call_id: 'call_1', content: '{"sky":"sunny","celsius":21}' }];
  const answer = await client.chat.completions.create({ model: MODEL, messages, tools, max_tokens: 8 });
  assert.equal(answer.choices[0].message.role, 'assistant');
  const rendered = await (await fetch(srv.base + '/tokenize', { method: 'POST', body: JSON.stringify({ messages, tools }) })).json();
  assert.equal(answer.usage.prompt_tokens, rendered.count);
  assert.match(rendered.text, /<｜DSML｜invoke name="get_weather">/);
  assert.match(rendered.text, /<tool_result>\{"sky":"sunny","celsius":21\}<\/tool_result>/);
});

test('thinking mode and reasoning effort are accepted', async () => {
  const r = await client.chat.completions.create({ model: MODEL, messages: hello, max_tokens: 6, reasoning_effort: 'high' });
  assert.equal(typeof r.choices[0].message.reasoning_content, 'string');
  const off = await client.chat.completions.create({ model: MODEL, messages: hello, max_tokens: 6, thinking: { type: 'disabled' } });
  assert.equal(off.choices[0].message.reasoning_content, undefined);
});

test('errors map to the SDK error classes', async () => {
  await assert.rejects(client.chat.completions.create({ model: MODEL, messages: hello, temperature: -1 }),
    (e) => e instanceof OpenAI.BadRequestError && e.status === 400 && e.type === 'invalid_request_error' && e.param === 'temperature');
  await assert.rejects(client.chat.completions.create({ model: 'gpt-4o', messages: hello }),
    (e) => e instanceof OpenAI.NotFoundError && e.code === 'model_not_found');
  await assert.rejects(client.chat.completions.create({ model: MODEL, messages: [] }),
    (e) => e instanceof OpenAI.BadRequestError);
  await assert.rejects(client.completions.create({ model: MODEL, prompt: 'x', max_tokens: 0 }),
    (e) => e instanceof OpenAI.BadRequestError && e.param === 'max_tokens');
});

test('aborting a stream cancels the request and frees its KV pages', async () => {
  const stream = await client.chat.completions.create({ model: MODEL, messages: hello, max_tokens: 100000, ignore_eos: true,
    stream: true, seed: 2 });
  // The random model can open a DSML tool call early (seeds 6 and 36 do): the parser then holds every later token
  // and the stream is silent until max_tokens. So the client leaves after 5 chunks or 2 s, whichever comes first.
  const timer = setTimeout(() => stream.controller.abort(), 2000);
  let n = 0;
  try {
    for await (const chunk of stream) {
      if (++n === 5) break;  // leaving the loop aborts the HTTP request
    }
  } catch (e) {
    assert.ok(e instanceof OpenAI.APIUserAbortError, `the abort ends the stream: ${e}`);
  } finally {
    clearTimeout(timer);
  }
  assert.ok(n >= 1, 'the stream had started');
  assert.ok(await waitFor(async () => {
    const m = await srv.metrics();
    return m.dsv4_num_requests_running === 0 && m.dsv4_kv_pages_used === 0 && m.dsv4_server_inflight_requests === 0;
  }), 'the engine dropped the request');
  const m = await srv.metrics();
  assert.ok(m['dsv4_request_finished_total{reason="cancelled"}'] >= 1);
});

test('SSE keep-alive comments in a silent stream are skipped by the SDK', async () => {
  // Every token opens a DSML tool call (logit_bias), so the stream is silent after its first chunk and the
  // server fills the silence with ": keep-alive" comment lines every 20 ms.
  const vocab = JSON.parse(fs.readFileSync(path.join(process.env.DSV4_REPO, 'tests/data/server/tokenizer.json'), 'utf8')).model.vocab;
  const open = vocab['\n\n<｜DSML｜tool_calls>\n'];
  assert.equal(typeof open, 'number');
  const ka = await startServer(['--sse-keepalive', '0.02']);
  try {
    const c = new OpenAI({ baseURL: ka.base + '/v1', apiKey: 'x', maxRetries: 0 });
    const params = { model: MODEL, messages: hello, max_tokens: 300, ignore_eos: true, seed: 1, logit_bias: { [open]: 100 } };
    const raw = await (await fetch(ka.base + '/v1/chat/completions', { method: 'POST',
      headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...params, stream: true }) })).text();
    assert.ok(raw.split(': keep-alive\n\n').length > 3, 'comments were sent');
    const whole = await c.chat.completions.create(params);
    let text = '';
    let finish = null;
    for await (const chunk of await c.chat.completions.create({ ...params, stream: true })) {
      for (const ch of chunk.choices) {
        text += ch.delta.content ?? '';
        if (ch.finish_reason) finish = ch.finish_reason;
      }
    }
    assert.equal(text, whole.choices[0].message.content);
    assert.equal(finish, 'length');
  } finally {
    assert.equal(await ka.stop(), 0);
  }
});

test('API key: AuthenticationError without it, success with it', async () => {
  const keyed = await startServer(['--api-key', 'test-key']);
  try {
    const bad = new OpenAI({ baseURL: keyed.base + '/v1', apiKey: 'wrong', maxRetries: 0 });
    await assert.rejects(bad.models.list(), (e) => e instanceof OpenAI.AuthenticationError && e.status === 401);
    const good = new OpenAI({ baseURL: keyed.base + '/v1', apiKey: 'test-key', maxRetries: 0 });
    const r = await good.chat.completions.create({ model: MODEL, messages: hello, max_tokens: 2 });
    assert.equal(r.object, 'chat.completion');
  } finally {
    assert.equal(await keyed.stop('SIGINT'), 0);
  }
});

test('a full queue is a RateLimitError', async () => {
  const small = await startServer(['--max-running', '1', '--max-queue', '0']);
  try {
    const c = new OpenAI({ baseURL: small.base + '/v1', apiKey: 'x', maxRetries: 0 });
    const long = await c.chat.completions.create({ model: MODEL, messages: hello, max_tokens: 100000, ignore_eos: true, stream: true });
    const it = long[Symbol.asyncIterator]();
    await it.next();
    await assert.rejects(c.chat.completions.create({ model: MODEL, messages: hello, max_tokens: 2 }),
      (e) => e instanceof OpenAI.RateLimitError && e.status === 429);
    long.controller.abort();
  } finally {
    assert.equal(await small.stop(), 0);
  }
});
