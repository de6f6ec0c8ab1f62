#include "safetensors/checkpoint.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>

#include "nlohmann/json.hpp"

namespace stcpp {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

constexpr uint64_t kMaxHeaderBytes = 100u << 20;  // far above any real checkpoint's header

bool parse_dtype(const std::string& name, Dtype* dtype) {
  static const std::map<std::string, Dtype> names = {
      {"F32", Dtype::F32},  {"F16", Dtype::F16}, {"BF16", Dtype::BF16}, {"U8", Dtype::U8},
      {"I8", Dtype::I8},    {"I16", Dtype::I16}, {"U16", Dtype::U16},   {"I32", Dtype::I32},
      {"U32", Dtype::U32},  {"I64", Dtype::I64}, {"U64", Dtype::U64},   {"F64", Dtype::F64},
      {"BOOL", Dtype::BOOL}};
  auto it = names.find(name);
  if (it == names.end()) return false;
  *dtype = it->second;
  return true;
}

// Element count of a shape, false on overflow.
bool shape_elements(const std::vector<int64_t>& shape, uint64_t* count) {
  uint64_t n = 1;
  for (int64_t d : shape) {
    if (d != 0 && n > UINT64_MAX / static_cast<uint64_t>(d)) return false;
    n *= static_cast<uint64_t>(d);
  }
  *count = n;
  return true;
}

Failure corrupt(const MappedFile& file, const std::string& what) {
  return fail(STCPP_MODEL_CORRUPT, file.path() + ": " + what);
}

Failure parse_entry(const MappedFile& file, const std::string& name, const json& entry,
                    size_t data_start, TensorInfo* info) {
  const std::string where = "tensor '" + name + "': ";
  if (!entry.is_object()) return corrupt(file, where + "entry is not an object");
  if (!entry.contains("dtype") || !entry["dtype"].is_string() ||
      !parse_dtype(entry["dtype"].get<std::string>(), &info->dtype)) {
    return corrupt(file, where + "missing or unsupported dtype");
  }
  if (!entry.contains("shape") || !entry["shape"].is_array()) {
    return corrupt(file, where + "missing shape");
  }
  for (const json& d : entry["shape"]) {
    if (!d.is_number_unsigned()) return corrupt(file, where + "shape has a non-integer dimension");
    info->shape.push_back(d.get<int64_t>());
  }
  const json& offsets = entry.value("data_offsets", json());
  if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
      !offsets[1].is_number_unsigned()) {
    return corrupt(file, where + "data_offsets must be two non-negative integers");
  }
  const uint64_t begin = offsets[0].get<uint64_t>(), end = offsets[1].get<uint64_t>();
  const uint64_t data_size = file.size() - data_start;
  if (begin > end || end > data_size) {
    return corrupt(file, where + "data_offsets [" + std::to_string(begin) + ", " +
                             std::to_string(end) + "] fall outside the " +
                             std::to_string(data_size) + " data bytes");
  }
  uint64_t count = 0;
  if (!shape_elements(info->shape, &count) || count > UINT64_MAX / dtype_size(info->dtype) ||
      count * dtype_size(info->dtype) != end - begin) {
    return corrupt(file, where + "shape × dtype size does not match its " +
                             std::to_string(end - begin) + "-byte range");
  }
  info->name = name;
  info->file = &file;
  info->offset = data_start + begin;
  info->nbytes = end - begin;
  return {};
}

Failure check_overlaps(const MappedFile& file, const std::map<std::string, TensorInfo>& tensors) {
  std::vector<const TensorInfo*> sorted;
  for (const auto& [name, info] : tensors) {
    if (info.file == &file && info.nbytes > 0) sorted.push_back(&info);
  }
  std::sort(sorted.begin(), sorted.end(),
            [](const TensorInfo* a, const TensorInfo* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < sorted.size(); ++i) {
    if (sorted[i]->offset < sorted[i - 1]->offset + sorted[i - 1]->nbytes) {
      return corrupt(file,
                     "tensors '" + sorted[i - 1]->name + "' and '" + sorted[i]->name + "' overlap");
    }
  }
  return {};
}

}  // namespace

size_t dtype_size(Dtype dtype) {
  switch (dtype) {
    case Dtype::F32: return 4;
    case Dtype::F16:
    case Dtype::BF16: return 2;
    case Dtype::U8:
    case Dtype::I8:
    case Dtype::BOOL: return 1;
    case Dtype::I16:
    case Dtype::U16: return 2;
    case Dtype::I32:
    case Dtype::U32: return 4;
    case Dtype::I64:
    case Dtype::U64:
    case Dtype::F64: return 8;
  }
  return 1;
}

const char* dtype_name(Dtype dtype) {
  switch (dtype) {
    case Dtype::F32: return "F32";
    case Dtype::F16: return "F16";
    case Dtype::BF16: return "BF16";
    case Dtype::U8: return "U8";
    case Dtype::I8: return "I8";
    case Dtype::I16: return "I16";
    case Dtype::U16: return "U16";
    case Dtype::I32: return "I32";
    case Dtype::U32: return "U32";
    case Dtype::I64: return "I64";
    case Dtype::U64: return "U64";
    case Dtype::F64: return "F64";
    case Dtype::BOOL: return "BOOL";
  }
  return "?";
}

