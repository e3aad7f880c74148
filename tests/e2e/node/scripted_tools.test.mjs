// Tool calls and reasoning through the OpenAI SDK, end to end: a scripted model (scripted_model.mjs) emits,
// greedily, "Let me check the weather." and a DSML call of get_weather(city="Paris") after </think>, and in
// thinking mode a reasoning sentence first. The SDK must see tool_calls (whole and streamed), finish_reason
// tool_calls, reasoning_content; then the round trip (its own assistant message + the tool result) gets the
// answer, steered by logit_bias to the scripted answer token.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import OpenAI from 'openai';

import { startServer } from './harness.mjs';
import { buildScriptedModel } from './scripted_model.mjs';

const repo = process.env.DSV4_REPO;
const vocab = JSON.parse(fs.readFileSync(path.join(repo, 'tests/data/server/tokenizer.json'), 'utf8')).model.vocab;
const id = (text) => { if (!(text in vocab)) throw new Error('no token ' + JSON.stringify(text)); return vocab[text]; };
const T = {
  think: id('<think>'), endThink: id('</think>'), eos: id('<｜end▁of▁sentence｜>'),
  reason: id('The user asks about the weather, so I will call a tool.'), intro: id('Let me check the weather.'),
  open: id('\n\n<｜DSML｜tool_calls>\n'), invoke: id('<｜DSML｜invoke name="get_weather">\n'),
  param: id('<｜DSML｜parameter name="city" string="true">Paris</｜DSML｜parameter>\n'),
  endInvoke: id('</｜DSML｜invoke>\n'), close: id('</｜DSML｜tool_calls>'), answer: id('It is sunny in Paris.'),
};
const MODEL = 'scripted';
const tools = [{ type: 'function', function: { name: 'get_weather', description: 'Current weather in a city',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } }];
const ask = [{ role: 'user', content: 'What is the weather in Paris?' }];
let srv;
let client;
let tmp;

before(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'dsv4-scripted-'));
  const dir = buildScriptedModel(repo, path.join(tmp, MODEL), [
    [T.think, T.reason, 40], [T.reason, T.endThink, 40], [T.endThink, T.intro, 40], [T.intro, T.open, 40],
    [T.open, T.invoke, 40], [T.invoke, T.param, 40], [T.param, T.endInvoke, 40], [T.endInvoke, T.close, 40],
    [T.close, T.eos, 40], [T.answer, T.eos, 100]]);
  srv = await startServer([], { model: dir });
  client = new OpenAI({ baseURL: srv.base + '/v1', apiKey: 'x', maxRetries: 0 });
});

after(async () => {
  assert.equal(await srv.stop(), 0);
  fs.rmSync(tmp, { recursive: true, force: true });
});

const expectWeatherCall = (message) => {
  assert.equal(message.content, 'Let me check the weather.');
  assert.equal(message.tool_calls.length, 1);
  const call = message.tool_calls[0];
  assert.equal(call.type, 'function');
  assert.match(call.id, /^call_[0-9a-f]{24}$/);
  assert.equal(call.function.name, 'get_weather');
  assert.deepEqual(JSON.parse(call.function.arguments), { city: 'Paris' });
};

test('a DSML tool call becomes tool_calls with finish_reason tool_calls', async () => {
  const r = await client.chat.completions.create({ model: MODEL, messages: ask, tools, temperature: 0, max_tokens: 32 });
  expectWeatherCall(r.choices[0].message);
  assert.equal(r.choices[0].finish_reason, 'tool_calls');
  assert.equal(r.usage.completion_tokens, 7);  // intro, 5 DSML pieces, EOS
});

test('streamed: tool_calls deltas, accumulated by the SDK stream helper', async () => {
  const stream = await client.chat.completions.create({ model: MODEL, messages: ask, tools, temperature: 0, max_tokens: 32, stream: true });
  const deltas = [];
  let finish = null;
  for await (const chunk of stream) {
    for (const c of chunk.choices) {
      if (c.delta.tool_calls) deltas.push(...c.delta.tool_calls);
      if (c.finish_reason) finish = c.finish_reason;
    }
  }
  assert.equal(finish, 'tool_calls');
  assert.equal(deltas.length, 1);
  assert.equal(deltas[0].index, 0);
  assert.equal(deltas[0].function.name, 'get_weather');
  const final = await client.chat.completions.stream({ model: MODEL, messages: ask, tools, temperature: 0, max_tokens: 32 }).finalChatCompletion();
  expectWeatherCall(final.choices[0].message);
  assert.equal(final.choices[0].finish_reason, 'tool_calls');
});

test('thinking mode: reasoning_content, then the tool call', async () => {
  const r = await client.chat.completions.create({ model: MODEL, messages: ask, tools, temperature: 0, max_tokens: 32,
    reasoning_effort: 'high' });
  assert.equal(r.choices[0].message.reasoning_content, 'The user asks about the weather, so I will call a tool.');
  expectWeatherCall(r.choices[0].message);
  let reasoning = '';
  for await (const chunk of await client.chat.completions.create({ model: MODEL, messages: ask, tools, temperature: 0,
    max_tokens: 32, stream: true, chat_template_kwargs: { thinking: true } })) {
    reasoning += chunk.choices[0]?.delta?.reasoning_content ?? '';
  }
  assert.equal(reasoning, r.choices[0].message.reasoning_content);
});

test('round trip: assistant tool call -> tool result -> answer', async () => {
  const first = await client.chat.completions.create({ model: MODEL, messages: ask, tools, temperature: 0, max_tokens: 32 });
  const messages = [...ask, first.choices[0].message,
    { role: 'tool', tool_call_id: first.choices[0].message.tool_calls[0].id, content: '{"sky": "sunny", "celsius": 21}' }];
  const r = await client.chat.completions.create({ model: MODEL, messages, tools, temperature: 0, max_tokens: 8,
    logit_bias: { [T.answer]: 60 } });
  assert.equal(r.choices[0].message.content, 'It is sunny in Paris.');
  assert.equal(r.choices[0].message.tool_calls, undefined);
  assert.equal(r.choices[0].finish_reason, 'stop');
  const rendered = await (await fetch(srv.base + '/tokenize', { method: 'POST', body: JSON.stringify({ messages, tools }) })).json();
  assert.match(rendered.text, /<tool_result>\{"sky": "sunny", "celsius": 21\}<\/tool_result>/);
  assert.equal(r.usage.prompt_tokens, rendered.count);
});
