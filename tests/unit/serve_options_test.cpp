#include "cli/serve_options.h"

#include <gtest/gtest.h>

#include <cstdlib>

using namespace allm;

static bool parse(std::vector<std::string> args, ServeOptions* o, std::string* problem) {
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  bool help = false;
  return parse_serve_options(static_cast<int>(argv.size()), argv.data(), o, problem, &help);
}

TEST(ServeOptions, DefaultsFlagsAndEnvironment) {
  setenv("ALLM_PORT", "9000", 1);
  setenv("ALLM_MODEL", "a=/x.gguf,b=/y:safetensors", 1);
  ServeOptions o;
  std::string problem;
  ASSERT_TRUE(parse({"--ctx-size", "1024", "--model=c=/z:gguf", "--port", "9100"}, &o, &problem))
      << problem;
  unsetenv("ALLM_PORT");
  unsetenv("ALLM_MODEL");
  EXPECT_EQ(o.server.host, "127.0.0.1");
  EXPECT_EQ(o.server.port, 9100);  // the flag wins over the environment
  EXPECT_EQ(o.text.ctx_size, 1024);
  ASSERT_EQ(o.models.size(), 3u);
  EXPECT_EQ(o.models[1].registered_format, ModelFormat::SAFETENSORS);
  EXPECT_EQ(o.models[2].id, "c");
  EXPECT_EQ(o.models[2].registered_format, ModelFormat::GGUF);
}

TEST(ServeOptions, RejectsBadValues) {
  ServeOptions o;
  std::string problem;
  EXPECT_FALSE(parse({"--port", "http"}, &o, &problem));
  EXPECT_NE(problem.find("--port"), std::string::npos);
  EXPECT_FALSE(parse({"--bogus"}, &o, &problem));
  EXPECT_FALSE(parse({"--model", "nopath"}, &o, &problem));
  EXPECT_FALSE(parse({"--parallel"}, &o, &problem));
}

TEST(ServeOptions, HubModels) {
  ServeOptions o;
  std::string problem;
  ASSERT_TRUE(parse({"--model", "org/name-GGUF@v2:Q4_K_M", "--model", "m=/x"}, &o, &problem))
      << problem;
  ASSERT_EQ(o.hub_models.size(), 1u);
  EXPECT_EQ(o.hub_models[0].repo, "org/name-GGUF");
  EXPECT_EQ(o.hub_models[0].revision, "v2");
  EXPECT_EQ(o.hub_models[0].quant, "Q4_K_M");
  ASSERT_EQ(o.models.size(), 1u);
  EXPECT_FALSE(parse({"--model", "org/na me"}, &o, &problem));
  EXPECT_FALSE(parse({"--model", "nopath"}, &o, &problem));
  EXPECT_NE(problem.find("ORG/NAME"), std::string::npos);
}

TEST(ServeOptions, QuantizeOnLoad) {
  ServeOptions o;
  std::string problem;
  EXPECT_EQ(o.quantization, Quantization::NONE);
  setenv("ALLM_QUANTIZE", "q4_0", 1);
  ASSERT_TRUE(parse({"--model", "m=/x:safetensors:q8_0"}, &o, &problem)) << problem;
  EXPECT_EQ(o.quantization, Quantization::Q4_0);
  EXPECT_EQ(o.models.at(0).quantization, Quantization::Q8_0);
  ASSERT_TRUE(parse({"--quantize", "q4_k"}, &o, &problem)) << problem;
  unsetenv("ALLM_QUANTIZE");
  EXPECT_EQ(o.quantization, Quantization::Q4_K);  // the flag wins over the environment
  EXPECT_FALSE(parse({"--quantize", "q5_1"}, &o, &problem));
  EXPECT_NE(problem.find("q5_1"), std::string::npos);
  EXPECT_FALSE(parse({"--model", "m=/x:safetensors:int8"}, &o, &problem));
  EXPECT_NE(problem.find("unknown quantization 'int8'"), std::string::npos);
}