int64_t TensorInfo::elements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::unique_ptr<MappedFile> MappedFile::open(const std::string& path, Failure* failure) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    *failure = fail(STCPP_LOAD_FAILED, "cannot open " + path);
    return nullptr;
  }
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    *failure = fail(STCPP_LOAD_FAILED, path + " is not a regular file");
    return nullptr;
  }
  const size_t size = static_cast<size_t>(st.st_size);
  void* data = size > 0 ? mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0) : nullptr;
  ::close(fd);
  if (size > 0 && data == MAP_FAILED) {
    *failure = fail(STCPP_OOM_RAM, "cannot map " + path + " into memory");
    return nullptr;
  }
  return std::unique_ptr<MappedFile>(new MappedFile(path, static_cast<const uint8_t*>(data), size));
}

void MappedFile::release(size_t offset, size_t size) const {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t begin = reinterpret_cast<uintptr_t>(data_) + offset;
  const uintptr_t first = (begin + page - 1) / page * page, last = (begin + size) / page * page;
  if (last > first) madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
}

void MappedFile::prefetch(size_t offset, size_t size) const {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t begin = reinterpret_cast<uintptr_t>(data_) + offset;
  const uintptr_t first = begin / page * page, end = begin + size;
#ifdef MADV_POPULATE_READ
  if (madvise(reinterpret_cast<void*>(first), end - first, MADV_POPULATE_READ) == 0) return;
#endif
  // Kernels before 5.14: touch a byte of each page (`first` lies in the page-aligned mapping).
  volatile uint8_t sink = 0;
  for (uintptr_t at = first; at < end; at += page) {
    sink = sink ^ *reinterpret_cast<const uint8_t*>(at);
  }
}

MappedFile::~MappedFile() {
  if (data_) munmap(const_cast<uint8_t*>(data_), size_);
}

Failure Checkpoint::parse_header(const MappedFile& file, std::map<std::string, TensorInfo>* out) {
  if (file.size() < 8) return corrupt(file, "file is shorter than the 8-byte header length");
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | file.data()[i];
  if (header_len > kMaxHeaderBytes || header_len > file.size() - 8) {
    return corrupt(
        file, "header length " + std::to_string(header_len) + " runs past the end of the file");
  }
  json header;
  try {
    header = json::parse(file.data() + 8, file.data() + 8 + header_len);
  } catch (const std::exception& e) {
    return corrupt(file, std::string("header is not valid JSON: ") + e.what());
  }
  if (!header.is_object()) return corrupt(file, "header is not a JSON object");
  const size_t data_start = 8 + header_len;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") continue;
    TensorInfo info{};
    if (Failure f = parse_entry(file, name, entry, data_start, &info)) return f;
    (*out)[name] = std::move(info);
  }
  return check_overlaps(file, *out);
}

Failure Checkpoint::add_file(const std::string& path, const std::vector<std::string>* expected) {
  Failure failure;
  auto file = MappedFile::open(path, &failure);
  if (!file) return failure;
  std::map<std::string, TensorInfo> found;
  if (Failure f = parse_header(*file, &found)) return f;
  if (expected) {
    for (const std::string& name : *expected) {
      if (!found.count(name)) {
        return corrupt(*file, "the index places tensor '" + name + "' here but it is absent");
      }
    }
  }
  for (auto& [name, info] : found) {
    if (tensors_.count(name)) return corrupt(*file, "tensor '" + name + "' appears in two files");
    tensors_[name] = std::move(info);
  }
  files_.push_back(std::move(file));
  return {};
}

const TensorInfo* Checkpoint::find(const std::string& name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

// Reads model.safetensors.index.json: shard file → the tensors the index places in it.
static Failure read_index(const fs::path& index_path,
                          std::map<std::string, std::vector<std::string>>* shards) {
  std::ifstream in(index_path);
  json index;
  try {
    index = json::parse(in);
  } catch (const std::exception& e) {
    return fail(STCPP_MODEL_CORRUPT, index_path.string() + " is not valid JSON: " + e.what());
  }
  if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object()) {
    return fail(STCPP_MODEL_CORRUPT, index_path.string() + " has no weight_map object");
  }
  for (const auto& [tensor, shard] : index["weight_map"].items()) {
    const std::string name = shard.is_string() ? shard.get<std::string>() : "";
    if (name.empty() || name.find('/') != std::string::npos || name == "..") {
      return fail(STCPP_MODEL_CORRUPT,
                  index_path.string() + ": tensor '" + tensor + "' has an invalid shard name");
    }
    (*shards)[name].push_back(tensor);
  }
  return {};
}

std::unique_ptr<Checkpoint> Checkpoint::open(const std::string& path, Failure* failure) {
  auto checkpoint = std::unique_ptr<Checkpoint>(new Checkpoint());
  std::error_code ec;
  const fs::path root(path);
  if (fs::is_regular_file(root, ec)) {
    *failure = checkpoint->add_file(root.string(), nullptr);
    return *failure ? nullptr : std::move(checkpoint);
  }
  const fs::path index = root / "model.safetensors.index.json";
  if (fs::exists(index, ec)) {
    std::map<std::string, std::vector<std::string>> shards;
    if ((*failure = read_index(index, &shards))) return nullptr;
    for (const auto& [shard, names] : shards) {
      const fs::path shard_path = root / shard;
      if (!fs::exists(shard_path, ec)) {
        *failure = fail(STCPP_LOAD_FAILED,
                        index.string() + " names shard '" + shard + "', which does not exist");
        return nullptr;
      }
      if ((*failure = checkpoint->add_file(shard_path.string(), &names))) return nullptr;
    }
    return checkpoint;
  }
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(root, ec)) {
    if (entry.path().extension() == ".safetensors") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) {
    *failure = fail(STCPP_LOAD_FAILED, path + " holds no .safetensors file");
    return nullptr;
  }
  for (const fs::path& file : files) {
    if ((*failure = checkpoint->add_file(file.string(), nullptr))) return nullptr;
  }
  return checkpoint;
}

}  // namespace stcpp
