// Hostile audio uploads against a running server: tiny files whose headers claim hours at 768 kHz
// on many channels, or whose data expands a thousandfold, keep the server's peak memory within
// the bound the README states; decoding runs only once the job holds a slot (--audio-parallel,
// --audio-queue) and on its clock (--audio-timeout), and stops when the client leaves.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { useServer, getJSON, assertError, sleep, TEST_TIMEOUT_MS, HOOK_TIMEOUT_MS } from '../e2e/helpers.mjs';
import { WHISPER_MODEL, makeWhisperFixture, postAudio } from '../e2e/audio_helpers.mjs';

const T = { timeout: TEST_TIMEOUT_MS };
const TRANSCRIBE = '/v1/audio/transcriptions';
const withWhisper = async ({ modelsDir }) => { await makeWhisperFixture(path.join(modelsDir, `${WHISPER_MODEL}.bin`)); };
const upload = (baseURL, bytes, name, options) => postAudio(baseURL, TRANSCRIBE, { model: WHISPER_MODEL }, { bytes, name }, options);

// --- files

function crc8(bytes) {
  let crc = 0;
  for (const b of bytes) {
    crc ^= b;
    for (let i = 0; i < 8; i++) crc = crc & 0x80 ? ((crc << 1) ^ 0x07) & 0xFF : (crc << 1) & 0xFF;
  }
  return crc;
}

function crc16(bytes) {
  let crc = 0;
  for (const b of bytes) {
    crc ^= b << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x8005) & 0xFFFF : (crc << 1) & 0xFFFF;
  }
  return crc;
}

// FLAC's UTF-8-like coding of a frame number.
function flacFrameNumber(v) {
  if (v < 0x80) return [v];
  const tail = [];
  let bytes = 1;
  for (let room = 0x1F; v > room; room >>= 1) {
    tail.unshift(0x80 | (v & 0x3F));
    v >>= 6;
    bytes++;
  }
  return [((0xFF00 >> bytes) & 0xFF) | v, ...tail];
}

/**
 * A FLAC file of `seconds` of audio in frames of 65535 samples whose every channel is a CONSTANT
 * subframe: about 30 bytes a frame, whatever the rate. STREAMINFO declares `declaredSeconds`
 * (0: unknown).
 */
function constantFlac({ rate = 768000, channels = 8, seconds, declaredSeconds = 0 }) {
  const BLOCK = 65535;
  const head = Buffer.alloc(42);
  head.write('fLaC', 0, 'latin1');
  head[4] = 0x80;  // the last metadata block: STREAMINFO
  head.writeUIntBE(34, 5, 3);
  head.writeUInt16BE(BLOCK, 8);
  head.writeUInt16BE(BLOCK, 10);
  const declared = BigInt(Math.round(declaredSeconds * rate));
  head.writeBigUInt64BE((BigInt(rate) << 44n) | (BigInt(channels - 1) << 41n) | (15n << 36n) | declared, 18);
  const frames = [head];
  for (let i = 0; i < Math.ceil((seconds * rate) / BLOCK); i++) {
    const f = [0xFF, 0xF8, 0x70, ((channels - 1) << 4) | 0x08, ...flacFrameNumber(i), (BLOCK - 1) >> 8, (BLOCK - 1) & 0xFF];
    f.push(crc8(f));
    for (let c = 0; c < channels; c++) f.push(0, ((1000 * (c + 1)) >> 8) & 0xFF, (1000 * (c + 1)) & 0xFF);
    const crc = crc16(f);
    f.push(crc >> 8, crc & 0xFF);
    frames.push(Buffer.from(f));
  }
  return Buffer.concat(frames);
}

/** 16-bit PCM WAV of `frames` frames of a quiet tone; as RF64, its ds64 chunk declares `rf64Frames`. */
function wav({ rate = 16000, channels = 1, frames, rf64Frames }) {
  const data = Buffer.alloc(frames * channels * 2);
  for (let i = 0; i < frames * channels; i++) data.writeInt16LE(Math.round(3000 * Math.sin(i / 7)), 2 * i);
  const fmt = Buffer.alloc(24);
  fmt.write('fmt ', 0, 'latin1');
  fmt.writeUInt32LE(16, 4);
  fmt.writeUInt16LE(1, 8);
  fmt.writeUInt16LE(channels, 10);
  fmt.writeUInt32LE(rate, 12);
  fmt.writeUInt32LE(rate * channels * 2, 16);
  fmt.writeUInt16LE(channels * 2, 20);
  fmt.writeUInt16LE(16, 22);
  const parts = [Buffer.from(rf64Frames ? 'RF64\xff\xff\xff\xffWAVE' : 'RIFF\0\0\0\0WAVE', 'latin1')];
  if (rf64Frames) {
    const ds64 = Buffer.alloc(36);
    ds64.write('ds64', 0, 'latin1');
    ds64.writeUInt32LE(28, 4);
    const bytes = BigInt(rf64Frames) * BigInt(channels * 2);
    ds64.writeBigUInt64LE(bytes + 36n, 8);
    ds64.writeBigUInt64LE(bytes, 16);
    ds64.writeBigUInt64LE(BigInt(rf64Frames), 24);
    parts.push(ds64);
  }
  const dataHead = Buffer.alloc(8);
  dataHead.write('data', 0, 'latin1');
  dataHead.writeUInt32LE(data.length, 4);
  parts.push(fmt, dataHead, data);
  const out = Buffer.concat(parts);
  if (!rf64Frames) out.writeUInt32LE(out.length - 8, 4);
  return out;
}

// --- the server's memory, from /proc

