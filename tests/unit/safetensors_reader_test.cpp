// Hostile and broken checkpoints are refused with MODEL_CORRUPT / LOAD_FAILED, never a crash.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "safetensors.h"

namespace fs = std::filesystem;

namespace {

std::string header_file(const std::string& header, size_t data_bytes, int64_t claimed_len = -1) {
  std::string out(8, '\0');
  const uint64_t len = claimed_len >= 0 ? static_cast<uint64_t>(claimed_len) : header.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((len >> (8 * i)) & 0xFF);
  return out + header + std::string(data_bytes, '\0');
}

const char* kConfig = R"({"model_type":"llama","vocab_size":4,"hidden_size":2,
  "intermediate_size":2,"num_hidden_layers":1,"num_attention_heads":1})";
const char* kTokenizer = R"({"version":"1.0","added_tokens":[],"normalizer":null,
  "pre_tokenizer":{"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":true},
  "post_processor":null,"decoder":{"type":"ByteLevel"},
  "model":{"type":"BPE","vocab":{"a":0,"b":1,"c":2,"d":3},"merges":[]}})";

class HostileCheckpoint : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("allm-hostile-" +
            std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    write("config.json", kConfig);
    write("tokenizer.json", kTokenizer);
  }
  void TearDown() override { fs::remove_all(dir_); }
  void write(const std::string& name, const std::string& bytes) {
    std::ofstream(dir_ / name, std::ios::binary) << bytes;
  }
  // Loads the folder; returns the status and keeps the message.
  stcpp_status load() {
    stcpp_status status = STCPP_OK;
    char message[512] = {0};
    stcpp_model* model = stcpp_model_load(dir_.c_str(), stcpp_model_default_params(), &status,
                                          message, sizeof message);
    message_ = message;
    stcpp_model_free(model);
    return model ? STCPP_OK : status;
  }
  fs::path dir_;
  std::string message_;
};

TEST_F(HostileCheckpoint, TruncatedFile) {
  write("model.safetensors", std::string("\x10\x00\x00", 3));
  EXPECT_EQ(load(), STCPP_MODEL_CORRUPT) << message_;
  EXPECT_NE(message_.find("shorter"), std::string::npos) << message_;
}

TEST_F(HostileCheckpoint, HeaderLengthPastEndOfFile) {
  write("model.safetensors", header_file("{}", 0, 1 << 20));
  EXPECT_EQ(load(), STCPP_MODEL_CORRUPT) << message_;
  write("model.safetensors", header_file("{}", 0, INT64_MAX));
  EXPECT_EQ(load(), STCPP_MODEL_CORRUPT) << message_;
}

TEST_F(HostileCheckpoint, BadJson) {
  write("model.safetensors", header_file("{\"a\": [1, 2", 16));
  EXPECT_EQ(load(), STCPP_MODEL_CORRUPT) << message_;
  EXPECT_NE(message_.find("JSON"), std::string::npos) << message_;
  write("model.safetensors", header_file("[1,2,3]", 16));
  EXPECT_EQ(load(), STCPP_MODEL_CORRUPT) << message_;
}

TEST_F(HostileCheckpoint, RangeOutsideTheData) {
  write("model.safetensors",
        header_file(R"({"t":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 8));
  EXPECT_EQ(load(), STCPP_MODEL_CORRUPT) << message_;
  EXPECT_NE(message_.find("'t'"), std::string::npos) << message_;
}

TEST_F(HostileCheckpoint, ShapeDoesNotMatchByteRange) {
  write("model.safetensors",
        header_file(R"({"t":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}})", 16));
  EXPECT_EQ(load(), STCPP_MODEL_CORRUPT) << message_;
  EXPECT_NE(message_.find("shape"), std::string::npos) << message_;
  // An element count that overflows 64 bits must not wrap around to a match.
  write("model.safetensors",
        header_file(R"({"t":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}})",
                    16));
  EXPECT_EQ(load(), STCPP_MODEL_CORRUPT) << message_;
}

TEST_F(HostileCheckpoint, OverlappingRanges) {
  write("model.safetensors", header_file(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},
                        "b":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}})",
                                         24));
  EXPECT_EQ(load(), STCPP_MODEL_CORRUPT) << message_;
  EXPECT_NE(message_.find("overlap"), std::string::npos) << message_;
}

