// presence_penalty and frequency_penalty (chat completions) as OpenAI defines them: a token's
// logit drops by count × frequency_penalty + (count > 0) × presence_penalty, counting the tokens
// generated so far in this request.
import assert from 'node:assert/strict';
import { postJSON, show } from '../e2e/helpers.mjs';

const key = (entry) => JSON.stringify(entry.bytes);  // a token's identity: its bytes

async function greedyTokens(baseURL, model, extra) {
  const body = {
    model, messages: [{ role: 'user', content: 'Penalise repeats' }], max_tokens: 60, temperature: 0,
    logprobs: true, top_logprobs: 20, ...extra,
  };
  const r = await postJSON(baseURL, '/v1/chat/completions', body);
  assert.equal(r.status, 200, show(`chat ${JSON.stringify(extra)}`, r));
  return r.json.choices[0].logprobs.content;
}

// Greedy decoding of a random model loops; a frequency penalty larger than the spread of its
// likely logits stops every repeat.
export async function checkPenaltyStopsRepetition(baseURL, model) {
  const plain = await greedyTokens(baseURL, model, {});
  const distinct = (entries) => new Set(entries.map(key)).size;
  assert.ok(distinct(plain) < plain.length, `greedy output without penalties repeats no token; test premise broken: ${plain.map(key)}`);
  const penalized = await greedyTokens(baseURL, model, { frequency_penalty: 2 });
  assert.equal(penalized.length, plain.length);
  assert.equal(distinct(penalized), penalized.length, `a token repeats despite frequency_penalty 2: ${penalized.map(key)}`);
}

// While the penalized run has generated the same tokens as the plain one, its logprobs are the
// plain ones shifted by one constant (the softmax normalisation) less each token's penalty.
export async function checkPenaltyShiftsLogprobs(baseURL, model) {
  const presence = 0.4;
  const frequency = 0.3;
  const plain = await greedyTokens(baseURL, model, {});
  const penalized = await greedyTokens(baseURL, model, { presence_penalty: presence, frequency_penalty: frequency });
  const counts = new Map();
  let penalizedChecks = 0;
  for (let step = 0; step < Math.min(plain.length, penalized.length); step++) {
    const a = new Map(plain[step].top_logprobs.map((t) => [key(t), t.logprob]));
    const b = new Map(penalized[step].top_logprobs.map((t) => [key(t), t.logprob]));
    const penalty = (k) => (counts.get(k) ?? 0) * frequency + (counts.has(k) ? presence : 0);
    const both = [...a.keys()].filter((k) => b.has(k));
    const reference = both.find((k) => penalty(k) === 0);
    assert.ok(reference !== undefined, `step ${step}: no unpenalized token in both top lists`);
    const shift = b.get(reference) - a.get(reference);
    for (const k of both) {
      const expected = shift - penalty(k);
      assert.ok(Math.abs(b.get(k) - a.get(k) - expected) < 2e-3,
        `step ${step}, token ${k} (generated ${counts.get(k) ?? 0}×): logprob ${b.get(k)} with penalties, ${a.get(k)} without; expected a change of ${expected}`);
      if (penalty(k) > 0) penalizedChecks += 1;
    }
    if (key(plain[step]) !== key(penalized[step])) break;  // the runs part: contexts differ now
    counts.set(key(plain[step]), (counts.get(key(plain[step])) ?? 0) + 1);
  }
  assert.ok(penalizedChecks > 0, 'no repeated token was compared: the test checked nothing');
}
