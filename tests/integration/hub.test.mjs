// `allm pull` / `ls` / `show` / `rm` and serving from the Hugging Face Hub cache, against a local
// stand-in for the Hub (tests/integration/hub_standin.mjs).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import {
  ALLM_BIN, AllmServer, makeTempDir, runCommand, HOOK_TIMEOUT_MS, TEST_TIMEOUT_MS,
} from '../e2e/helpers.mjs';
import { HF_TOOL } from './hf_fixture.mjs';

const SD_FIXTURE_TOOL = path.join(path.dirname(ALLM_BIN), 'allm-make-sd-fixture');
import { HubStandIn } from './hub_standin.mjs';

const T = { timeout: TEST_TIMEOUT_MS };

/** Runs `allm ARGS` with `env` added, stdout to a file (not a terminal). */
function allm(args, env = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(ALLM_BIN, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

async function readTree(dir) {
  const out = {};
  for (const name of await fsp.readdir(dir, { recursive: true })) {
    const p = path.join(dir, name);
    if (!(await fsp.stat(p)).isDirectory()) out[name] = await fsp.readFile(p);
  }
  return out;
}

describe('Hugging Face Hub: allm pull, ls, show, rm', { timeout: HOOK_TIMEOUT_MS + 20 * TEST_TIMEOUT_MS }, () => {
  const hub = new HubStandIn();
  let tmp;
  let cache;
  let env;
  let llama;        // the files of a tiny llama safetensors folder
  let gguf;         // a GGUF of the same weights
  const commits = {};

  before(async () => {
    tmp = await makeTempDir('allm-hub-');
    const r = await runCommand(HF_TOOL, ['--arch', 'llama', '--dtype', 'f16', '--out', path.join(tmp, 'llama'),
      '--gguf', path.join(tmp, 'llama.gguf')]);
    assert.equal(r.code, 0, r.stderr);
    llama = await readTree(path.join(tmp, 'llama'));
    gguf = await fsp.readFile(path.join(tmp, 'llama.gguf'));
    const noise = (n) => crypto.randomBytes(n);
    commits.llama = hub.addRepo('test-org/tiny-llama', {
      ...llama, 'README.md': Buffer.from('# tiny'), 'pytorch_model.bin': noise(64),
      'original/consolidated.00.pth': noise(64), 'consolidated.safetensors': noise(64),
    });
    commits.gguf = hub.addRepo('test-org/tiny-GGUF', {
      'tiny-Q4_K_M.gguf': gguf, 'tiny-Q8_0.gguf': noise(300), 'mmproj-tiny-f16.gguf': noise(100),
      'tiny-F16-00001-of-00002.gguf': noise(200), 'tiny-F16-00002-of-00002.gguf': noise(200),
      'README.md': Buffer.from('quants'),
    });
    hub.addRepo('ggerganov/whisper.cpp', { 'ggml-tiny.bin': noise(500), 'ggml-base.en.bin': noise(700) });
    hub.addRepo('openai/whisper-tiny', {
      'config.json': Buffer.from(JSON.stringify({ model_type: 'whisper' })), 'model.safetensors': noise(1000),
    });
    hub.addRepo('test-org/bin-only', { 'config.json': llama['config.json'], 'pytorch_model.bin': noise(1000) });
    hub.addRepo('test-org/gated', llama, { gated: true });
    hub.addRepo('test-org/cut', llama, { cutOnce: ['model.safetensors'] });
    hub.addRepo('test-org/corrupt', llama, { wrongSha: ['model.safetensors'] });
    hub.addRepo('test-org/missing', llama, { missing: ['tokenizer.json'] });
    await hub.start();
    cache = path.join(tmp, 'hf', 'hub');
    env = { HF_HOME: path.join(tmp, 'hf'), HF_ENDPOINT: hub.endpoint, HF_TOKEN: '', HF_HUB_CACHE: '', HF_HUB_OFFLINE: '' };
  });

  after(async () => {
    await hub.stop();
    await fsp.rm(tmp, { recursive: true, force: true });
  });

  const snapshot = (folder, commit) => path.join(cache, folder, 'snapshots', commit);

  it('pulls a safetensors folder: only the files the model needs, in the shared cache layout', T, async () => {
    hub.requests.length = 0;
    const r = await allm(['pull', 'test-org/tiny-llama'], env);
    assert.equal(r.code, 0, r.stderr);
    const snap = snapshot('models--test-org--tiny-llama', commits.llama);
    const files = (await fsp.readdir(snap)).sort();
    assert.deepEqual(files, Object.keys(llama).sort());
    for (const file of files) {
      const link = await fsp.readlink(path.join(snap, file));
      assert.match(link, /^\.\.\/\.\.\/blobs\/[0-9a-f]{40,64}$/, file);
      assert.deepEqual(await fsp.readFile(path.join(snap, file)), llama[file]);
    }
    // LFS files are named by their sha256, git files by their git blob id (the ETag).
    const weights = crypto.createHash('sha256').update(llama['model.safetensors']).digest('hex');
    assert.equal(await fsp.readlink(path.join(snap, 'model.safetensors')), `../../blobs/${weights}`);
    assert.equal(await fsp.readFile(path.join(cache, 'models--test-org--tiny-llama', 'refs', 'main'), 'utf8'), commits.llama);
    // The weights came from the CDN the resolve URL redirected to; one line per file on stdout.
    assert.equal(hub.count('cdn', 'GET'), 1);
    for (const file of files) assert.match(r.stdout, new RegExp(`^${file.replace('.', '\\.')}  .*downloaded`, 'm'));
    assert.doesNotMatch(r.stdout, /\r/);
  });

  it('pulls a diffusers folder: its pipeline components only, and serves it for images', T, async () => {
    const sdDir = path.join(tmp, 'sd');
    const made = await runCommand(SD_FIXTURE_TOOL, [sdDir, '--layout', 'diffusers']);
    assert.equal(made.code, 0, made.stderr);
    const sd = await readTree(sdDir);
    const noise = (n) => crypto.randomBytes(n);
    const commit = hub.addRepo('test-org/tiny-sd', {
      ...sd, 'README.md': Buffer.from('# sd'), 'v1-5-pruned-emaonly.safetensors': noise(300),
      'safety_checker/config.json': Buffer.from('{}'), 'safety_checker/model.safetensors': noise(200),
      'feature_extractor/preprocessor_config.json': Buffer.from('{}'),
      'unet/diffusion_pytorch_model.fp16.safetensors': noise(200), 'unet/diffusion_pytorch_model.bin': noise(200),
      'vae/diffusion_pytorch_model.bin': noise(100),
    });
    const r = await allm(['pull', 'test-org/tiny-sd'], env);
    assert.equal(r.code, 0, r.stderr);
    const snap = snapshot('models--test-org--tiny-sd', commit);
    const pulled = (await fsp.readdir(snap, { recursive: true }))
      .filter((f) => !fs.statSync(path.join(snap, f)).isDirectory()).sort();
    assert.deepEqual(pulled, Object.keys(sd).sort());
    // Served from the cache, it draws what the same folder served from disk draws.
    const srv = new AllmServer({
      tmp: await makeTempDir('allm-hub-serve-'), env: { ...env, HF_HUB_CACHE: cache },
      extraArgs: ['--model', `sd-local=${sdDir}`, '--image-queue', '0'],
    });
    try {
      await srv.start();
      const draw = async (model) => {
        const res = await fetch(`${srv.baseURL}/v1/images/generations`, {
          method: 'POST', headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ model, prompt: 'a cat', size: '64x64', steps: 2, seed: 3, response_format: 'b64_json' }),
        });
        assert.equal(res.status, 200, `${model}: ${await res.clone().text()}`);
        return (await res.json()).data[0].b64_json;
      };
      assert.equal(await draw('test-org/tiny-sd'), await draw('sd-local'));
    } finally {
      await srv.cleanup();
    }
  });

  it('draws a progress bar (bytes, rate, ETA) on a terminal', T, async () => {
    // util-linux `script` runs the pull in a pseudo-terminal and copies what it drew.
    const command = `${ALLM_BIN} pull test-org/tiny-GGUF:Q4_K_M`;
    const r = await allm(['--version'], env);  // the binary runs at all
    assert.equal(r.code, 0);
    const tty = await new Promise((resolve, reject) => {
      const child = spawn('script', ['-qfec', command, '/dev/null'], {
        env: { ...process.env, ...env, HF_HUB_CACHE: path.join(tmp, 'tty-cache') }, stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout.on('data', (d) => { out += d; });
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, out }));
    });
    assert.equal(tty.code, 0, tty.out);
    assert.match(tty.out, /\r\x1b\[Ktiny-Q4_K_M\.gguf \[#{24}\] [\d.]+ MiB \/ [\d.]+ MiB {2}[\d.]+ [MG]iB\/s {2}ETA /);
    assert.match(tty.out, /tiny-Q4_K_M\.gguf {2}[\d.]+ MiB {2}downloaded in/);
  });

  it('pulls nothing again for a complete model, and nothing at all offline', T, async () => {
    hub.requests.length = 0;
    let r = await allm(['pull', 'test-org/tiny-llama'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(hub.requests.map((q) => q.url), [`/api/models/test-org/tiny-llama/revision/main?blobs=true`]);
    assert.match(r.stdout, / 0\.0 MiB downloaded/);
    hub.requests.length = 0;
    r = await allm(['pull', 'test-org/tiny-llama'], { ...env, HF_HUB_OFFLINE: '1' });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(hub.requests.length, 0);
    r = await allm(['pull', 'test-org/never-pulled'], { ...env, HF_HUB_OFFLINE: '1' });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /not in the cache.*HF_HUB_OFFLINE/);
    assert.equal(hub.requests.length, 0);
  });

  it('picks one GGUF by quant tag (Q4_K_M by default, all shards of a split one)', T, async () => {
    const folder = 'models--test-org--tiny-GGUF';
    let r = await allm(['pull', 'test-org/tiny-GGUF:q8_0'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await fsp.readdir(snapshot(folder, commits.gguf)), ['tiny-Q8_0.gguf']);
    r = await allm(['pull', 'test-org/tiny-GGUF'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(fs.existsSync(path.join(snapshot(folder, commits.gguf), 'tiny-Q4_K_M.gguf')));
    r = await allm(['pull', 'test-org/tiny-GGUF:F16'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual((await fsp.readdir(snapshot(folder, commits.gguf))).sort(), [
      'tiny-F16-00001-of-00002.gguf', 'tiny-F16-00002-of-00002.gguf', 'tiny-Q4_K_M.gguf', 'tiny-Q8_0.gguf']);
    r = await allm(['pull', 'test-org/tiny-GGUF:Q5_K_S'], env);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /no GGUF file tagged 'Q5_K_S'.*Q4_K_M/);
  });

  it('picks one whisper.cpp model by its tag', T, async () => {
    const r = await allm(['pull', 'ggerganov/whisper.cpp:base.en'], env);
    assert.equal(r.code, 0, r.stderr);
    const snaps = path.join(cache, 'models--ggerganov--whisper.cpp', 'snapshots');
    const [commit] = await fsp.readdir(snaps);
    assert.deepEqual(await fsp.readdir(path.join(snaps, commit)), ['ggml-base.en.bin']);
  });

  it('refuses what it cannot serve before downloading weights, saying what to pull instead', T, async () => {
    hub.requests.length = 0;
    let r = await allm(['pull', 'openai/whisper-tiny'], env);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /allm pull ggerganov\/whisper\.cpp:tiny/);
    assert.equal(hub.count('cdn'), 0);
    r = await allm(['pull', 'test-org/bin-only'], env);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /only PyTorch \.bin weights.*GGUF/);
    assert.equal(hub.count('cdn'), 0);
    assert.ok(!fs.existsSync(path.join(cache, 'models--test-org--bin-only', 'snapshots')));
  });

  it('says a gated repo needs a token, and sends HF_TOKEN (or the token file) to the Hub only', T, async () => {
    let r = await allm(['pull', 'test-org/gated'], env);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /gated or private.*401.*HF_TOKEN/);
    hub.requests.length = 0;
    r = await allm(['pull', 'test-org/gated'], { ...env, HF_TOKEN: hub.token });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(hub.requests.filter((q) => q.server === 'hub').every((q) => q.authorization === `Bearer ${hub.token}`));
    assert.ok(hub.requests.filter((q) => q.server === 'cdn').every((q) => q.authorization === undefined));
    await fsp.rm(path.join(cache, 'models--test-org--gated'), { recursive: true });
    await fsp.writeFile(path.join(tmp, 'hf', 'token'), `${hub.token}\n`);
    r = await allm(['pull', 'test-org/gated'], env);
    await fsp.rm(path.join(tmp, 'hf', 'token'));
    assert.equal(r.code, 0, r.stderr);
  });

  it('follows a renamed repo to its new name, caching it under the name asked for', T, async () => {
    hub.renamed.set('old-org/tiny', 'test-org/tiny-llama');
    const r = await allm(['pull', 'old-org/tiny'], env);
    assert.equal(r.code, 0, r.stderr);
    const snap = snapshot('models--old-org--tiny', commits.llama);
    assert.deepEqual((await fsp.readdir(snap)).sort(), Object.keys(llama).sort());
    assert.ok(hub.requests.some((q) => q.url.startsWith('/old-org/tiny/resolve/')));
  });

  it('reports a repo, revision or file the Hub does not have', T, async () => {
    let r = await allm(['pull', 'test-org/no-such-repo'], env);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /repository test-org\/no-such-repo not found.*\(401\).*if it is private, set HF_TOKEN/);
    r = await allm(['pull', 'test-org/tiny-llama@v9'], env);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /test-org\/tiny-llama at revision v9 not found.*404/);
    r = await allm(['pull', 'test-org/missing'], env);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /tokenizer\.json.*not found.*404/);
  });

  it('resumes a download cut mid-file from its .incomplete file', T, async () => {
    hub.requests.length = 0;
    let r = await allm(['pull', 'test-org/cut'], env);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /run the same command again to resume/);
    const blobs = path.join(cache, 'models--test-org--cut', 'blobs');
    const partial = (await fsp.readdir(blobs)).find((f) => f.endsWith('.incomplete'));
    assert.ok(partial, 'a .incomplete blob stays');
    const have = (await fsp.stat(path.join(blobs, partial))).size;
    assert.ok(have > 0 && have < llama['model.safetensors'].length);
    hub.requests.length = 0;
    r = await allm(['pull', 'test-org/cut'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(hub.requests.filter((q) => q.server === 'cdn').map((q) => q.range), [`bytes=${have}-`]);
    const snap = snapshot('models--test-org--cut', hub.repos.get('test-org/cut').commit);
    assert.deepEqual(await fsp.readFile(path.join(snap, 'model.safetensors')), llama['model.safetensors']);
  });

  it('refuses a download whose sha256 is not the one the Hub lists, leaving no snapshot', T, async () => {
    const r = await allm(['pull', 'test-org/corrupt'], env);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /model\.safetensors.*corrupt.*sha256/);
    assert.ok(!fs.existsSync(path.join(cache, 'models--test-org--corrupt', 'snapshots')));
  });

  it('rejects bad usage with status 2', T, async () => {
    const bad = [['pull'], ['pull', 'no-slash'], ['pull', 'a/b/c'], ['pull', '../x'], ['pull', 'a/b', 'c'],
      ['rm'], ['rm', '--bogus', 'a/b'], ['show'], ['show', '--bogus'], ['ls', 'extra']];
    for (const args of bad) {
      const r = await allm(args, env);
      assert.equal(r.code, 2, args.join(' '));
      assert.match(r.stderr, new RegExp(`^allm ${args[0]}: .*see allm ${args[0]} --help`), args.join(' '));
    }
    for (const cmd of ['pull', 'ls', 'show', 'rm']) {
      const r = await allm([cmd, '--help'], env);
      assert.equal(r.code, 0, cmd);
      assert.match(r.stdout, /usage: allm/);
    }
  });

  describe('a cache written by huggingface_hub', () => {
    // Two revisions of one repo, as the Python tools lay them out: symlinked snapshots sharing
    // the blobs of the files both have, refs/main naming the newer.
    const old = 'a'.repeat(40);
    const fresh = 'b'.repeat(40);
    let folder;
    before(async () => {
      folder = path.join(cache, 'models--py-org--tiny');
      await fsp.mkdir(path.join(folder, 'blobs'), { recursive: true });
      await fsp.mkdir(path.join(folder, 'refs'), { recursive: true });
      await fsp.writeFile(path.join(folder, 'refs', 'main'), fresh);
      const oldWeights = Buffer.from(llama['model.safetensors']);
      const blobOf = async (data) => {
        const name = crypto.createHash('sha256').update(data).digest('hex');
        await fsp.writeFile(path.join(folder, 'blobs', name), data);
        return name;
      };
      for (const [commit, weights] of [[old, crypto.randomBytes(4096)], [fresh, oldWeights]]) {
        const dir = path.join(folder, 'snapshots', commit);
        await fsp.mkdir(dir, { recursive: true });
        for (const [file, data] of Object.entries({ ...llama, 'model.safetensors': weights })) {
          await fsp.symlink(`../../blobs/${await blobOf(data)}`, path.join(dir, file));
        }
      }
    });

    it('lists and shows cached models', T, async () => {
      const r = await allm(['ls'], { ...env, ALLM_MODELS_DIR: path.join(tmp, 'no-models') });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^py-org\/tiny\s+text\s+safetensors\s+llama\s/m);
      assert.match(r.stdout, /^test-org\/tiny-GGUF:Q4_K_M\s+text\s+gguf\s+llama\s/m);
      assert.match(r.stdout, /^ggerganov\/whisper\.cpp:base\.en\s+audio\s/m);
      const s = await allm(['show', 'py-org/tiny'], env);
      assert.equal(s.code, 0, s.stderr);
      assert.match(s.stdout, new RegExp(`path: .*snapshots/${fresh}`));
      assert.match(s.stdout, /architecture: llama/);
      assert.match(s.stdout, /context length: \d+/);
      assert.match(s.stdout, /model\.safetensors/);
      assert.equal((await allm(['show', 'py-org/nothing'], env)).code, 1);
    });

    it('serves cached models with ids ORG/NAME and ORG/NAME:QUANT, and pulls --model at start', T, async () => {
      hub.requests.length = 0;
      const srv = new AllmServer({
        tmp: await makeTempDir('allm-hub-serve-'), env: { ...env, HF_HUB_CACHE: cache },
        extraArgs: ['--model', 'test-org/tiny-llama', '--model', 'test-org/tiny-GGUF:Q4_K_M'],
      });
      try {
        await srv.start();
        const list = await (await fetch(`${srv.baseURL}/v1/models`)).json();
        const ids = list.data.map((m) => m.id);
        for (const id of ['py-org/tiny', 'test-org/tiny-llama', 'test-org/tiny-GGUF:Q4_K_M']) assert.ok(ids.includes(id), id);
        const one = await fetch(`${srv.baseURL}/v1/models/py-org/tiny`);
        assert.equal(one.status, 200);
        assert.equal((await one.json()).id, 'py-org/tiny');
        for (const model of ['py-org/tiny', 'test-org/tiny-GGUF:Q4_K_M']) {
          const res = await fetch(`${srv.baseURL}/v1/chat/completions`, {
            method: 'POST', headers: { 'Content-Type': 'application/json' },
            body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }], max_tokens: 3 }),
          });
          assert.equal(res.status, 200, `${model}: ${await res.clone().text()}`);
          assert.equal((await res.json()).model, model);
        }
        // Both --model were complete in the cache: no request to the Hub at all.
        assert.equal(hub.requests.length, 0);
      } finally {
        await srv.cleanup();
      }
    });

    it('pulls a missing --model at start with progress in the log, and refuses it clearly offline', T, async () => {
      const serveEnv = { ...env, HF_HUB_CACHE: path.join(tmp, 'serve-cache') };
      const srv = new AllmServer({
        tmp: await makeTempDir('allm-hub-serve-'), env: serveEnv, extraArgs: ['--model', 'test-org/tiny-GGUF:Q4_K_M'],
      });
      try {
        await srv.start();
        assert.match(srv.log, /pull: downloaded tiny-Q4_K_M\.gguf/);
        const ids = (await (await fetch(`${srv.baseURL}/v1/models`)).json()).data.map((m) => m.id);
        assert.ok(ids.includes('test-org/tiny-GGUF:Q4_K_M'));
      } finally {
        await srv.cleanup();
      }
      const r = await allm(['serve', '--models-dir', path.join(tmp, 'none'), '--data-dir', path.join(tmp, 'data'),
        '--model', 'test-org/tiny-llama'],
        { ...serveEnv, HF_HUB_OFFLINE: '1' });
      assert.notEqual(r.code, 0);
      assert.match(r.stderr + r.stdout, /test-org\/tiny-llama.*not in the cache.*HF_HUB_OFFLINE/);
    });

    it('rm removes a snapshot and the blobs only it used, keeping blobs shared with another revision', T, async () => {
      const blobsBefore = await fsp.readdir(path.join(folder, 'blobs'));
      const r = await allm(['rm', `py-org/tiny@${old}`], env);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(!fs.existsSync(path.join(folder, 'snapshots', old)));
      const blobsAfter = await fsp.readdir(path.join(folder, 'blobs'));
      assert.equal(blobsAfter.length, blobsBefore.length - 1, 'only the old weights go');
      for (const file of Object.keys(llama)) {
        assert.deepEqual(await fsp.readFile(path.join(folder, 'snapshots', fresh, file)), llama[file]);
      }
      assert.equal((await allm(['rm', 'py-org/tiny'], env)).code, 0);
      assert.ok(!fs.existsSync(folder));
      assert.equal((await allm(['rm', 'py-org/tiny'], env)).code, 1);
    });
  });
});
