// The BPE model of tokenizer.json, read into safetensors/bpe.h's Bpe.
#pragma once

#include <memory>

#include "safetensors/bpe.h"
#include "tokenizer_components.h"

namespace stcpp::tok {

std::unique_ptr<Bpe> make_bpe(const json& model);  // throws ComponentError

}  // namespace stcpp::tok
