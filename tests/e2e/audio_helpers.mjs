// Helpers for the audio tests: the random whisper fixture, speech made at test time with
// espeak-ng + sox (WAV, MP3, FLAC and odd WAVs), and multipart uploads.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import assert from 'node:assert/strict';
import { ALLM_FIXTURE_TOOL, makeTempDir, runCommand, show } from './helpers.mjs';

export const WHISPER_MODEL = 'whisper';
export const WHISPER_FIXTURE_TOOL = process.env.ALLM_WHISPER_FIXTURE_TOOL ||
  path.join(path.dirname(ALLM_FIXTURE_TOOL), 'allm-make-whisper-fixture');

async function run(cmd, args) {
  const r = await runCommand(cmd, args, { timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r;
}

/** Writes the tiny random whisper model to `dest` (a .bin file); `seed` picks other weights. */
export async function makeWhisperFixture(dest, { seed } = {}) {
  await fsp.mkdir(path.dirname(dest), { recursive: true });
  await run(WHISPER_FIXTURE_TOOL, ['--out', dest, ...(seed === undefined ? [] : ['--seed', String(seed)])]);
  return dest;
}

const SENTENCE = 'Hello world. This is a test of the audio transcription endpoint.';
const LONG_TEXT = Array(6).fill('The quick brown fox jumps over the lazy dog, and then it rests for a while.').join(' ');

let speechCache = null;
/**
 * Speech files, made once per test process: {wav, mp3, flac, wav8, wav48stereo, wavFloat, long}
 * (paths). `long` is over 30 s, to check that long audio is transcribed whole.
 */
export function speechFiles() {
  if (!speechCache) {
    speechCache = (async () => {
      const dir = await makeTempDir('allm-speech-');
      const p = (name) => path.join(dir, name);
      await run('espeak-ng', ['-w', p('speech.wav'), SENTENCE]);
      await run('espeak-ng', ['-s', '110', '-w', p('long-raw.wav'), LONG_TEXT]);
      const sox = (args) => run('sox', args);
      await sox([p('speech.wav'), p('speech.mp3')]);
      await sox([p('speech.wav'), p('speech.flac')]);
      await sox([p('speech.wav'), '-b', '8', '-e', 'unsigned-integer', p('speech-8bit.wav')]);
      await sox([p('speech.wav'), '-r', '48000', '-c', '2', p('speech-48k-stereo.wav')]);
      await sox([p('speech.wav'), '-e', 'floating-point', '-b', '32', p('speech-float.wav')]);
      // Pad to well over 30 s so whisper needs more than one window.
      await sox([p('long-raw.wav'), p('long.wav'), 'pad', '0', '8']);
      return {
        wav: p('speech.wav'), mp3: p('speech.mp3'), flac: p('speech.flac'),
        wav8: p('speech-8bit.wav'), wav48stereo: p('speech-48k-stereo.wav'),
        wavFloat: p('speech-float.wav'), long: p('long.wav'),
      };
    })();
  }
  return speechCache;
}

export async function soxDuration(file) {
  const r = await run('soxi', ['-D', file]);
  return Number(r.stdout.trim());
}

/**
 * POST a multipart form: `fields` are text fields (arrays repeat the field), `file` is
 * {path} or {bytes, name}. Resolves {status, headers, text, json}.
 */
export async function postAudio(baseURL, route, fields, file, { signal } = {}) {
  const form = new FormData();
  if (file) {
    const bytes = file.bytes ?? fs.readFileSync(file.path);
    form.append('file', new Blob([bytes]), file.name ?? path.basename(file.path));
  }
  for (const [k, v] of Object.entries(fields)) {
    for (const item of Array.isArray(v) ? v : [v]) form.append(k, String(item));
  }
  const res = await fetch(baseURL + route, { method: 'POST', body: form, signal: signal || AbortSignal.timeout(55_000) });
  const text = await res.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: res.status, headers: res.headers, text, json };
}

/** SRT: numbered cues from 1, "HH:MM:SS,mmm --> HH:MM:SS,mmm" with start <= end. */
export function checkSrt(text, ctx = '') {
  const blocks = text.trim() === '' ? [] : text.trim().split(/\n\n+/);
  assert.ok(blocks.length >= 1, `SRT has no cues ${ctx}: ${JSON.stringify(text)}`);
  blocks.forEach((block, i) => {
    const lines = block.split('\n');
    assert.equal(lines[0], String(i + 1), `SRT cue #${i + 1} number ${ctx}: ${JSON.stringify(block)}`);
    const m = lines[1].match(/^(\d{2,}):(\d{2}):(\d{2}),(\d{3}) --> (\d{2,}):(\d{2}):(\d{2}),(\d{3})$/);
    assert.ok(m, `SRT cue #${i + 1} time line ${ctx}: ${JSON.stringify(lines[1])}`);
    const t = (a) => Number(a[0]) * 3600 + Number(a[1]) * 60 + Number(a[2]) + Number(a[3]) / 1000;
    assert.ok(t(m.slice(1, 5)) <= t(m.slice(5, 9)), `SRT cue #${i + 1} start after end ${ctx}`);
  });
  return blocks.length;
}

/** WebVTT: the WEBVTT header, then cues "HH:MM:SS.mmm --> HH:MM:SS.mmm". */
export function checkVtt(text, ctx = '') {
  assert.ok(text.startsWith('WEBVTT\n\n'), `VTT header ${ctx}: ${JSON.stringify(text.slice(0, 40))}`);
  const blocks = text.slice(8).trim().split(/\n\n+/).filter(Boolean);
  assert.ok(blocks.length >= 1, `VTT has no cues ${ctx}`);
  for (const block of blocks) {
    assert.match(block.split('\n')[0], /^\d{2,}:\d{2}:\d{2}\.\d{3} --> \d{2,}:\d{2}:\d{2}\.\d{3}$/,
      `VTT cue time line ${ctx}: ${JSON.stringify(block)}`);
  }
  return blocks.length;
}

/** verbose_json per OpenAI; returns the body. */
export function checkVerboseJson(r, { task, words = false, segments = true, duration } = {}) {
  assert.equal(r.status, 200, show('verbose_json', r));
  const b = r.json;
  assert.equal(b.task, task, show('task', r));
  assert.equal(typeof b.language, 'string', show('language', r));
  assert.ok(b.language.length > 0, show('language', r));
  assert.equal(typeof b.duration, 'number', show('duration', r));
  if (duration !== undefined) assert.ok(Math.abs(b.duration - duration) < 0.05, `duration ${b.duration} vs ${duration}`);
  assert.equal(typeof b.text, 'string', show('text', r));
  if (segments) {
    assert.ok(Array.isArray(b.segments) && b.segments.length >= 1, show('segments', r));
    b.segments.forEach((s, i) => {
      assert.equal(s.id, i, `segment id ${JSON.stringify(s)}`);
      for (const k of ['seek', 'start', 'end', 'temperature', 'avg_logprob', 'compression_ratio', 'no_speech_prob']) {
        assert.equal(typeof s[k], 'number', `segment.${k} ${JSON.stringify(s)}`);
      }
      assert.equal(typeof s.text, 'string');
      assert.ok(Array.isArray(s.tokens) && s.tokens.every(Number.isInteger), `segment.tokens ${JSON.stringify(s)}`);
      assert.ok(s.start <= s.end && s.end <= b.duration + 1e-6, `segment times ${JSON.stringify(s)} duration ${b.duration}`);
    });
  } else {
    assert.equal(b.segments, undefined, show('no segments unless asked', r));
  }
  if (words) {
    assert.ok(Array.isArray(b.words) && b.words.length >= 1, show('words', r));
    for (const w of b.words) {
      assert.equal(typeof w.word, 'string');
      assert.ok(w.start <= w.end && w.end <= b.duration + 1e-6, `word times ${JSON.stringify(w)}`);
    }
  } else {
    assert.equal(b.words, undefined, show('no words unless asked', r));
  }
  return b;
}
