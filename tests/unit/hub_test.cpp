// The Hub client's pure pieces: repo specs, cache names, file selection, quant tags, sha256,
// header and model info parsing, and the cache's links and removal.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/model_registry.h"
#include "hub/file_selection.h"
#include "hub/hub_cache.h"
#include "hub/hub_client.h"
#include "hub/repo_spec.h"
#include "hub/sha256.h"

namespace fs = std::filesystem;
using namespace allm;

static std::vector<HubFile> listing(const std::vector<std::string>& paths) {
  std::vector<HubFile> files;
  for (const auto& p : paths) files.push_back({p, 0, ""});
  return files;
}

TEST(HubRepoSpec, ParsesRevisionAndQuant) {
  std::string problem;
  auto spec = parse_repo_spec("bartowski/Llama-3.2-1B-Instruct-GGUF@v1.0:Q4_K_M", &problem);
  ASSERT_TRUE(spec) << problem;
  EXPECT_EQ(spec->repo, "bartowski/Llama-3.2-1B-Instruct-GGUF");
  EXPECT_EQ(spec->revision, "v1.0");
  EXPECT_EQ(spec->quant, "Q4_K_M");
  spec = parse_repo_spec("ggerganov/whisper.cpp:base.en", &problem);
  ASSERT_TRUE(spec);
  EXPECT_EQ(spec->revision, "main");
  EXPECT_EQ(spec->quant, "base.en");
  EXPECT_TRUE(parse_repo_spec("org/name@refs/pr/1", &problem));
  for (const char* bad : {"name", "a/b/c", "../x", "org/..", "org/name@../../etc",
                          "org/name:", "org/na me", "/org/name", "org/name@"}) {
    EXPECT_FALSE(parse_repo_spec(bad, &problem)) << bad;
  }
}

TEST(HubRepoSpec, CacheFolderNames) {
  EXPECT_EQ(repo_cache_folder("Qwen/Qwen3-0.6B"), "models--Qwen--Qwen3-0.6B");
  EXPECT_EQ(repo_from_cache_folder("models--Qwen--Qwen3-0.6B"), "Qwen/Qwen3-0.6B");
  EXPECT_EQ(repo_from_cache_folder("datasets--a--b"), "");
  EXPECT_EQ(repo_from_cache_folder("models--lonely"), "");
  EXPECT_TRUE(is_commit_hash(std::string(40, 'a')));
  EXPECT_FALSE(is_commit_hash("main"));
}

TEST(HubQuantTag, MatchesLikeLlamaCpp) {
  EXPECT_TRUE(file_matches_tag("Llama-3.2-1B-Instruct-Q4_K_M.gguf", "q4_k_m"));
  EXPECT_FALSE(file_matches_tag("Llama-3.2-1B-Instruct-Q4_K_M.gguf", "Q4_K"));  // not Q4_K_M
  EXPECT_TRUE(file_matches_tag("x-Q8_0-00001-of-00002.gguf", "Q8_0"));
  EXPECT_EQ(file_tag("Llama-3.2-1B-Instruct-Q4_K_M.gguf"), "Q4_K_M");
  EXPECT_EQ(file_tag("model.Q8_0.gguf"), "Q8_0");
  EXPECT_EQ(file_tag("x-F16-00001-of-00003.gguf"), "F16");
  EXPECT_EQ(file_tag("ggml-base.en.bin"), "base.en");
  EXPECT_TRUE(is_primary_gguf("x-F16-00001-of-00003.gguf"));
  EXPECT_FALSE(is_primary_gguf("x-F16-00002-of-00003.gguf"));
  EXPECT_FALSE(is_primary_gguf("mmproj-x-f16.gguf"));
}

TEST(HubFileSelection, GgufDefaultAndShards) {
  const auto files =
      listing({"README.md", "m-Q2_K.gguf", "m-Q8_0.gguf", "m-Q4_K_M.gguf", "mmproj-m-f16.gguf",
               "m-F16-00002-of-00002.gguf", "m-F16-00001-of-00002.gguf"});
  EXPECT_EQ(select_files(files, "o/m", "").files, std::vector<std::string>{"m-Q4_K_M.gguf"});
  EXPECT_EQ(select_files(files, "o/m", "q8_0").files, std::vector<std::string>{"m-Q8_0.gguf"});
  EXPECT_EQ(select_files(files, "o/m", "F16").files,
            (std::vector<std::string>{"m-F16-00001-of-00002.gguf", "m-F16-00002-of-00002.gguf"}));
  const auto none = select_files(files, "o/m", "Q5_K_S");
  EXPECT_NE(none.problem.find("Q4_K_M"), std::string::npos);
  // No Q4_K_M: Q8_0, then the first model file.
  EXPECT_EQ(select_files(listing({"m-Q2_K.gguf", "m-Q8_0.gguf"}), "o/m", "").files,
            std::vector<std::string>{"m-Q8_0.gguf"});
  EXPECT_EQ(select_files(listing({"mmproj.gguf", "m-IQ2.gguf"}), "o/m", "").files,
            std::vector<std::string>{"m-IQ2.gguf"});
}