TEST_F(HostileCheckpoint, BadFieldTypes) {
  for (const char* header :
       {R"({"t":{"dtype":"F99","shape":[1],"data_offsets":[0,4]}})",
        R"({"t":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})",
        R"({"t":{"dtype":"F32","shape":"4","data_offsets":[0,4]}})",
        R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}})",
        R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[0]}})", R"({"t":7})"}) {
    write("model.safetensors", header_file(header, 8));
    EXPECT_EQ(load(), STCPP_MODEL_CORRUPT) << header << ": " << message_;
  }
}

// Integer and F64 tensors (I64 position_ids in CLIP text encoders, F64 schedules) are read past:
// a checkpoint holding them still loads; the size checks hold for them as for any other.
TEST_F(HostileCheckpoint, IntegerTensorsAreReadPast) {
  write("model.safetensors",
        header_file(R"({"ids":{"dtype":"I64","shape":[1,2],"data_offsets":[0,16]},
                        "s":{"dtype":"F64","shape":[1],"data_offsets":[16,24]}})",
                    24));
  EXPECT_EQ(load(), STCPP_LOAD_FAILED) << message_;  // past the header: the model is missing
  EXPECT_NE(message_.find("missing"), std::string::npos) << message_;
  write("model.safetensors",
        header_file(R"({"ids":{"dtype":"I64","shape":[1,3],"data_offsets":[0,16]}})", 16));
  EXPECT_EQ(load(), STCPP_MODEL_CORRUPT) << message_;
}

TEST_F(HostileCheckpoint, IndexNamesAMissingShard) {
  write("model.safetensors.index.json",
        R"({"weight_map":{"model.embed_tokens.weight":"model-00001-of-00002.safetensors"}})");
  EXPECT_EQ(load(), STCPP_LOAD_FAILED) << message_;
  EXPECT_NE(message_.find("model-00001-of-00002.safetensors"), std::string::npos) << message_;
}

TEST_F(HostileCheckpoint, IndexEscapingTheFolder) {
  write("model.safetensors.index.json", R"({"weight_map":{"x":"../../etc/passwd"}})");
  EXPECT_EQ(load(), STCPP_MODEL_CORRUPT) << message_;
}

TEST_F(HostileCheckpoint, IndexPlacesATensorInTheWrongShard) {
  write("a.safetensors",
        header_file(R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 4));
  write("model.safetensors.index.json", R"({"weight_map":{"u":"a.safetensors"}})");
  EXPECT_EQ(load(), STCPP_MODEL_CORRUPT) << message_;
}

TEST_F(HostileCheckpoint, WellFormedButMissingTensors) {
  write("model.safetensors",
        header_file(R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 4));
  EXPECT_EQ(load(), STCPP_LOAD_FAILED) << message_;
  EXPECT_NE(message_.find("missing"), std::string::npos) << message_;
}

TEST_F(HostileCheckpoint, WrongShapeForTheConfig) {
  write("model.safetensors",
        header_file(
            R"({"model.embed_tokens.weight":{"dtype":"F32","shape":[4,3],"data_offsets":[0,48]}})",
            48));
  EXPECT_EQ(load(), STCPP_MODEL_CORRUPT) << message_;
}

TEST_F(HostileCheckpoint, BrokenConfig) {
  write("config.json", "{\"model_type\": ");
  EXPECT_EQ(load(), STCPP_MODEL_CORRUPT) << message_;
  write("config.json", R"({"model_type":"llama","hidden_size":"big"})");
  EXPECT_EQ(load(), STCPP_MODEL_CORRUPT) << message_;
  write("config.json", R"({"model_type":"llama","vocab_size":4,"hidden_size":2,
    "intermediate_size":2,"num_hidden_layers":1,"num_attention_heads":3,"num_key_value_heads":2})");
  EXPECT_EQ(load(), STCPP_MODEL_CORRUPT) << message_;
}

