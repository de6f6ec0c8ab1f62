#include "hf_fixture/hf_fixture.h"

#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include "hf_fixture/arch_gpt_oss.h"
#include "hf_fixture/architectures.h"
#include "hf_fixture/families.h"
#include "hf_fixture/gguf_export.h"
#include "hf_fixture/safetensors_writer.h"
#include "hf_fixture/tokenizer_files.h"

namespace allm::fixture {

namespace {

bool write_json(const std::filesystem::path& path, const nlohmann::ordered_json& json,
                std::string* error) {
  std::ofstream out(path);
  out << json.dump(2) << "\n";
  if (!out) *error = "cannot write " + path.string();
  return static_cast<bool>(out);
}

void apply_yarn(Yarn yarn, ModelSpec* spec) {
  if (yarn == Yarn::Default) return;
  if (!spec->yarn_rope) {
    spec->yarn_rope = YarnRopeScaling{4.0, spec->max_position_embeddings / 4, true};
  }
  spec->yarn_rope->truncate = yarn == Yarn::Rounded;
}

// The fixture on a given vocabulary.
Fixture build_on(const FixtureOptions& options, ByteLevelVocabulary vocab) {
  Fixture f;
  f.dtype = options.dtype;
  f.pooling = options.pooling;
  f.vocab = std::move(vocab);
  f.spec =
      model_spec(options.arch, static_cast<int>(f.vocab.tokens.size()), options.tie_embeddings);
  const bool gpt_oss = options.arch == Arch::GptOss;
  apply_yarn(options.yarn, &f.spec);
  if (options.bench_size) {
    if (gpt_oss) {
      scale_gpt_oss_to_bench(&f.spec);
    } else if (options.arch == Arch::Gemma2) {
      scale_gemma2_to_bench(&f.spec);
    } else {
      scale_to_1b(&f.spec);
    }
  }
  f.tensors = random_weights(f.spec, f.vocab, f.dtype, options.seed);
  if (gpt_oss) {  // the MXFP4 experts are bytes, not values rounded to the fixture's dtype
    for (Tensor& t : gpt_oss_expert_blocks(f.spec, options.seed)) f.tensors.push_back(std::move(t));
  }
  return f;
}

// tokenizer.json and tokenizer_config.json: the tiny vocabulary's, or the real ones (with the
// chat template from options.chat_template_file when given).
bool write_tokenizer(const FixtureOptions& options, const Fixture& f, TokenizerFiles* real,
                     const std::filesystem::path& dir, std::string* error) {
  if (!real) {
    return write_json(dir / "tokenizer.json", tokenizer_json(f.vocab), error) &&
           write_json(dir / "tokenizer_config.json",
                      tokenizer_config_json(f.vocab, f.spec.max_position_embeddings), error);
  }
  if (!options.chat_template_file.empty()) {
    std::ifstream in(options.chat_template_file);
    std::stringstream text;
    text << in.rdbuf();
    if (!in || text.str().empty()) {
      *error = "cannot read " + options.chat_template_file;
      return false;
    }
    real->config["chat_template"] = text.str();
  }
  std::ofstream tokenizer(dir / "tokenizer.json", std::ios::binary);
  tokenizer << real->tokenizer_json;
  if (!tokenizer) {
    *error = "cannot write " + (dir / "tokenizer.json").string();
    return false;
  }
  return write_json(dir / "tokenizer_config.json", real->config, error);
}

}  // namespace

Fixture build_fixture(const FixtureOptions& options) {
  return build_on(options, tiny_byte_level_vocabulary());
}

// sentence-transformers' files for the fixture's pooling, as it saves an embedding model.
bool write_sentence_modules(const Fixture& f, const std::filesystem::path& dir,
                            std::string* error) {
  if (f.pooling == EmbeddingPooling::None) return true;
  const char* mode = f.pooling == EmbeddingPooling::Mean  ? "pooling_mode_mean_tokens"
                     : f.pooling == EmbeddingPooling::Cls ? "pooling_mode_cls_token"
                                                          : "pooling_mode_lasttoken";
  nlohmann::ordered_json modules = nlohmann::ordered_json::array();
  const char* kModules[][2] = {
      {"", "Transformer"}, {"1_Pooling", "Pooling"}, {"2_Normalize", "Normalize"}};
  for (size_t i = 0; i < 3; ++i) {
    modules.push_back({{"idx", i},
                       {"name", std::to_string(i)},
                       {"path", kModules[i][0]},
                       {"type", std::string("sentence_transformers.models.") + kModules[i][1]}});
  }
  std::error_code ec;
  std::filesystem::create_directories(dir / "1_Pooling", ec);
  return write_json(dir / "modules.json", modules, error) &&
         write_json(dir / "1_Pooling" / "config.json",
                    {{"word_embedding_dimension", f.spec.hidden}, {mode, true}}, error);
}

bool write_hf_fixture(const FixtureOptions& options, std::string* error) {
  std::optional<TokenizerFiles> real;
  if (!options.tokenizer_dir.empty()) {
    if (!options.gguf_path.empty()) {
      *error =
          "a fixture with a real tokenizer has no GGUF (llama.cpp's converter would need its "
          "pre-tokenizer name)";
      return false;
    }
    real.emplace();
    if (!read_tokenizer_files(options.tokenizer_dir, &*real, error)) return false;
  }
  const Fixture f = build_on(options, real ? std::move(real->vocab) : tiny_byte_level_vocabulary());
  const std::filesystem::path dir(options.out_dir);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    *error = "cannot create " + dir.string() + ": " + ec.message();
    return false;
  }
  return write_json(dir / "config.json", hf_config(f.spec, f.vocab, f.dtype), error) &&
         write_json(dir / "generation_config.json", hf_generation_config(f.vocab), error) &&
         write_tokenizer(options, f, real ? &*real : nullptr, dir, error) &&
         write_sentence_modules(f, dir, error) &&
         write_safetensors_checkpoint(dir.string(), f.tensors, f.dtype, options.shards, error) &&
         (options.gguf_path.empty() || write_gguf(options.gguf_path, f, error));
}

}  // namespace allm::fixture
