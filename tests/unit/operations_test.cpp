// Metrics formatting, memory estimates and sizes, API key checks, CORS, access-log lines.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "api/access_log.h"
#include "api/auth.h"
#include "base/byte_size.h"
#include "core/free_memory.h"
#include "core/metrics.h"
#include "demo/tiny_gguf.h"
#include "text/text_memory.h"

namespace allm {
namespace {

namespace fs = std::filesystem;

TEST(Metrics, RendersCountersGaugesAndHistogramsInPrometheusFormat) {
  Metrics m;
  m.define_counter("t_requests_total", "requests");
  m.define_gauge("t_depth", "queue depth");
  m.define_histogram("t_latency_seconds", "latency", {0.1, 1});
  m.add("t_requests_total", {{"endpoint", "/v1/x"}, {"status", "200"}});
  m.add("t_requests_total", {{"endpoint", "/v1/x"}, {"status", "200"}}, 2);
  m.set("t_depth", {{"model", "a\"b\\c\nd"}}, 3);
  m.observe("t_latency_seconds", {{"model", "m"}}, 0.05);
  m.observe("t_latency_seconds", {{"model", "m"}}, 0.5);
  m.observe("t_latency_seconds", {{"model", "m"}}, 7);
  m.add("t_unknown", {}, 1);  // ignored
  const std::string text = m.render();
  EXPECT_NE(text.find("# HELP t_requests_total requests\n# TYPE t_requests_total counter\n"
                      "t_requests_total{endpoint=\"/v1/x\",status=\"200\"} 3\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("# TYPE t_depth gauge\nt_depth{model=\"a\\\"b\\\\c\\nd\"} 3\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("t_latency_seconds_bucket{model=\"m\",le=\"0.1\"} 1\n"
                      "t_latency_seconds_bucket{model=\"m\",le=\"1\"} 2\n"
                      "t_latency_seconds_bucket{model=\"m\",le=\"+Inf\"} 3\n"
                      "t_latency_seconds_sum{model=\"m\"} 7.55\n"
                      "t_latency_seconds_count{model=\"m\"} 3\n"),
            std::string::npos)
      << text;
  EXPECT_EQ(text.find("t_unknown"), std::string::npos);
  EXPECT_EQ(m.value("t_requests_total", {{"endpoint", "/v1/x"}, {"status", "200"}}), 3);
  m.reset("t_depth");
  EXPECT_EQ(m.render().find("t_depth{"), std::string::npos);
}

TEST(Metrics, FormatsValues) {
  EXPECT_EQ(format_metric_value(3), "3");
  EXPECT_EQ(format_metric_value(0.25), "0.25");
  EXPECT_EQ(format_metric_value(1.0 / 0.0), "+Inf");
  EXPECT_EQ(render_labels({}), "");
}

TEST(MemoryEstimate, ParsesSizes) {
  uint64_t b = 0;
  EXPECT_TRUE(parse_byte_size("1024", &b));
  EXPECT_EQ(b, 1024u);
  EXPECT_TRUE(parse_byte_size("8G", &b));
  EXPECT_EQ(b, 8ull << 30);
  EXPECT_TRUE(parse_byte_size("512MiB", &b));
  EXPECT_EQ(b, 512ull << 20);
  EXPECT_TRUE(parse_byte_size("1.5gb", &b));
  EXPECT_EQ(b, 3ull << 29);
  EXPECT_TRUE(parse_byte_size("64k", &b));
  EXPECT_EQ(b, 64ull << 10);
  for (const char* bad : {"", "G", "-1G", "12X", "1..2", "1 G"}) {
    EXPECT_FALSE(parse_byte_size(bad, &b)) << bad;
  }
}

TEST(MemoryEstimate, KvCacheIsLayersTimesContextTimesWidth) {
  ModelShape shape;
  shape.layers = 32;
  shape.kv_heads = 8;
  shape.head_dim_k = shape.head_dim_v = 128;
  // Llama-3-8B at 8192 tokens x 1 sequence in F16: 1 GiB.
  EXPECT_EQ(kv_cache_bytes(shape, 8192, 1, 2), 1ull << 30);
  EXPECT_EQ(kv_cache_bytes(shape, 4096, 4, 2), 2ull << 30);
}

TEST(MemoryEstimate, ReadsGgufMetadataAndHfConfig) {
  const fs::path dir = fs::temp_directory_path() / "allm-memory-estimate-test";
  fs::create_directories(dir);
  TinyLlamaSpec spec;
  std::string error;
  const fs::path gguf = dir / "m.gguf";
  ASSERT_TRUE(write_tiny_llama_gguf(gguf.string(), spec, &error)) << error;
  auto shape = read_gguf_shape(gguf);
  ASSERT_TRUE(shape);
  EXPECT_EQ(shape->layers, spec.n_layer);
  EXPECT_EQ(shape->embedding, spec.n_embd);
  EXPECT_GT(shape->kv_heads, 0);
  EXPECT_GT(shape->vocab, 0);
  const MemoryEstimate e = estimate_text_model(ModelFormat::GGUF, gguf, 512, 2, 2);
  EXPECT_EQ(e.weights, fs::file_size(gguf));
  // Two sequences of generation and the embedding context's one.
  EXPECT_EQ(e.kv_cache, kv_cache_bytes(*shape, 512, 3, 2));
  EXPECT_GT(e.compute, 64u << 20);

  const fs::path hf = dir / "hf";
  fs::create_directories(hf);
  std::ofstream(hf / "config.json") << R"({"model_type":"llama","num_hidden_layers":4,
    "hidden_size":256,"num_attention_heads":8,"num_key_value_heads":2,"vocab_size":1000})";
  std::ofstream(hf / "model.safetensors") << std::string(1000, 'x');
  const MemoryEstimate h = estimate_text_model(ModelFormat::SAFETENSORS, hf, 100, 3, 2);
  EXPECT_EQ(h.weights, 1000u);
  // Three sequences of generation and as many for embeddings.
  EXPECT_EQ(h.kv_cache, 4ull * 100 * 6 * (2 * (32 + 32)) * 2);
  fs::remove_all(dir);
}