TEST_F(HostileCheckpoint, UnknownAndPlannedArchitectures) {
  write("config.json", R"({"model_type":"frobnicator"})");
  EXPECT_EQ(load(), STCPP_UNSUPPORTED);
  EXPECT_NE(message_.find("frobnicator"), std::string::npos) << message_;
  EXPECT_NE(message_.find("qwen3"), std::string::npos) << "lists the supported ones";
  write("config.json", R"({"model_type":"glm"})");
  EXPECT_EQ(load(), STCPP_UNSUPPORTED);
  EXPECT_NE(message_.find("planned"), std::string::npos) << message_;
}

// stcpp_checkpoint_tensors: the header's tensors for another engine (names, dtypes, shapes), and
// the same refusals as a load for a header that does not hold.
TEST_F(HostileCheckpoint, CheckpointTensorsListsTheValidatedHeader) {
  write("unet.safetensors", header_file(R"({"b":{"dtype":"F32","shape":[2],"data_offsets":[36,44]},
                        "a":{"dtype":"F16","shape":[2,1,3,3],"data_offsets":[0,36]}})",
                                        44));
  std::vector<std::string> listed;
  auto visit = [](const stcpp_tensor_info* t, void* user) {
    std::string line = std::string(t->name) + " " + t->dtype;
    for (int32_t i = 0; i < t->n_dims; ++i) line += " " + std::to_string(t->shape[i]);
    static_cast<std::vector<std::string>*>(user)->push_back(line);
  };
  stcpp_status status = STCPP_INTERNAL;
  char message[512] = {0};
  EXPECT_TRUE(stcpp_checkpoint_tensors((dir_ / "unet.safetensors").c_str(), visit, &listed, &status,
                                       message, sizeof message))
      << message;
  EXPECT_EQ(status, STCPP_OK);
  EXPECT_EQ(listed, (std::vector<std::string>{"a F16 2 1 3 3", "b F32 2"}));

  listed.clear();
  write("unet.safetensors",
        header_file(R"({"t":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 8));
  EXPECT_FALSE(stcpp_checkpoint_tensors((dir_ / "unet.safetensors").c_str(), visit, &listed,
                                        &status, message, sizeof message));
  EXPECT_EQ(status, STCPP_MODEL_CORRUPT) << message;
  EXPECT_TRUE(listed.empty());
}

std::vector<std::string> supported_architectures() {
  std::vector<std::string> names;
  std::string list = stcpp_supported_architectures();
  for (size_t start = 0; start < list.size();) {
    const size_t comma = list.find(", ", start);
    names.push_back(list.substr(start, comma - start));
    start = comma == std::string::npos ? list.size() : comma + 2;
  }
  return names;
}

// Qwen 1 (model_type "qwen": remote code, a tiktoken tokenizer) is refused, naming what runs.
TEST_F(HostileCheckpoint, Qwen1IsRefusedWithTheSupportedTypes) {
  write("config.json", R"({"model_type":"qwen"})");
  EXPECT_EQ(load(), STCPP_UNSUPPORTED);
  EXPECT_NE(message_.find("Qwen 1"), std::string::npos) << message_;
  EXPECT_NE(message_.find("Qwen1.5 and later are qwen2"), std::string::npos) << message_;
  EXPECT_NE(message_.find(std::string("supported: ") + stcpp_supported_architectures()),
            std::string::npos)
      << message_;
}

// The list is the registry's: every name in it is accepted (the load gets past config.json and
// fails on the missing weights), and it names gpt-oss's Hugging Face model_type "gpt_oss".
TEST_F(HostileCheckpoint, SupportedArchitecturesAreTheRegistry) {
  const std::vector<std::string> names = supported_architectures();
  EXPECT_NE(std::find(names.begin(), names.end(), "gpt_oss"), names.end())
      << stcpp_supported_architectures();
  for (const std::string& name : names) {
    std::string config = kConfig;
    config.replace(config.find("llama"), 5, name);
    write("config.json", config);
    EXPECT_NE(load(), STCPP_UNSUPPORTED) << name << ": " << message_;
    EXPECT_NE(message_.find("no .safetensors file"), std::string::npos) << name << ": " << message_;
  }
}

}  // namespace
