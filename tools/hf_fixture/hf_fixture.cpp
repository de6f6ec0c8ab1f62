#include "hf_fixture/hf_fixture.h"

#include <filesystem>
#include <fstream>

#include "hf_fixture/arch_gpt_oss.h"
#include "hf_fixture/architectures.h"
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

}  // namespace

Fixture build_fixture(const FixtureOptions& options) {
  Fixture f;
  f.dtype = options.dtype;
  f.vocab = tiny_byte_level_vocabulary();
  f.spec =
      model_spec(options.arch, static_cast<int>(f.vocab.tokens.size()), options.tie_embeddings);
  const bool gpt_oss = options.arch == Arch::GptOss;
  f.spec.yarn_truncate = options.yarn_truncate;
  if (options.bench_size) gpt_oss ? scale_gpt_oss_to_bench(&f.spec) : scale_to_1b(&f.spec);
  f.tensors = random_weights(f.spec, f.vocab, f.dtype, options.seed);
  if (gpt_oss) {  // the MXFP4 experts are bytes, not values rounded to the fixture's dtype
    for (Tensor& t : gpt_oss_expert_blocks(f.spec, options.seed)) f.tensors.push_back(std::move(t));
  }
  return f;
}

bool write_hf_fixture(const FixtureOptions& options, std::string* error) {
  const Fixture f = build_fixture(options);
  const std::filesystem::path dir(options.out_dir);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    *error = "cannot create " + dir.string() + ": " + ec.message();
    return false;
  }
  return write_json(dir / "config.json", hf_config(f.spec, f.vocab, f.dtype), error) &&
         write_json(dir / "generation_config.json", hf_generation_config(f.vocab), error) &&
         write_json(dir / "tokenizer.json", tokenizer_json(f.vocab), error) &&
         write_json(dir / "tokenizer_config.json",
                    tokenizer_config_json(f.vocab, f.spec.max_position_embeddings), error) &&
         write_safetensors_checkpoint(dir.string(), f.tensors, f.dtype, options.shards, error) &&
         (options.gguf_path.empty() || write_gguf(options.gguf_path, f, error));
}

}  // namespace allm::fixture
