// safetensors.cpp's tokenizer.json loader: any tokenizer.json (and tokenizer_config.json, the
// part of the input after the first NUL byte) loads or is refused with a message; a tokenizer
// that loads encodes and decodes text with every id inside its vocabulary.
#include "fuzz_util.h"
#include "tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  const size_t split = input.find('\0');
  const std::filesystem::path folder = fuzz::scratch_dir();
  fuzz::write_file(folder / "tokenizer.json", input.substr(0, split));
  std::error_code ec;
  std::filesystem::remove(folder / "tokenizer_config.json", ec);
  if (split != std::string::npos) {
    fuzz::write_file(folder / "tokenizer_config.json", input.substr(split + 1));
  }

  std::string error;
  std::unique_ptr<stcpp::Tokenizer> tokenizer = stcpp::Tokenizer::load(folder.string(), &error);
  if (!tokenizer) {
    if (error.empty()) fuzz::fail("a refused tokenizer without a message");
    return 0;
  }
  for (const char* text :
       {"Hello world! 123", " \xc3\xa9t\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac\n\t<s>", ""}) {
    for (bool special : {false, true}) {
      const std::vector<int32_t> ids = tokenizer->encode(text, special);
      for (int32_t id : ids) {
        if (id < 0 || id >= tokenizer->size()) fuzz::fail("an encoded id outside the vocabulary");
        tokenizer->token_bytes(id);
        tokenizer->is_special(id);
      }
      tokenizer->decode(ids, special);
    }
  }
  return 0;
}