TEST(HubFileSelection, SafetensorsFolderSkipsDuplicates) {
  const auto selection = select_files(
      listing({"README.md", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
               "model.safetensors.index.json", "tokenizer.json", "tokenizer_config.json",
               "generation_config.json", "pytorch_model.bin", "consolidated.safetensors",
               "original/model.safetensors", "chat_template.jinja", "onnx/model.onnx",
               "config.json"}),
      "o/m", "");
  EXPECT_EQ(selection.problem, "");
  EXPECT_EQ(selection.files, (std::vector<std::string>{
                                 "config.json", "model-00001-of-00002.safetensors",
                                 "model-00002-of-00002.safetensors", "model.safetensors.index.json",
                                 "tokenizer.json", "tokenizer_config.json",
                                 "generation_config.json", "chat_template.jinja"}));
  EXPECT_NE(
      select_files(listing({"config.json", "pytorch_model.bin"}), "o/m", "").problem.find("GGUF"),
      std::string::npos);
  EXPECT_NE(select_files(listing({"config.json", "model.safetensors"}), "o/m", "Q4").problem, "");
  // Both a folder and GGUF files: the folder, or the GGUF a tag names.
  const auto both = listing({"config.json", "model.safetensors", "m-Q4_K_M.gguf"});
  EXPECT_EQ(select_files(both, "o/m", "").kind, RepoKind::TRANSFORMERS);
  EXPECT_EQ(select_files(both, "o/m", "Q4_K_M").files, std::vector<std::string>{"m-Q4_K_M.gguf"});
}

TEST(HubFileSelection, WhisperCppAndDiffusers) {
  const auto whisper = listing({"ggml-tiny.bin", "ggml-base.en.bin", "README.md"});
  EXPECT_EQ(select_files(whisper, "g/w", "BASE.EN").files,
            std::vector<std::string>{"ggml-base.en.bin"});
  EXPECT_NE(select_files(whisper, "g/w", "").problem.find("tiny"), std::string::npos);
  const auto diffusers = select_files(
      listing({"model_index.json", "unet/config.json", "unet/diffusion_pytorch_model.safetensors",
               "unet/diffusion_pytorch_model.fp16.safetensors", "unet/diffusion_pytorch_model.bin",
               "vae/config.json", "vae/diffusion_pytorch_model.safetensors",
               "text_encoder/config.json", "text_encoder/model.safetensors", "tokenizer/vocab.json",
               "tokenizer/merges.txt", "scheduler/scheduler_config.json",
               "safety_checker/model.safetensors", "v1-5-pruned.safetensors"}),
      "r/sd", "");
  EXPECT_EQ(diffusers.problem, "");
  EXPECT_EQ(diffusers.kind, RepoKind::DIFFUSERS);
  for (const char* skipped :
       {"unet/diffusion_pytorch_model.fp16.safetensors", "unet/diffusion_pytorch_model.bin",
        "safety_checker/model.safetensors", "v1-5-pruned.safetensors"}) {
    EXPECT_EQ(std::count(diffusers.files.begin(), diffusers.files.end(), skipped), 0) << skipped;
  }
  EXPECT_EQ(diffusers.files.size(), 10u);
  EXPECT_EQ(select_files(listing({"sd.safetensors"}), "r/sd", "").files,
            std::vector<std::string>{"sd.safetensors"});
}

TEST(HubFileSelection, RefusesTransformersWhisperAndUnknownArchitectures) {
  const auto whisper =
      config_refusal(nlohmann::json{{"model_type", "whisper"}}, "openai/whisper-base.en", {});
  EXPECT_NE(whisper.find("ggerganov/whisper.cpp:base.en"), std::string::npos);
  EXPECT_EQ(config_refusal(nlohmann::json{{"model_type", "llama"}}, "o/m", {"llama", "qwen3"}), "");
  EXPECT_NE(config_refusal(nlohmann::json{{"model_type", "mamba"}}, "o/m", {"llama"}), "");
  EXPECT_NE(config_refusal(nlohmann::json::array(), "o/m", {}), "");
}

TEST(HubSha256, KnownDigests) {
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  const fs::path file = fs::temp_directory_path() / "allm-hub-sha256-test";
  std::ofstream(file) << "abc";
  EXPECT_EQ(sha256_file_hex(file), sha256_hex("abc"));
  fs::remove(file);
  EXPECT_EQ(sha256_file_hex(file), "");
  EXPECT_TRUE(is_sha256_hex(sha256_hex("")));
  EXPECT_FALSE(is_sha256_hex(std::string(40, 'a')));
}

