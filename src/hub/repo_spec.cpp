#include "hub/repo_spec.h"

#include <cctype>

namespace allm {

static bool is_name_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
}

// One part of a repo id (or a quant tag): name characters only, not starting with '.' or '-',
// no "..", at most 96 characters as the Hub allows.
static bool is_name(const std::string& part) {
  if (part.empty() || part.size() > 96 || part[0] == '.' || part[0] == '-') return false;
  if (part.find("..") != std::string::npos) return false;
  for (char c : part) {
    if (!is_name_char(c)) return false;
  }
  return true;
}

bool is_repo_id(const std::string& text) {
  const size_t slash = text.find('/');
  if (slash == std::string::npos) return false;
  return is_name(text.substr(0, slash)) && is_name(text.substr(slash + 1));
}

// Branch and tag names may hold '/' ("refs/pr/1"); nothing that escapes a folder.
static bool is_revision(const std::string& text) {
  if (text.empty() || text.size() > 255 || text[0] == '/' || text.back() == '/') return false;
  if (text.find("..") != std::string::npos || text.find("//") != std::string::npos) return false;
  for (char c : text) {
    if (!is_name_char(c) && c != '/') return false;
  }
  return true;
}

std::optional<RepoSpec> parse_repo_spec(const std::string& text, std::string* problem) {
  RepoSpec spec;
  std::string rest = text;
  const size_t colon = rest.find(':');
  if (colon != std::string::npos) {
    spec.quant = rest.substr(colon + 1);
    rest.resize(colon);
    if (!is_name(spec.quant)) {
      *problem = "bad quant tag '" + spec.quant + "' in '" + text + "' (e.g. Q4_K_M)";
      return std::nullopt;
    }
  }
  const size_t at = rest.find('@');
  if (at != std::string::npos) {
    spec.revision = rest.substr(at + 1);
    rest.resize(at);
    if (!is_revision(spec.revision)) {
      *problem = "bad revision '" + spec.revision + "' in '" + text + "'";
      return std::nullopt;
    }
  }
  if (!is_repo_id(rest)) {
    *problem = "expected ORG/NAME[@REVISION][:QUANT], got '" + text + "'";
    return std::nullopt;
  }
  spec.repo = rest;
  return spec;
}

std::string repo_cache_folder(const std::string& repo) {
  std::string folder = "models--";
  for (char c : repo) {
    if (c == '/') {
      folder += "--";
    } else {
      folder += c;
    }
  }
  return folder;
}

std::string repo_from_cache_folder(const std::string& folder) {
  const std::string prefix = "models--";
  if (folder.compare(0, prefix.size(), prefix) != 0) return "";
  const std::string rest = folder.substr(prefix.size());
  const size_t sep = rest.find("--");
  if (sep == std::string::npos) return "";
  std::string repo = rest.substr(0, sep) + "/" + rest.substr(sep + 2);
  return is_repo_id(repo) ? repo : "";
}

bool is_commit_hash(const std::string& text) {
  if (text.size() != 40) return false;
  for (char c : text) {
    if (!std::isxdigit(static_cast<unsigned char>(c)) ||
        std::isupper(static_cast<unsigned char>(c)))
      return false;
  }
  return true;
}

}  // namespace allm
