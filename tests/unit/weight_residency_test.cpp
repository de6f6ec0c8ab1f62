// A matrix safetensors.cpp computes with straight from the mapped checkpoint is mapped in at load
// (as llama.cpp's populated mapping is), not page by page during the first batch; the token
// embeddings, of which a batch reads a few rows, are not. Nothing is read before that, in file
// order: a cold file read in scattered spots first keeps small page-cache folios, which make every
// later load of it slower.
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "safetensors/checkpoint.h"
#include "safetensors/weight_store.h"

namespace fs = std::filesystem;

namespace {

constexpr int64_t kRows = 2048, kCols = 2048;  // 16 MiB of F32 each (past huge-page faults)
constexpr size_t kTensorBytes = kRows * kCols * sizeof(float);

// The resident bytes of this process's mappings of `file` (Rss in /proc/self/smaps: exact,
// where /proc/self/status's RssFile is an approximate counter).
size_t resident_bytes_of(const fs::path& file) {
  std::ifstream smaps("/proc/self/smaps");
  std::string line;
  bool in_file = false;
  size_t total = 0;
  while (std::getline(smaps, line)) {
    if (line.find('-') != std::string::npos && line.find(' ') < line.find(':')) {
      in_file =
          line.size() >= file.string().size() &&
          line.compare(line.size() - file.string().size(), std::string::npos, file.string()) == 0;
    } else if (in_file && line.rfind("Rss:", 0) == 0) {
      total += std::stoull(line.substr(4)) * 1024;
    }
  }
  return total;
}

// A safetensors file of two F32 [kRows, kCols] tensors, `matrix` then `embeddings`, and an F32
// [kCols] `norm`.
void write_checkpoint(const fs::path& file) {
  const std::string entry = R"({"dtype":"F32","shape":[2048,2048],"data_offsets":[)";
  std::string header = "{\"matrix\":" + entry + "0," + std::to_string(kTensorBytes) + "]}," +
                       "\"embeddings\":" + entry + std::to_string(kTensorBytes) + "," +
                       std::to_string(2 * kTensorBytes) + "]}," +
                       R"("norm":{"dtype":"F32","shape":[2048],"data_offsets":[)" +
                       std::to_string(2 * kTensorBytes) + "," +
                       std::to_string(2 * kTensorBytes + kCols * sizeof(float)) + "]}}";
  header.append((8 - header.size() % 8) % 8, ' ');
  std::ofstream out(file, std::ios::binary);
  const uint64_t length = header.size();
  out.write(reinterpret_cast<const char*>(&length), 8);
  out << header;
  const std::vector<float> values(kRows * kCols, 0.5f);
  for (int i = 0; i < 2; ++i) out.write(reinterpret_cast<const char*>(values.data()), kTensorBytes);
  out.write(reinterpret_cast<const char*>(values.data()), kCols * sizeof(float));
}

TEST(WeightResidency, MappedMatricesAreResidentOnceLoadedEmbeddingsAreNot) {
  const fs::path dir = fs::temp_directory_path() / "allm-weight-residency";
  fs::remove_all(dir);
  fs::create_directories(dir);
  write_checkpoint(dir / "model.safetensors");
  stcpp::Failure failure;
  auto checkpoint = stcpp::Checkpoint::open((dir / "model.safetensors").string(), &failure);
  ASSERT_TRUE(checkpoint) << failure.message;
  const size_t read_by_open = resident_bytes_of(dir / "model.safetensors");  // the header
  {
    stcpp::WeightStore store(*checkpoint, 4);
    ASSERT_TRUE(store.matrix("matrix", {kRows, kCols}));
    ASSERT_TRUE(store.embeddings("embeddings", {kRows, kCols}));
    ASSERT_TRUE(store.vector_f32("norm", {kCols}));
    EXPECT_EQ(resident_bytes_of(dir / "model.safetensors"), read_by_open)
        << "the lookups read the file before finish";
    ASSERT_FALSE(store.finish()) << store.failure().message;
    const size_t resident = resident_bytes_of(dir / "model.safetensors");
    EXPECT_GE(resident, kTensorBytes) << "the matrix is not mapped in";
    EXPECT_LT(resident, kTensorBytes * 3 / 2) << "the embeddings were mapped in too";
  }
  checkpoint.reset();
  fs::remove_all(dir);
}

}  // namespace
