// config.json model_type → architecture.
#include <string>

#include "model.h"

namespace stcpp {

std::unique_ptr<Architecture> make_llama();
std::unique_ptr<Architecture> make_mistral();
std::unique_ptr<Architecture> make_qwen2();
std::unique_ptr<Architecture> make_qwen3();
std::unique_ptr<Architecture> make_phi();
std::unique_ptr<Architecture> make_phi3();
std::unique_ptr<Architecture> make_gpt_oss();
std::unique_ptr<Architecture> make_gemma();
std::unique_ptr<Architecture> make_gemma2();
std::unique_ptr<Architecture> make_nemotron();

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
    {"phi", make_phi},
    {"phi3", make_phi3},
    {"gpt_oss", make_gpt_oss},
    {"gpt-oss", make_gpt_oss},
    {"gemma", make_gemma},
    {"gemma2", make_gemma2},
    {"nemotron", make_nemotron},
};

}  // namespace

std::unique_ptr<Architecture> make_architecture(const std::string& model_type) {
  for (const Entry& entry : kArchitectures) {
    if (model_type == entry.model_type) return entry.make();
  }
  return nullptr;
}

const char* supported_architectures() {
  static const std::string names = [] {
    std::string list;
    for (const Entry& entry : kArchitectures) {
      if (!list.empty()) list += ", ";
      list += entry.model_type;
    }
    return list;
  }();
  return names.c_str();
}

}  // namespace stcpp
