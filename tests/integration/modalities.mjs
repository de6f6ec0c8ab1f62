// A server setup (startServer's `setup`) with a model of every modality beside the text fixture.
import assert from 'node:assert/strict';
import path from 'node:path';
import { REPO_ROOT, runCommand } from '../e2e/helpers.mjs';
import { WHISPER_MODEL, makeWhisperFixture } from '../e2e/audio_helpers.mjs';

const SD_FIXTURE_TOOL = path.resolve(REPO_ROOT, process.env.ALLM_SD_FIXTURE_TOOL ||
  path.join(path.dirname(process.env.ALLM_BIN || 'build/bin/allm'), 'allm-make-sd-fixture'));
export const IMAGE_MODEL = 'sd';

// models/: tiny.gguf (startServer), whisper.bin, sd/model.safetensors (+ tokenizer/).
export async function withAllModalities({ modelsDir }) {
  await makeWhisperFixture(path.join(modelsDir, `${WHISPER_MODEL}.bin`));
  const r = await runCommand(SD_FIXTURE_TOOL, [path.join(modelsDir, IMAGE_MODEL)]);
  assert.equal(r.code, 0, `allm-make-sd-fixture failed: ${r.stderr}`);
  return ['--model', `${IMAGE_MODEL}=${path.join(modelsDir, IMAGE_MODEL, 'model.safetensors')}`,
    '--image-max-size', '128'];
}
