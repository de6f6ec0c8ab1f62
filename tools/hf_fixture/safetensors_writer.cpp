#include "hf_fixture/safetensors_writer.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <fstream>

#include "hf_fixture/dtype.h"
#include "nlohmann/json.hpp"

namespace allm::fixture {

namespace {

size_t tensor_bytes(const Tensor& t, DType dtype) {
  return t.raw.empty() ? t.values.size() * dtype_size(dtype) : t.raw.size();
}

// The header, padded with spaces so the data that follows the 8-byte length starts 8-byte
// aligned (the safetensors convention; readers may mmap and cast).
std::string header_json(const std::vector<const Tensor*>& tensors, DType dtype) {
  nlohmann::ordered_json header;
  header["__metadata__"] = {{"format", "pt"}};
  size_t offset = 0;
  for (const Tensor* t : tensors) {
    const size_t end = offset + tensor_bytes(*t, dtype);
    header[t->name] = {{"dtype", t->raw.empty() ? safetensors_dtype_name(dtype) : "U8"},
                       {"shape", t->shape},
                       {"data_offsets", {offset, end}}};
    offset = end;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  return text;
}

std::string shard_name(int index, int count) {
  char name[64];
  std::snprintf(name, sizeof(name), "model-%05d-of-%05d.safetensors", index + 1, count);
  return name;
}

// Splits the tensors, in order, into `shards` runs of about equal bytes, none of them empty.
std::vector<std::vector<const Tensor*>> split_into_shards(const std::vector<Tensor>& tensors,
                                                          DType dtype, int shards) {
  size_t total = 0;
  for (const Tensor& t : tensors) total += tensor_bytes(t, dtype);
  std::vector<std::vector<const Tensor*>> out(shards);
  size_t shard = 0, written = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const size_t later_shards = shards - 1 - shard;
    const bool full = written * shards >= (shard + 1) * total;
    const bool needed_later = tensors.size() - i <= later_shards;
    if (!out[shard].empty() && later_shards > 0 && (full || needed_later)) ++shard;
    out[shard].push_back(&tensors[i]);
    written += tensor_bytes(tensors[i], dtype);
  }
  return out;
}

bool write_json(const std::string& path, const nlohmann::ordered_json& json, std::string* error) {
  std::ofstream out(path);
  out << json.dump(2) << "\n";
  if (!out) *error = "cannot write " + path;
  return static_cast<bool>(out);
}

}  // namespace

bool write_safetensors_file(const std::string& path, const std::vector<const Tensor*>& tensors,
                            DType dtype, std::string* error) {
  const std::string header = header_json(tensors, dtype);
  char length[8];
  for (int i = 0; i < 8; ++i) length[i] = static_cast<char>(uint64_t{header.size()} >> (8 * i));
  std::ofstream out(path, std::ios::binary);
  out.write(length, 8);
  out.write(header.data(), static_cast<std::streamsize>(header.size()));
  for (const Tensor* t : tensors) {
    std::vector<uint8_t> bytes = t->raw;
    if (t->raw.empty()) append_encoded(dtype, t->values, &bytes);
    out.write(reinterpret_cast<const char*>(bytes.data()),
              static_cast<std::streamsize>(bytes.size()));
  }
  if (!out) *error = "cannot write " + path;
  return static_cast<bool>(out);
}

bool write_safetensors_checkpoint(const std::string& dir, const std::vector<Tensor>& tensors,
                                  DType dtype, int shards, std::string* error) {
  if (shards <= 1) {
    std::vector<const Tensor*> all;
    for (const Tensor& t : tensors) all.push_back(&t);
    return write_safetensors_file(dir + "/model.safetensors", all, dtype, error);
  }
  if (static_cast<size_t>(shards) > tensors.size()) {
    *error = "more shards than tensors";
    return false;
  }
  nlohmann::json weight_map = nlohmann::json::object();  // sorted by name, as HF writes it
  size_t total = 0;
  const auto groups = split_into_shards(tensors, dtype, shards);
  for (int s = 0; s < shards; ++s) {
    const std::string name = shard_name(s, shards);
    if (!write_safetensors_file(dir + "/" + name, groups[s], dtype, error)) return false;
    for (const Tensor* t : groups[s]) {
      weight_map[t->name] = name;
      total += tensor_bytes(*t, dtype);
    }
  }
  nlohmann::ordered_json index;
  index["metadata"] = {{"total_size", total}};
  index["weight_map"] = weight_map;
  return write_json(dir + "/model.safetensors.index.json", index, error);
}

}  // namespace allm::fixture
