// Reading GET /metrics (Prometheus text) in tests.
import assert from 'node:assert/strict';
import { getJSON, show } from '../e2e/helpers.mjs';

/** Parses Prometheus text into [{name, labels, value}]. */
export function parseMetrics(text) {
  const out = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `malformed metrics line: ${line}`);
    const labels = {};
    for (const [, k, v] of (m[3] || '').matchAll(/([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"/g)) labels[k] = v;
    out.push({ name: m[1], labels, value: Number(m[4]) });
  }
  return out;
}

export function metricValue(metrics, name, labels = {}) {
  return metrics
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0);
}

export async function scrape(baseURL, headers = {}) {
  const r = await getJSON(baseURL, '/metrics', { headers });
  assert.equal(r.status, 200, show('GET /metrics', r));
  assert.match(r.headers.get('content-type'), /^text\/plain/);
  return parseMetrics(r.text);
}