TEST(MemoryEstimate, ReadsMemAvailable) {
  const fs::path file = fs::temp_directory_path() / "allm-meminfo-test";
  std::ofstream(file) << "MemTotal:       16000000 kB\nMemFree:  100 kB\n"
                         "MemAvailable:    8000000 kB\n";
  EXPECT_EQ(available_memory_bytes(file.string()), 8000000ull * 1024);
  EXPECT_FALSE(available_memory_bytes("/nonexistent/meminfo"));
  fs::remove(file);
}

std::string hex(const KeyDigest& digest) {
  std::string out;
  char byte[3];
  for (unsigned char b : digest) {
    std::snprintf(byte, sizeof byte, "%02x", b);
    out += byte;
  }
  return out;
}

// Keys are compared by their SHA-256 digests (FIPS 180-4's examples), never by their bytes, so
// a key of any length is compared in the same 32 steps.
TEST(Auth, KeysAreComparedByFixedSizeDigests) {
  EXPECT_EQ(hex(key_digest("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(hex(key_digest("")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_TRUE(digests_equal(key_digest("sk-abc"), key_digest("sk-abc")));
  EXPECT_FALSE(digests_equal(key_digest("sk-abc"), key_digest("sk-abd")));
  // A prefix, an extension and a key with a NUL inside are different keys.
  EXPECT_FALSE(digests_equal(key_digest("sk-abc"), key_digest("sk-ab")));
  EXPECT_FALSE(digests_equal(key_digest("sk-abc"), key_digest("sk-abcd")));
  EXPECT_FALSE(digests_equal(key_digest(std::string("a\0b", 3)), key_digest("a")));
  EXPECT_FALSE(digests_equal(key_digest(""), key_digest("x")));
  // Digests differing only in the last byte are told apart: every byte is compared.
  KeyDigest last = key_digest("sk-abc");
  last.back() ^= 1;
  EXPECT_FALSE(digests_equal(key_digest("sk-abc"), last));
}

TEST(Auth, BearerHeader) {
  const std::vector<KeyDigest> keys = {key_digest("sk-one"), key_digest("sk-two")};
  EXPECT_TRUE(bearer_matches(keys, "Bearer sk-one"));
  EXPECT_TRUE(bearer_matches(keys, "bearer sk-two"));
  EXPECT_TRUE(bearer_matches(keys, "Bearer  sk-one \t"));
  EXPECT_FALSE(bearer_matches(keys, "Bearer sk-three"));
  EXPECT_FALSE(bearer_matches(keys, "Bearer sk-on"));
  EXPECT_FALSE(bearer_matches(keys, "Bearer sk-one1"));
  EXPECT_FALSE(bearer_matches(keys, "sk-one"));
  EXPECT_FALSE(bearer_matches(keys, "Basic sk-one"));
  EXPECT_FALSE(bearer_matches(keys, "Bearer "));
  EXPECT_FALSE(bearer_matches(keys, ""));
}

TEST(Auth, WhichPathsNeedAKey) {
  EXPECT_TRUE(path_requires_key("/v1/responses"));
  EXPECT_TRUE(path_requires_key("/v1/models"));
  EXPECT_TRUE(path_requires_key("/metrics"));
  EXPECT_FALSE(path_requires_key("/health"));
  EXPECT_FALSE(path_requires_key("/v1x"));
}

TEST(Auth, CorsOrigins) {
  EXPECT_EQ(allowed_origin({"https://a.example"}, "https://a.example"), "https://a.example");
  EXPECT_EQ(allowed_origin({"https://a.example"}, "https://b.example"), "");
  EXPECT_EQ(allowed_origin({"*"}, "https://b.example"), "*");
  EXPECT_EQ(allowed_origin({"*"}, ""), "");
}

TEST(AccessLog, EndpointLabelsAndLine) {
  EXPECT_EQ(endpoint_label("POST", "/v1/responses"), "POST /v1/responses");
  EXPECT_EQ(endpoint_label("GET", "/v1/responses/resp_123"), "GET /v1/responses/{id}");
  EXPECT_EQ(endpoint_label("GET", "/v1/models/tiny"), "GET /v1/models/{id}");
  EXPECT_EQ(endpoint_label("GET", "/random/path"), "other");
  AccessRecord r;
  r.id = "req_1";
  r.model = "my model";
  r.input_tokens = 12;
  r.cached_tokens = 4;
  r.output_tokens = 7;
  r.time_to_first_token = 0.0125;
  r.error_code = "TIMEOUT";
  EXPECT_EQ(format_access_line(r, "POST", "/v1/responses", 504, 1.5),
            "access id=req_1 method=POST path=/v1/responses status=504 model=\"my model\" "
            "input_tokens=12 cached_tokens=4 output_tokens=7 ttft_ms=12.5 duration_ms=1500.0 "
            "error=TIMEOUT");
}

}  // namespace
}  // namespace allm
