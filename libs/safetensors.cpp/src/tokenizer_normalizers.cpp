// Normalizers (text -> text before pre-tokenization) and post-processors (special tokens
// around the encoded ids).
#include "tokenizer_components.h"
#include "tokenizer_unicode.h"

namespace stcpp::tok {

namespace {

class UnicodeForm : public Normalizer {
 public:
  explicit UnicodeForm(unicode::Form form) : form_(form) {}
  std::string normalize(const std::string& text) const override {
    return unicode::normalize(text, form_);
  }

 private:
  unicode::Form form_;
};

class Lowercase : public Normalizer {
 public:
  std::string normalize(const std::string& text) const override { return unicode::to_lower(text); }
};

class Strip : public Normalizer {
 public:
  explicit Strip(const json& j)
      : left_(json_bool(j, "strip_left", true, "Strip normalizer")),
        right_(json_bool(j, "strip_right", true, "Strip normalizer")) {}
  std::string normalize(const std::string& text) const override {
    std::vector<uint32_t> cps = unicode::decode_utf8(text);
    size_t begin = 0, end = cps.size();
    while (left_ && begin < end && unicode::is_whitespace(cps[begin])) ++begin;
    while (right_ && end > begin && unicode::is_whitespace(cps[end - 1])) --end;
    return unicode::encode_utf8({cps.begin() + begin, cps.begin() + end});
  }

 private:
  bool left_, right_;
};

class Replace : public Normalizer {
 public:
  explicit Replace(const json& j)
      : regex_(pattern_of(j.value("pattern", json()), "Replace normalizer"), "Replace normalizer"),
        content_(json_string(j, "content", "", "Replace normalizer")) {}
  std::string normalize(const std::string& text) const override {
    std::string out;
    size_t prev = 0;
    for (auto [begin, end] : regex_.find_all(text)) {
      if (end == begin) continue;
      out.append(text, prev, begin - prev);
      out += content_;
      prev = end;
    }
    out.append(text, prev, std::string::npos);
    return out;
  }

 private:
  Regex regex_;
  std::string content_;
};

class Prepend : public Normalizer {
 public:
  explicit Prepend(const json& j) : prefix_(json_string(j, "prepend", "", "Prepend normalizer")) {}
  std::string normalize(const std::string& text) const override {
    return text.empty() ? text : prefix_ + text;
  }

 private:
  std::string prefix_;
};

class SequenceNorm : public Normalizer {
 public:
  explicit SequenceNorm(const json& j) {
    auto it = j.find("normalizers");
    if (it == j.end() || !it->is_array())
      throw ComponentError("Sequence normalizer: 'normalizers' is not an array");
    for (const json& child : *it)
      if (auto made = make_normalizer(child)) steps_.push_back(std::move(made));
  }
  std::string normalize(const std::string& text) const override {
    std::string out = text;
    for (const auto& step : steps_) out = step->normalize(out);
    return out;
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> steps_;
};

// A post-processor whose output is the input (ByteLevel only adjusts offsets).
class Identity : public PostProcessor {
 public:
  std::vector<int32_t> process(std::vector<int32_t> ids) const override { return ids; }
};

class Template : public PostProcessor {
 public:
  explicit Template(const json& j) {
    const char* c = "TemplateProcessing post-processor";
    auto single = j.find("single");
    if (single == j.end() || !single->is_array())
      throw ComponentError(std::string(c) + ": no 'single'");
    const json specials = j.value("special_tokens", json::object());
    for (const json& item : *single) {
      if (item.contains("Sequence")) {
        items_.push_back({});  // an empty list stands for the sequence itself
        continue;
      }
      const json& special = item.value("SpecialToken", json());
      const std::string name = special.is_object() ? json_string(special, "id", "", c) : "";
      if (!specials.contains(name) || !specials[name].contains("ids") ||
          !specials[name]["ids"].is_array())
        throw ComponentError(std::string(c) + ": special token '" + name + "' has no ids");
      items_.push_back(specials[name]["ids"].get<std::vector<int32_t>>());
    }
  }
  std::vector<int32_t> process(std::vector<int32_t> ids) const override {
    std::vector<int32_t> out;
    for (const auto& item : items_) {
      const auto& part = item.empty() ? ids : item;
      out.insert(out.end(), part.begin(), part.end());
    }
    return out;
  }

