// allm-make-hf-fixture as a library: one tiny random model written as a Hugging Face folder and,
// optionally, as the GGUF llama.cpp's converter would make of it (same weight values).
#pragma once

#include <cstdint>
#include <string>

#include "hf_fixture/model_spec.h"

namespace allm::fixture {

enum class Yarn { Default, Exact, Rounded };

struct FixtureOptions {
  Arch arch = Arch::Llama;
  DType dtype = DType::F32;
  std::string out_dir;    // created if missing
  std::string gguf_path;  // empty: no GGUF
  int shards = 1;
  uint64_t seed = 42;
  bool tie_embeddings = false;
  bool bench_size = false;  // ~1B parameters instead of tiny
  // YaRN rope scaling: Default is gpt-oss's own (truncate false) and none for the others; Exact
  // (truncate false) and Rounded (truncate true, what llama.cpp computes) set it on any
  // architecture (factor 4 over a quarter of max_position_embeddings where it has none).
  Yarn yarn = Yarn::Default;
  EmbeddingPooling pooling = EmbeddingPooling::None;
  // A folder with a real model's tokenizer.json and tokenizer_config.json: the fixture carries
  // them (vocab_size, bos and eos follow them) instead of the tiny vocabulary. No GGUF then.
  std::string tokenizer_dir;
  std::string chat_template_file;  // a Jinja file that becomes tokenizer_config's chat_template
};

// The model (spec, vocabulary, weights) the options describe; deterministic in the seed.
Fixture build_fixture(const FixtureOptions& options);

bool write_hf_fixture(const FixtureOptions& options, std::string* error);

}  // namespace allm::fixture
