// Random-weight Hugging Face fixtures, each with the GGUF of the same weights beside it.
import assert from 'node:assert/strict';
import fs from 'node:fs';
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