 private:
  std::vector<std::vector<int32_t>> items_;
};

// BertProcessing / RobertaProcessing: [cls] A [sep].
class ClsSep : public PostProcessor {
 public:
  explicit ClsSep(const json& j, const char* c)
      : cls_(id_of(j, "cls", c)), sep_(id_of(j, "sep", c)) {}
  std::vector<int32_t> process(std::vector<int32_t> ids) const override {
    ids.insert(ids.begin(), cls_);
    ids.push_back(sep_);
    return ids;
  }

 private:
  static int32_t id_of(const json& j, const char* key, const char* c) {
    auto it = j.find(key);
    if (it == j.end() || !it->is_array() || it->size() != 2 || !(*it)[1].is_number_integer())
      throw ComponentError(std::string(c) + ": '" + key + "' is not [token, id]");
    return (*it)[1].get<int32_t>();
  }
  int32_t cls_, sep_;
};

class SequencePost : public PostProcessor {
 public:
  explicit SequencePost(const json& j) {
    auto it = j.find("processors");
    if (it == j.end() || !it->is_array())
      throw ComponentError("Sequence post-processor: 'processors' is not an array");
    for (const json& child : *it)
      if (auto made = make_post_processor(child)) steps_.push_back(std::move(made));
  }
  std::vector<int32_t> process(std::vector<int32_t> ids) const override {
    for (const auto& step : steps_) ids = step->process(std::move(ids));
    return ids;
  }

 private:
  std::vector<std::unique_ptr<PostProcessor>> steps_;
};

std::string type_of(const json& j, const char* what) {
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string())
    throw ComponentError(std::string(what) + ": not an object with a 'type'");
  return j["type"].get<std::string>();
}

}  // namespace

std::unique_ptr<Normalizer> make_normalizer(const json& j) {
  if (j.is_null()) return nullptr;
  const std::string type = type_of(j, "normalizer");
  if (type == "NFC") return std::make_unique<UnicodeForm>(unicode::Form::NFC);
  if (type == "NFD") return std::make_unique<UnicodeForm>(unicode::Form::NFD);
  if (type == "NFKC") return std::make_unique<UnicodeForm>(unicode::Form::NFKC);
  if (type == "NFKD") return std::make_unique<UnicodeForm>(unicode::Form::NFKD);
  if (type == "Lowercase") return std::make_unique<Lowercase>();
  if (type == "Strip") return std::make_unique<Strip>(j);
  if (type == "Replace") return std::make_unique<Replace>(j);
  if (type == "Prepend") return std::make_unique<Prepend>(j);
  if (type == "Sequence") return std::make_unique<SequenceNorm>(j);
  throw ComponentError("normalizer: unsupported type '" + type + "'");
}

std::unique_ptr<PostProcessor> make_post_processor(const json& j) {
  if (j.is_null()) return nullptr;
  const std::string type = type_of(j, "post-processor");
  if (type == "ByteLevel") return std::make_unique<Identity>();
  if (type == "TemplateProcessing") return std::make_unique<Template>(j);
  if (type == "BertProcessing") return std::make_unique<ClsSep>(j, "BertProcessing post-processor");
  if (type == "RobertaProcessing")
    return std::make_unique<ClsSep>(j, "RobertaProcessing post-processor");
  if (type == "Sequence") return std::make_unique<SequencePost>(j);
  throw ComponentError("post-processor: unsupported type '" + type + "'");
}

}  // namespace stcpp::tok