function statusKB(pid, key) {
  const m = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm'));
  assert.ok(m, `no ${key} in /proc/${pid}/status`);
  return Number(m[1]);
}

// Resets the process's peak resident size to its current size (Linux: 5 > clear_refs).
function resetPeak(pid) {
  fs.writeFileSync(`/proc/${pid}/clear_refs`, '5');
  const rss = statusKB(pid, 'VmRSS');
  assert.ok(statusKB(pid, 'VmHWM') <= rss + 1024, 'the peak was not reset');
  return rss;
}

// The README's bound for decoding: the 16 kHz output twice over (64 KB a second of accepted audio,
// a growing buffer copies itself) plus a few MB of working buffers, whatever the header claims.
const MAX_SECONDS = 60;
const DECODE_BOUND_KB = (2 * MAX_SECONDS * 64) + 16 * 1024;
// The slack for everything else a request touches (HTTP buffers, the multipart copy, stacks).
const OTHER_KB = 32 * 1024;

describe('hostile audio: peak memory', { timeout: HOOK_TIMEOUT_MS + 4 * TEST_TIMEOUT_MS }, () => {
  const srv = useServer({ setup: withWhisper, extraArgs: ['--max-audio-seconds', String(MAX_SECONDS), '--audio-parallel', '1'] });

  it('tiny files claiming hours at 768 kHz on many channels stay within the stated bound', T, async () => {
    const pid = srv.server.child.pid;
    // The model loads and a transcription runs first: their memory is not the decoder's.
    const warm = await upload(srv.baseURL, wav({ frames: 16000 }), 'warm.wav');
    assert.equal(warm.status, 200, JSON.stringify(warm.json));
    const before = resetPeak(pid);
    const cases = [
      // 90 s at 768 kHz x 8 channels in 50 KB, no declared length: decoded to the limit, then 400
      // (the old decoder held 60 s x 768 kHz x 8 channels of float first: 1.5 GB).
      ['expanding.flac', constantFlac({ seconds: 90 }), /longer than the limit of 60\.00 s/],
      // STREAMINFO declares three hours: refused from the header.
      ['claims-hours.flac', constantFlac({ seconds: 1, declaredSeconds: 3 * 3600 }), /declares 10800\.00 s/],
      // RF64 at 384 kHz x 32 channels declaring three hours in 70 KB: refused from the header.
      ['claims-hours.wav', wav({ rate: 384000, channels: 32, frames: 1000, rf64Frames: 3 * 3600 * 384000 }), /declares 10800\.00 s/],
      // 768 kHz x 32 channels: more than the WAV reader takes.
      ['768k-32ch.wav', wav({ rate: 768000, channels: 32, frames: 1000 }), /cannot be decoded/],
    ];
    for (const [name, bytes, message] of cases) {
      assert.ok(bytes.length < 100_000, `${name} is ${bytes.length} bytes`);
      const r = await upload(srv.baseURL, bytes, name);
      assertError(r, { status: 400, param: 'file', what: name });
      assert.match(r.json.error.message, message, name);
    }
    const grew = statusKB(pid, 'VmHWM') - before;
    assert.ok(grew < DECODE_BOUND_KB + OTHER_KB, `peak RSS grew by ${grew} kB (bound ${DECODE_BOUND_KB + OTHER_KB} kB)`);
    assert.equal((await getJSON(srv.baseURL, '/health')).status, 200);
    assert.equal(srv.server.child.pid, pid);
  });
});

describe('hostile audio: decoding runs in the admitted job', { timeout: HOOK_TIMEOUT_MS + 4 * TEST_TIMEOUT_MS }, () => {
  const TIMEOUT_S = 4;
  const srv = useServer({
    setup: withWhisper,
    extraArgs: ['--audio-parallel', '1', '--audio-queue', '0', '--audio-timeout', String(TIMEOUT_S), '--max-audio-seconds', '600', '--threads', '1'],
  });
  // 300 s at 768 kHz in 50 KB: resampling it takes far longer than the time limit.
  const slow = constantFlac({ channels: 1, seconds: 300 });

  it('a decoding job holds the only slot (429 for the next) and ends at --audio-timeout', T, async () => {
    const t0 = performance.now();
    const first = upload(srv.baseURL, slow, 'slow.flac');
    await sleep(500);
    const second = await upload(srv.baseURL, wav({ frames: 16000 }), 'short.wav');
    assertError(second, { status: 429, code: 'rate_limit_exceeded', what: 'while the first decodes' });
    const r = await first;
    const seconds = (performance.now() - t0) / 1000;
    assertError(r, { status: 504, code: 'TIMEOUT', what: 'the slow decode' });
    assert.ok(seconds < TIMEOUT_S + 3, `the time limit ended the decode after ${seconds.toFixed(1)} s`);
  });

  it('a client that leaves stops the decoding', T, async () => {
    const mark = srv.server.log.length;
    const controller = new AbortController();
    const pending = upload(srv.baseURL, slow, 'slow.flac', { signal: controller.signal });
    await sleep(500);
    controller.abort();
    await assert.rejects(pending);
    const t0 = performance.now();
    while (!srv.server.log.slice(mark).includes('transcription cancelled (the client disconnected)') && performance.now() - t0 < 10_000) {
      await sleep(50);
    }
    const seconds = (performance.now() - t0) / 1000;
    assert.match(srv.server.log.slice(mark), /transcription cancelled \(the client disconnected\)/);
    assert.ok(seconds < TIMEOUT_S - 1, `cancelled ${seconds.toFixed(1)} s after the client left (before the time limit)`);
    const ok = await upload(srv.baseURL, wav({ frames: 16000 }), 'short.wav');
    assert.equal(ok.status, 200, JSON.stringify(ok.json));
  });
});
