// safetensors.cpp's header reader: any file is refused with a message or gives tensors that lie
// wholly inside the file, without overlaps past its end.
#include "fuzz_util.h"
#include "safetensors/checkpoint.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::filesystem::path path = fuzz::scratch_dir() / "model.safetensors";
  fuzz::write_file(path, std::string(reinterpret_cast<const char*>(data), size));
  stcpp::Failure failure;
  std::unique_ptr<stcpp::MappedFile> file = stcpp::MappedFile::open(path.string(), &failure);
  if (!file) return 0;
  std::map<std::string, stcpp::TensorInfo> tensors;
  failure = stcpp::Checkpoint::parse_header(*file, &tensors);
  if (failure) return 0;
  for (const auto& [name, tensor] : tensors) {
    if (tensor.offset > file->size() || tensor.nbytes > file->size() - tensor.offset) {
      fuzz::fail("a tensor reaches past the end of the file");
    }
    if (tensor.nbytes != static_cast<size_t>(tensor.elements()) * stcpp::dtype_size(tensor.dtype)) {
      fuzz::fail("a tensor's byte size does not match its shape");
    }
  }
  return 0;
}