TEST(ServeOptions, RpcWorkers) {
  ServeOptions o;
  std::string problem;
  EXPECT_TRUE(o.rpc_workers.empty());
  ASSERT_TRUE(parse({"--rpc", "10.0.0.2:50052,10.0.0.3:50052"}, &o, &problem)) << problem;
  EXPECT_EQ(o.rpc_workers, (std::vector<std::string>{"10.0.0.2:50052", "10.0.0.3:50052"}));
  EXPECT_FALSE(parse({"--rpc", "10.0.0.2"}, &o, &problem));
  EXPECT_NE(problem.find("HOST:PORT"), std::string::npos) << problem;
}

TEST(ServeOptions, TensorSplitIsNonNegativeProportions) {
  ServeOptions o;
  std::string problem;
  EXPECT_TRUE(o.text.tensor_split.empty());  // default: by free memory
  ASSERT_TRUE(parse({"--tensor-split", "3,1,0.5"}, &o, &problem)) << problem;
  EXPECT_EQ(o.text.tensor_split, (std::vector<float>{3, 1, 0.5f}));
  ASSERT_TRUE(parse({"--tensor-split", "0,1"}, &o, &problem)) << problem;  // none on the first
  for (const char* bad : {"", "3,", ",1", "a,1", "-1,2", "0,0", "1,inf", "1;2"}) {
    EXPECT_FALSE(parse({"--tensor-split", bad}, &o, &problem)) << bad;
    EXPECT_NE(problem.find("proportions"), std::string::npos) << problem;
  }
}

TEST(ServeOptions, VaeTiling) {
  ServeOptions o;
  std::string problem;
  EXPECT_EQ(o.images.vae_tiling, VaeTiling::AUTO);
  ASSERT_TRUE(parse({"--vae-tiling", "on"}, &o, &problem)) << problem;
  EXPECT_EQ(o.images.vae_tiling, VaeTiling::ON);
  ASSERT_TRUE(parse({"--vae-tiling", "off"}, &o, &problem)) << problem;
  EXPECT_EQ(o.images.vae_tiling, VaeTiling::OFF);
  EXPECT_FALSE(parse({"--vae-tiling", "yes"}, &o, &problem));
  EXPECT_NE(problem.find("expected auto, on or off, got 'yes'"), std::string::npos) << problem;
}

TEST(ServeOptions, MemoryBudgetsAndKeepAliveApplyToEveryModality) {
  ServeOptions o;
  std::string problem;
  ASSERT_TRUE(parse({"--max-memory", "ram=16G,vram=8G", "--keep-alive", "2.5"}, &o, &problem))
      << problem;
  EXPECT_EQ(o.lifecycle.max_memory.ram, 16ull << 30);
  EXPECT_EQ(o.lifecycle.max_memory.vram, 8ull << 30);
  EXPECT_EQ(o.lifecycle.keep_alive_seconds, 2.5);
  ASSERT_TRUE(parse({"--max-memory=512M"}, &o, &problem)) << problem;
  EXPECT_EQ(o.lifecycle.max_memory.ram, 512ull << 20);
  EXPECT_EQ(o.lifecycle.max_memory.vram, 0u);
  EXPECT_FALSE(parse({"--max-memory", "gpu=8G"}, &o, &problem));
  EXPECT_NE(problem.find("--max-memory: expected a size such as 16G"), std::string::npos);
  EXPECT_NE(serve_help().find("ram=16G,vram=8G"), std::string::npos);
}

// With the defaults, every request a model's queue may hold reaches its handler: the HTTP layer
// serves at least --parallel + --queue-size connections per model (the 429 comes from the queue).
TEST(ServeOptions, ConnectionLimitCoversTheQueues) {
  ServeOptions o;
  std::string problem;
  ASSERT_TRUE(parse({}, &o, &problem)) << problem;
  EXPECT_EQ(o.server.max_connections, 0);  // decided at start-up
  const int one_model = o.text.parallel + o.text.queue_size + o.audio.parallel + o.audio.queue +
                        o.images.parallel + o.images.queue;
  EXPECT_GE(connection_limit_for(one_model), one_model + 64);
  EXPECT_EQ(connection_limit_for(10 * one_model), 10 * one_model + 64);
  ASSERT_TRUE(parse({"--max-connections", "12"}, &o, &problem)) << problem;
  EXPECT_EQ(o.server.max_connections, 12);
  EXPECT_FALSE(parse({"--max-connections", "-1"}, &o, &problem));
  EXPECT_NE(serve_help().find("Default threads here"), std::string::npos);
}

