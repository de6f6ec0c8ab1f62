// allm-make-hf-fixture: writes a tiny random model as a Hugging Face folder (config, tokenizer,
// safetensors) and optionally the same weights as a GGUF, for safetensors.cpp ↔ llama.cpp parity.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "hf_fixture/architectures.h"
#include "hf_fixture/dtype.h"
#include "hf_fixture/hf_fixture.h"

namespace {

const char* const kUsage =
    "usage: allm-make-hf-fixture --arch "
    "llama|llama3|mistral|qwen2|qwen3|gemma|gemma2|nemotron|phi|phi3|gpt-oss\n"
    "                            --dtype f32|f16|bf16\n"
    "                            --out DIR [--gguf FILE.gguf] [--shards N] [--seed N] [--tie]\n"
    "                            [--size tiny|1b]   (1b: ~1B parameters, Llama-3.2-1B widths;\n"
    "                                                gpt-oss: 20b widths at 2 layers; gemma2:\n"
    "                                                gemma-2-2b widths at 6 layers)\n"
    "                            [--tokenizer DIR]  (a real model's tokenizer.json and\n"
    "                                                tokenizer_config.json instead of the tiny\n"
    "                                                vocabulary; no --gguf)\n"
    "                            [--chat-template FILE.jinja]  (with --tokenizer: its template)\n"
    "                            [--pooling last|mean|cls]  (a sentence-embedding model:\n"
    "                                 modules.json with Normalize; the GGUF's pooling_type)\n"
    "                            [--yarn exact|rounded]  (YaRN rope scaling, truncate false|true;\n"
    "                                 llama.cpp computes rounded; gpt-oss defaults to exact)\n";

int usage() {
  std::fputs(kUsage, stderr);
  return 2;
}

// Fills `options` from argv; false on anything unknown or missing.
bool parse_args(int argc, char** argv, allm::fixture::FixtureOptions* options) {
  bool have_arch = false, have_dtype = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--tie") {
      options->tie_embeddings = true;
      continue;
    }
    if (i + 1 >= argc) return false;
    const std::string value = argv[++i];
    if (arg == "--arch") {
      const auto arch = allm::fixture::parse_arch(value);
      if (!arch) return false;
      options->arch = *arch, have_arch = true;
    } else if (arg == "--dtype") {
      const auto dtype = allm::fixture::parse_dtype(value);
      if (!dtype) return false;
      options->dtype = *dtype, have_dtype = true;
    } else if (arg == "--out") {
      options->out_dir = value;
    } else if (arg == "--gguf") {
      options->gguf_path = value;
    } else if (arg == "--shards") {
      options->shards = std::atoi(value.c_str());
    } else if (arg == "--size") {
      if (value != "tiny" && value != "1b") return false;
      options->bench_size = value == "1b";
    } else if (arg == "--tokenizer") {
      options->tokenizer_dir = value;
    } else if (arg == "--chat-template") {
      options->chat_template_file = value;
    } else if (arg == "--yarn") {
      if (value != "exact" && value != "rounded") return false;
      options->yarn = value == "exact" ? allm::fixture::Yarn::Exact : allm::fixture::Yarn::Rounded;
    } else if (arg == "--pooling") {
      using allm::fixture::EmbeddingPooling;
      if (value != "last" && value != "mean" && value != "cls") return false;
      options->pooling = value == "last"   ? EmbeddingPooling::Last
                         : value == "mean" ? EmbeddingPooling::Mean
                                           : EmbeddingPooling::Cls;
    } else if (arg == "--seed") {
      options->seed = std::strtoull(value.c_str(), nullptr, 10);
    } else {
      return false;
    }
  }
  return have_arch && have_dtype && !options->out_dir.empty() && options->shards >= 1;
}

}  // namespace

int main(int argc, char** argv) {
  allm::fixture::FixtureOptions options;
  if (!parse_args(argc, argv, &options)) return usage();
  std::string error;
  if (!allm::fixture::write_hf_fixture(options, &error)) {
    std::fprintf(stderr, "allm-make-hf-fixture: %s\n", error.c_str());
    return 1;
  }
  return 0;
}
