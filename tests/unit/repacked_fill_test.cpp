// A matrix quantized on load into a repacked layout is filled a chunk of rows at a time on
// several threads, each chunk set through a view; the result must be the bytes ggml gives when
// the whole quantized matrix is set at once.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "ggml-backend.h"
#include "ggml.h"
#include "safetensors/checkpoint.h"
#include "safetensors/weight_store.h"

namespace fs = std::filesystem;

namespace {

constexpr int64_t kCols = 256;

// Three 64-row chunks and a last one: 8 rows (a whole interleaved group of the AVX2 layout; not
// a multiple of 32 rows, so AMX leaves it to that layout), or 32 rows (AMX takes it, where the
// CPU has it).
struct FillCase {
  const char* name;
  int64_t rows;
};
class RepackedFill : public ::testing::TestWithParam<FillCase> {};

void write_matrix(const fs::path& file, const std::vector<float>& values, int64_t rows) {
  const size_t bytes = values.size() * sizeof(float);
  std::string header = R"({"matrix":{"dtype":"F32","shape":[)" + std::to_string(rows) + "," +
                       std::to_string(kCols) + R"(],"data_offsets":[0,)" + std::to_string(bytes) +
                       "]}}";
  header.append((8 - header.size() % 8) % 8, ' ');
  std::ofstream out(file, std::ios::binary);
  const uint64_t length = header.size();
  out.write(reinterpret_cast<const char*>(&length), 8);
  out << header;
  out.write(reinterpret_cast<const char*>(values.data()), static_cast<std::streamsize>(bytes));
}

TEST_P(RepackedFill, ChunksOfRowsGiveTheWholeMatrixLayout) {
  const int64_t rows = GetParam().rows;
  const fs::path dir = fs::temp_directory_path() / "allm-repacked-fill";
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::vector<float> values(rows * kCols);
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (float& v : values) v = normal(rng);
  write_matrix(dir / "model.safetensors", values, rows);

  stcpp::Failure failure;
  auto checkpoint = stcpp::Checkpoint::open((dir / "model.safetensors").string(), &failure);
  ASSERT_TRUE(checkpoint) << failure.message;
  stcpp::WeightStore store(*checkpoint, 4, {GGML_TYPE_Q4_0, 2});
  ggml_tensor* matrix = store.matrix("matrix", {rows, kCols});
  ASSERT_TRUE(matrix);
  ASSERT_FALSE(store.finish()) << store.failure().message;
  const std::string layout = ggml_backend_buffer_name(matrix->buffer);
  SCOPED_TRACE(layout);
  if (layout == "CPU") GTEST_SKIP() << "this CPU has no repacked Q4_0 layout";

  // The reference: the whole matrix quantized, then set at once into the same buffer type.
  std::vector<uint8_t> blocks(ggml_row_size(GGML_TYPE_Q4_0, kCols) * rows);
  ggml_quantize_chunk(GGML_TYPE_Q4_0, values.data(), blocks.data(), 0, rows, kCols, nullptr);
  ggml_context* ctx = ggml_init({ggml_tensor_overhead(), nullptr, true});
  ggml_tensor* whole = ggml_new_tensor_2d(ctx, GGML_TYPE_Q4_0, kCols, rows);
  ggml_backend_buffer_t buffer =
      ggml_backend_alloc_ctx_tensors_from_buft(ctx, ggml_backend_buffer_get_type(matrix->buffer));
  ASSERT_TRUE(buffer);
  ggml_backend_tensor_set(whole, blocks.data(), 0, blocks.size());
  ASSERT_EQ(ggml_nbytes(whole), ggml_nbytes(matrix));
  EXPECT_EQ(std::memcmp(whole->data, matrix->data, ggml_nbytes(whole)), 0);
  ggml_backend_buffer_free(buffer);
  ggml_free(ctx);
  checkpoint.reset();
  fs::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Rows, RepackedFill,
                         ::testing::Values(FillCase{"tail_of_8", 200}, FillCase{"tail_of_32", 224}),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