TEST(ServeOptions, StoreRetention) {
  ServeOptions o;
  std::string problem;
  EXPECT_EQ(o.store.max_age_seconds, 0);
  EXPECT_EQ(o.store.max_bytes, 0u);
  setenv("ALLM_STORE_MAX_BYTES", "1G", 1);
  ASSERT_TRUE(parse({"--store-max-age", "86400"}, &o, &problem)) << problem;
  unsetenv("ALLM_STORE_MAX_BYTES");
  EXPECT_EQ(o.store.max_age_seconds, 86400);
  EXPECT_EQ(o.store.max_bytes, 1ull << 30);
  ASSERT_TRUE(parse({"--store-max-bytes=64K", "--store-max-age", "0.5"}, &o, &problem)) << problem;
  EXPECT_EQ(o.store.max_bytes, 64u << 10);
  EXPECT_EQ(o.store.max_age_seconds, 0.5);
  ASSERT_TRUE(parse({"--store-max-bytes", "0"}, &o, &problem)) << problem;
  EXPECT_EQ(o.store.max_bytes, 0u);
  EXPECT_FALSE(parse({"--store-max-bytes", "1000"}, &o, &problem));
  EXPECT_NE(problem.find("--store-max-bytes: expected 0 or a size of at least 64K"),
            std::string::npos);
  EXPECT_FALSE(parse({"--store-max-age", "-1"}, &o, &problem));
  EXPECT_NE(problem.find("--store-max-age"), std::string::npos);
  EXPECT_NE(serve_help().find("ALLM_STORE_MAX_AGE"), std::string::npos);
}

TEST(ServeOptions, StoreLocation) {
  ServeOptions o;
  std::string problem;
  ASSERT_TRUE(parse({}, &o, &problem)) << problem;
  EXPECT_TRUE(o.store_location.empty());  // the SQLite file in the data dir
  setenv("ALLM_STORE", "sqlite:/srv/allm.db", 1);
  ASSERT_TRUE(parse({}, &o, &problem)) << problem;
  unsetenv("ALLM_STORE");
  EXPECT_EQ(o.store_location, "sqlite:/srv/allm.db");
  ASSERT_TRUE(parse({"--store", "postgresql://allm:pw@db/allm"}, &o, &problem)) << problem;
  EXPECT_EQ(o.store_location, "postgresql://allm:pw@db/allm");
  EXPECT_FALSE(parse({"--store", "mysql://allm:hunter2@db/allm"}, &o, &problem));
  EXPECT_NE(problem.find("--store: expected sqlite:PATH or a postgres://"), std::string::npos)
      << problem;
  EXPECT_EQ(problem.find("hunter2"), std::string::npos) << problem;
  EXPECT_NE(serve_help().find("[ALLM_STORE]"), std::string::npos);
}

TEST(ServeOptions, PublicUrlIsAnHttpUrlKeptWithoutItsTrailingSlash) {
  ServeOptions o;
  std::string problem;
  EXPECT_TRUE(o.server.public_url.empty());  // default: the listening address
  ASSERT_TRUE(parse({"--public-url", "https://ai.example.com/allm/"}, &o, &problem)) << problem;
  EXPECT_EQ(o.server.public_url, "https://ai.example.com/allm");
  setenv("ALLM_PUBLIC_URL", "http://10.0.0.5:8080", 1);
  ServeOptions from_env;
  ASSERT_TRUE(parse({}, &from_env, &problem)) << problem;
  unsetenv("ALLM_PUBLIC_URL");
  EXPECT_EQ(from_env.server.public_url, "http://10.0.0.5:8080");
  for (const char* bad :
       {"ai.example.com", "ftp://ai.example.com", "https://", "https:///x", "http://a b", ""}) {
    EXPECT_FALSE(parse({"--public-url", bad}, &o, &problem)) << bad;
    EXPECT_NE(problem.find("--public-url"), std::string::npos) << problem;
  }
  EXPECT_NE(serve_help().find("--public-url URL"), std::string::npos);
}
