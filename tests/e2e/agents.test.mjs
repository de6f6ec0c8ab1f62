// Agent frameworks against a real allm process, unmodified: the official OpenAI SDK (tools and
// streaming on chat, responses.parse), the OpenAI Agents SDK (a function tool with toolChoice
// required, an outputType zod schema) and the Vercel AI SDK (generateText with tools and
// toolChoice required, Output.object; through the responses and the chat provider). The model
// has random weights: that every call and object fits its schema holds only through constrained
// decoding.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { z } from 'zod';
import {
  Agent, OpenAIChatCompletionsModel, run, tool as agentTool, setDefaultOpenAIClient, setOpenAIAPI,
  setTracingDisabled,
} from '@openai/agents';
import { generateText, tool as aiTool, Output, stepCountIs } from 'ai';
import { createOpenAI } from '@ai-sdk/openai';
import { useServer, TEST_TIMEOUT_MS, HOOK_TIMEOUT_MS } from './helpers.mjs';
import { makeHfFixture } from '../integration/hf_fixture.mjs';

const T = { timeout: 2 * TEST_TIMEOUT_MS };
const MODEL = 'llama-f32-hf';
const MAX_TOKENS = 800;

const Weather = z.object({
  city: z.string().min(1).max(6),
  days: z.number().int().min(1).max(7),
});
const Person = z.object({
  name: z.string().min(1).max(8),
  age: z.number().int().min(0).max(120),
  tags: z.array(z.enum(['red', 'blue'])).max(3),
});

describe('agent frameworks', { timeout: HOOK_TIMEOUT_MS + 8 * T.timeout }, () => {
  const srv = useServer({
    fixture: false,
    ctxSize: 2048,
    setup: async ({ modelsDir }) => { await makeHfFixture('llama', 'f32', modelsDir); },
  });
  const client = () => new OpenAI({ baseURL: srv.baseURL + '/v1', apiKey: 'test', maxRetries: 0, timeout: 110_000 });

  it('OpenAI SDK: chat tools (plain and streamed) and responses.parse with a JSON schema', T, async () => {
    const tools = [{
      type: 'function',
      function: { name: 'get_weather', parameters: z.toJSONSchema(Weather), strict: true },
    }];
    const messages = [{ role: 'user', content: 'Weather in Oslo?' }];
    const plain = await client().chat.completions.create({
      model: MODEL, messages, tools, tool_choice: 'required', max_tokens: MAX_TOKENS, seed: 3, parallel_tool_calls: false,
    });
    const call = plain.choices[0].message.tool_calls[0];
    assert.equal(plain.choices[0].finish_reason, 'tool_calls');
    Weather.parse(JSON.parse(call.function.arguments));

    const stream = await client().chat.completions.create({
      model: MODEL, messages, tools, tool_choice: 'required', max_tokens: MAX_TOKENS, seed: 4, stream: true, parallel_tool_calls: false,
    });
    let args = '';
    let name;
    for await (const chunk of stream) {
      for (const piece of chunk.choices[0]?.delta?.tool_calls ?? []) {
        name ??= piece.function?.name;
        args += piece.function?.arguments ?? '';
      }
    }
    assert.equal(name, 'get_weather');
    Weather.parse(JSON.parse(args));

    const parsed = await client().responses.parse({
      model: MODEL, input: 'Describe a person.', max_output_tokens: MAX_TOKENS, store: false,
      text: { format: { type: 'json_schema', name: 'person', schema: z.toJSONSchema(Person), strict: true } },
    });
    Person.parse(parsed.output_parsed);
  });

  it('OpenAI Agents SDK: a function tool called with toolChoice required, then an outputType', T, async () => {
    setDefaultOpenAIClient(client());
    setOpenAIAPI('responses');
    setTracingDisabled(true);
    const seen = [];
    const getWeather = agentTool({
      name: 'get_weather',
      description: 'Forecast for a city',
      parameters: Weather,
      execute: async (input) => { seen.push(input); return 'sunny'; },
    });
    const agent = new Agent({
      name: 'weather', instructions: 'Answer about the weather.', model: MODEL, tools: [getWeather],
      modelSettings: { toolChoice: 'required', maxTokens: MAX_TOKENS, parallelToolCalls: false },
      toolUseBehavior: 'stop_on_first_tool',
    });
    const result = await run(agent, 'Weather in Oslo?', { maxTurns: 2 });
    assert.equal(seen.length, 1, 'the tool ran once');
    Weather.parse(seen[0]);
    assert.equal(result.finalOutput, 'sunny');

    // The tool's output goes back to the model (the call and its result sent back as messages,
    // through the SDK's chat completions model this time); the SDK resets toolChoice after a
    // call, so the next turn answers (a chat answer cut at max_tokens still ends the run).
    const loop = new Agent({
      name: 'weather-loop', instructions: 'Answer about the weather.', tools: [getWeather],
      model: new OpenAIChatCompletionsModel(client(), MODEL),
      modelSettings: { toolChoice: 'required', maxTokens: MAX_TOKENS, parallelToolCalls: false },
    });
    const answered = await run(loop, 'Weather in Oslo?', { maxTurns: 4 });
    assert.equal(seen.length, 2, 'the tool ran once more');
    assert.equal(typeof answered.finalOutput, 'string');
    const items = answered.history.map((item) => item.type);
    assert.ok(items.includes('function_call') && items.includes('function_call_result'), items.join(', '));

    const typed = new Agent({
      name: 'person', instructions: 'Describe a person.', model: MODEL, outputType: Person,
      modelSettings: { maxTokens: MAX_TOKENS },
    });
    const person = await run(typed, 'Anyone.');
    Person.parse(person.finalOutput);
  });

  for (const api of ['responses', 'chat']) {
    it(`Vercel AI SDK (${api}): generateText with a required tool, and Output.object`, T, async () => {
      const provider = createOpenAI({ baseURL: srv.baseURL + '/v1', apiKey: 'test' });
      const model = provider[api](MODEL);
      const seen = [];
      const called = await generateText({
        model, prompt: 'Weather in Oslo?', toolChoice: 'required', maxOutputTokens: MAX_TOKENS,
        tools: {
          get_weather: aiTool({
            description: 'Forecast for a city', inputSchema: Weather,
            execute: async (input) => { seen.push(input); return 'sunny'; },
          }),
        },
        stopWhen: stepCountIs(1),
        // One call: random weights may otherwise go on adding calls past the token limit.
        providerOptions: { openai: { parallelToolCalls: false } },
      });
      assert.equal(called.toolCalls.length >= 1, true, JSON.stringify(called.response?.body ?? called.text));
      for (const call of called.toolCalls) Weather.parse(call.input);
      assert.equal(seen.length, called.toolCalls.length);

      const object = await generateText({
        model, prompt: 'Describe a person.', maxOutputTokens: MAX_TOKENS, output: Output.object({ schema: Person }),
      });
      Person.parse(object.output);
    });
  }
});