TEST(HubHeaders, EtagsUrlsAndModelInfo) {
  EXPECT_EQ(normalize_etag("W/\"abc\""), "abc");
  EXPECT_EQ(normalize_etag("\"abc\""), "abc");
  std::string origin, path;
  ASSERT_TRUE(split_url("https://cdn.example:8443/a/b?x=1", &origin, &path));
  EXPECT_EQ(origin, "https://cdn.example:8443");
  EXPECT_EQ(path, "/a/b?x=1");
  EXPECT_FALSE(split_url("ftp://x/y", &origin, &path));
  EXPECT_EQ(url_encode("refs/pr/1", false), "refs%2Fpr%2F1");
  EXPECT_EQ(url_encode("unet/a b.json", true), "unet/a%20b.json");
  RepoInfo info;
  const std::string commit(40, 'c');
  EXPECT_EQ(parse_repo_info(
                R"({"sha":")" + commit + R"(","siblings":[{"rfilename":"config.json","size":12},
      {"rfilename":"model.safetensors","lfs":{"sha256":"ab","size":99}},
      {"rfilename":"../escape"},{"nope":1}]})",
                &info),
            "");
  EXPECT_EQ(info.commit, commit);
  ASSERT_EQ(info.files.size(), 2u);
  EXPECT_EQ(info.files[0].size, 12u);
  EXPECT_EQ(info.files[1].lfs_sha256, "ab");
  EXPECT_EQ(info.files[1].size, 99u);
  EXPECT_NE(parse_repo_info("not json", &info), "");
  EXPECT_NE(parse_repo_info(R"({"sha":"../../escape"})", &info), "");
}

TEST(HubCacheLayout, LinksAndRemovesKeepingSharedBlobs) {
  const fs::path root = fs::temp_directory_path() / "allm-hub-cache-test";
  fs::remove_all(root);
  HubCache cache(root);
  const std::string repo = "o/m", a(40, 'a'), b(40, 'b');
  fs::create_directories(cache.blob_path(repo, "x").parent_path());
  for (const char* blob : {"shared", "only-a", "only-b"})
    std::ofstream(cache.blob_path(repo, blob)) << blob;
  ASSERT_EQ(cache.link_snapshot_file(repo, a, "config.json", "shared"), "");
  ASSERT_EQ(cache.link_snapshot_file(repo, a, "unet/w.safetensors", "only-a"), "");
  ASSERT_EQ(cache.link_snapshot_file(repo, b, "config.json", "shared"), "");
  ASSERT_EQ(cache.link_snapshot_file(repo, b, "w.safetensors", "only-b"), "");
  ASSERT_EQ(cache.write_ref(repo, "main", b), "");
  EXPECT_EQ(fs::read_symlink(cache.snapshot_dir(repo, a) / "unet/w.safetensors").string(),
            "../../../blobs/only-a");
  EXPECT_EQ(*cache.resolve_revision(repo, "main"), b);
  auto cached = cache.find(repo);
  ASSERT_TRUE(cached);
  EXPECT_EQ(cached->default_commit, b);
  uint64_t freed = 0;
  ASSERT_EQ(cache.remove(repo, a, {}, &freed), "");
  EXPECT_FALSE(fs::exists(cache.snapshot_dir(repo, a)));
  EXPECT_TRUE(fs::exists(cache.blob_path(repo, "shared")));
  EXPECT_FALSE(fs::exists(cache.blob_path(repo, "only-a")));
  EXPECT_EQ(freed, 6u);
  ASSERT_EQ(cache.remove(repo, b, {}, &freed), "");
  EXPECT_FALSE(fs::exists(cache.repo_dir(repo)));
  fs::remove_all(root);
}

TEST(HubCacheModels, RegistryIdsForCachedRepos) {
  const fs::path root = fs::temp_directory_path() / "allm-hub-registry-test";
  fs::remove_all(root);
  HubCache cache(root);
  const std::string commit(40, 'c');
  auto place = [&](const std::string& repo, const std::string& file) {
    fs::create_directories(cache.blob_path(repo, "x").parent_path());
    std::ofstream(cache.blob_path(repo, file.substr(0, file.find('/')) + "-blob")) << file;
    ASSERT_EQ(
        cache.link_snapshot_file(repo, commit, file, file.substr(0, file.find('/')) + "-blob"), "");
  };
  for (const char* file : {"m-Q4_K_M.gguf", "m-Q8_0.gguf"}) place("o/m-GGUF", file);
  for (const char* file : {"config.json", "model.safetensors"}) place("o/m", file);
  place("ggerganov/whisper.cpp", "ggml-tiny.bin");
  ModelRegistry registry(root / "no-models-dir", {}, Quantization::NONE, root);
  std::vector<std::string> ids;
  for (const auto& entry : registry.list()) ids.push_back(entry.id);
  EXPECT_EQ(ids, (std::vector<std::string>{"ggerganov/whisper.cpp", "ggerganov/whisper.cpp:tiny",
                                           "o/m", "o/m-GGUF", "o/m-GGUF:Q4_K_M", "o/m-GGUF:Q8_0"}));
  auto gguf = registry.find("o/m-GGUF");
  ASSERT_TRUE(gguf);
  EXPECT_EQ(gguf->path.filename(), "m-Q4_K_M.gguf");
  EXPECT_EQ(registry.find("ggerganov/whisper.cpp:tiny")->modality, Modality::AUDIO);
  EXPECT_EQ(registry.find("o/m")->path, cache.snapshot_dir("o/m", commit));
  fs::remove_all(root);
}
