// Reads safetensors checkpoints (one file, or shards listed by model.safetensors.index.json),
// memory-mapped, with every header field validated before any tensor is used.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "safetensors/failure.h"

namespace stcpp {

// Every safetensors dtype a checkpoint may hold; the models compute with the first five, and the
// others (I64 position_ids in CLIP text encoders, F64 schedules, ...) are read past, not used.
enum class Dtype { F32, F16, BF16, U8, I8, I16, U16, I32, U32, I64, U64, F64, BOOL };

size_t dtype_size(Dtype dtype);
const char* dtype_name(Dtype dtype);

// A read-only mapping of one file.
class MappedFile {
 public:
  static std::unique_ptr<MappedFile> open(const std::string& path, Failure* failure);
  ~MappedFile();
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }
  // Drops the whole pages of [offset, offset + size) from memory (they are read again from the
  // file if touched): the source of a matrix quantized at load is not needed afterwards.
  void release(size_t offset, size_t size) const;
  // Maps the pages of [offset, offset + size) in now, as llama.cpp's populated mapping does at
  // load, so that the first batch does not fault them in one by one.
  void prefetch(size_t offset, size_t size) const;

 private:
  MappedFile(std::string path, const uint8_t* data, size_t size)
      : path_(std::move(path)), data_(data), size_(size) {}
  std::string path_;
  const uint8_t* data_;
  size_t size_;
};

struct TensorInfo {
  std::string name;
  Dtype dtype;
  std::vector<int64_t> shape;  // as stored: outermost dimension first
  const MappedFile* file;
  size_t offset;  // from the start of the file
  size_t nbytes;

  const uint8_t* data() const { return file->data() + offset; }
  int64_t elements() const;
};

class Checkpoint {
 public:
  // `path`: a folder with model.safetensors, shards + index, or one .safetensors file.
  static std::unique_ptr<Checkpoint> open(const std::string& path, Failure* failure);
  // Validates one file's header; exposed for tests and fuzzing.
  static Failure parse_header(const MappedFile& file, std::map<std::string, TensorInfo>* out);

  const TensorInfo* find(const std::string& name) const;
  const std::map<std::string, TensorInfo>& tensors() const { return tensors_; }
  const std::vector<std::unique_ptr<MappedFile>>& files() const { return files_; }

 private:
  Failure add_file(const std::string& path, const std::vector<std::string>* expected);

  std::vector<std::unique_ptr<MappedFile>> files_;
  std::map<std::string, TensorInfo> tensors_;
};

}  // namespace stcpp
