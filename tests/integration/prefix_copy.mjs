// Prefix sharing between sequences: a conversation that starts while another one holding the
// same system prompt is running gets a copy of that prompt's cache instead of reading it again,
// and answers exactly as it does when it reads the prompt itself.
import assert from 'node:assert/strict';
import { postJSON, postSSE, show, responseText } from '../e2e/helpers.mjs';

export async function checkPrefixCopiedFromRunningSequence(baseURL, model, { streamTokens = 300 } = {}) {
  const system = 'You plan journeys step by step. ' + 'Check every step twice before answering. '.repeat(6);
  const body = (input, extra) => ({ model, instructions: system, input, temperature: 0, ...extra });
  const question = body('Which step comes first?', { max_output_tokens: 12 });
  const alone = await postJSON(baseURL, '/v1/responses', question);  // reads the system prompt itself
  assert.equal(alone.status, 200, show('alone', alone));

  // The stream takes the slot that holds the system prompt; the question, sent once the stream is
  // generating, gets another slot and can only find the prompt in the stream's cache.
  let joined = null;
  let joinedDone = false;
  const stream = await postSSE(baseURL, '/v1/responses', body('Describe a long journey.', { max_output_tokens: streamTokens, stream: true }), {
    onEvent: (e) => {
      if (e.event === 'response.output_text.delta' && !joined) {
        joined = postJSON(baseURL, '/v1/responses', question).finally(() => { joinedDone = true; });
      }
      return !joinedDone;  // stop reading (the client goes away) once the question is answered
    },
  });
  assert.equal(stream.status, 200, show('stream', stream));
  assert.ok(joined, 'the stream produced no text');
  const again = await joined;
  assert.ok(!stream.events.some((e) => e.event === 'response.completed'),
    'the stream ended before the question was answered: nothing was running to copy from');
  assert.equal(again.status, 200, show('joined', again));
  const cached = again.json.usage.input_tokens_details.cached_tokens;
  assert.ok(cached > 100 && cached < again.json.usage.input_tokens, `cached_tokens ${cached} of ${again.json.usage.input_tokens}`);
  assert.equal(responseText(again.json), responseText(alone.json), 'a copied prefix must not change the output');
}
