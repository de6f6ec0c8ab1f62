// config.json model_type → architecture.
#include <cstring>

#include "model.h"

namespace stcpp {

std::unique_ptr<Architecture> make_llama();
std::unique_ptr<Architecture> make_mistral();
std::unique_ptr<Architecture> make_qwen2();
std::unique_ptr<Architecture> make_qwen3();

namespace {

struct Entry {
  const char* model_type;
  std::unique_ptr<Architecture> (*make)();
};

const Entry kArchitectures[] = {
    {"llama", make_llama},
    {"mistral", make_mistral},
    {"qwen2", make_qwen2},
    {"qwen3", make_qwen3},
};

}  // namespace

std::unique_ptr<Architecture> make_architecture(const std::string& model_type) {
  for (const Entry& entry : kArchitectures) {
    if (model_type == entry.model_type) return entry.make();
  }
  return nullptr;
}

const char* supported_architectures() {
  return "llama, mistral, qwen2, qwen3";
}

}  // namespace stcpp
