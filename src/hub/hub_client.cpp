#include "hub/hub_client.h"

#include <httplib.h>

#include <cctype>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>

#include "hub/repo_spec.h"

namespace allm {

namespace fs = std::filesystem;

// A resolve URL redirects to the CDN once, and a renamed repo once more; a loop is an error.
static constexpr int kMaxRedirects = 5;
static constexpr size_t kMaxInfoBytes = 64 << 20;  // the file list of a very large repo

bool split_url(const std::string& url, std::string* origin, std::string* path) {
  const size_t scheme_end = url.find("://");
  if (scheme_end == std::string::npos) return false;
  const std::string scheme = url.substr(0, scheme_end);
  if (scheme != "http" && scheme != "https") return false;
  const size_t path_start = url.find('/', scheme_end + 3);
  *origin = url.substr(0, path_start);
  *path = path_start == std::string::npos ? "/" : url.substr(path_start);
  return origin->size() > scheme_end + 3;
}

std::string normalize_etag(const std::string& etag) {
  std::string out = etag;
  if (out.rfind("W/", 0) == 0) out = out.substr(2);
  if (out.size() >= 2 && out.front() == '"' && out.back() == '"')
    out = out.substr(1, out.size() - 2);
  return out;
}

std::string url_encode(const std::string& text, bool keep_slash) {
  static const char digits[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' ||
        (keep_slash && c == '/')) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += digits[c >> 4];
      out += digits[c & 15];
    }
  }
  return out;
}

std::string parse_repo_info(const std::string& body, RepoInfo* info) {
  const auto json = nlohmann::json::parse(body, nullptr, false);
  if (!json.is_object() || !json.contains("sha") || !json["sha"].is_string()) {
    return "the Hub's model info has no commit (\"sha\")";
  }
  info->commit = json["sha"].get<std::string>();
  // It names a folder of the cache.
  if (!is_commit_hash(info->commit))
    return "the Hub's model info names no commit: \"sha\" is '" + info->commit.substr(0, 64) + "'";
  const auto siblings = json.value("siblings", nlohmann::json::array());
  if (!siblings.is_array()) return "the Hub's model info has no file list (\"siblings\")";
  for (const auto& sibling : siblings) {
    if (!sibling.is_object() || !sibling.contains("rfilename") || !sibling["rfilename"].is_string())
      continue;
    HubFile file;
    file.path = sibling["rfilename"].get<std::string>();
    if (file.path.empty() || file.path[0] == '/' || file.path.find("..") != std::string::npos)
      continue;  // nothing that would land outside the snapshot
    if (sibling.contains("size") && sibling["size"].is_number_unsigned())
      file.size = sibling["size"].get<uint64_t>();
    const auto lfs = sibling.value("lfs", nlohmann::json::object());
    if (lfs.is_object() && lfs.contains("sha256") && lfs["sha256"].is_string()) {
      file.lfs_sha256 = lfs["sha256"].get<std::string>();
      if (lfs.contains("size") && lfs["size"].is_number_unsigned())
        file.size = lfs["size"].get<uint64_t>();
    }
    info->files.push_back(file);
  }
  return "";
}

static std::unique_ptr<httplib::Client> make_client(const std::string& origin) {
  auto client = std::make_unique<httplib::Client>(origin);
  client->set_connection_timeout(15);
  client->set_read_timeout(60);
  client->set_follow_location(false);  // redirects are followed here: the token stays home
  return client;
}

// The headers of a request to `origin`: the token only for the Hub itself, never the CDN.
static httplib::Headers auth_headers(const HubSettings& settings, const std::string& origin) {
  std::string hub_origin, path;
  split_url(settings.endpoint, &hub_origin, &path);
  httplib::Headers headers = {{"User-Agent", "allm"}};
  if (!settings.token.empty() && origin == hub_origin) {
    headers.emplace("Authorization", "Bearer " + settings.token);
  }
  return headers;
}

// A renamed repo's URLs redirect to the same host's new path; huggingface_hub follows those (and
// only those) before it reads the Hub's headers.
static bool is_renamed_repo_redirect(const httplib::Result& res) {
  return res && res->status >= 300 && res->status < 400 &&
         res->get_header_value("Location").rfind('/', 0) == 0;
}

static std::string connection_problem(const std::string& url, httplib::Error error) {
  return "cannot reach " + url + ": " + httplib::to_string(error) +
         " (set HF_HUB_OFFLINE=1 to use the cache only, HF_ENDPOINT for a mirror)";
}

// The Hub says why in X-Error-Code: RepoNotFound (also for private repos without a token),
// GatedRepo, RevisionNotFound, EntryNotFound.
std::string HubClient::http_problem(const std::string& repo, const httplib::Response& response,
                                    const std::string& what) const {
  const std::string code = response.get_header_value("X-Error-Code");
  const std::string status = std::to_string(response.status);
  const std::string token_hint =
      settings_.token.empty() ? " (no token was sent)" : " (the token sent was refused)";
  if (code == "RepoNotFound") {
    return "repository " + repo + " not found on " + settings_.endpoint + " (" + status +
           "); if it is private, set HF_TOKEN=hf_... or run `huggingface-cli login`" + token_hint;
  }
  if (response.status == 401 || response.status == 403) {
    return repo + " is gated or private (the Hub answered " + status + " for " + what +
           "): accept its terms on its Hub page, then give a token with read access: set "
           "HF_TOKEN=hf_... or run `huggingface-cli login`" +
           token_hint;
  }
  if (response.status == 404) return what + " not found on " + settings_.endpoint + " (404)";
  return "the Hub answered " + status + " for " + what;
}

std::string HubClient::repo_info(const std::string& repo, const std::string& revision,
                                 RepoInfo* info) const {
  std::string origin, base;
  if (!split_url(settings_.endpoint, &origin, &base)) return "HF_ENDPOINT is not an http(s) URL";
  if (base == "/") base.clear();
  std::string path =
      base + "/api/models/" + repo + "/revision/" + url_encode(revision, false) + "?blobs=true";
  auto client = make_client(origin);
  std::string body;
  httplib::Result res;
  for (int hop = 0; hop <= kMaxRedirects; ++hop) {
    body.clear();
    res = client->Get(path, auth_headers(settings_, origin), [&](const char* data, size_t size) {
      body.append(data, size);
      return body.size() <= kMaxInfoBytes;
    });
    if (!is_renamed_repo_redirect(res)) break;
    path = res->get_header_value("Location");
  }
  if (!res) return connection_problem(settings_.endpoint, res.error());
  if (res->status != 200) {
    return http_problem(repo, *res, "model " + repo + " at revision " + revision);
  }
  return parse_repo_info(body, info);
}

// Follows redirects from `url` with HEAD, keeping the Hub's headers of the first answer.
std::string HubClient::head_file(const std::string& repo, const std::string& commit,
                                 const std::string& file, FileHead* head) const {
  std::string url = settings_.endpoint + "/" + repo + "/resolve/" + url_encode(commit, false) +
                    "/" + url_encode(file, true);
  std::string origin, path;
  if (!split_url(url, &origin, &path)) return "HF_ENDPOINT is not an http(s) URL";
  auto client = make_client(origin);
  httplib::Result res;
  for (int hop = 0; hop <= kMaxRedirects; ++hop) {
    res = client->Head(path, auth_headers(settings_, origin));
    if (!is_renamed_repo_redirect(res)) break;
    path = res->get_header_value("Location");
  }
  if (!res) return connection_problem(url, res.error());
  if (res->status >= 400) return http_problem(repo, *res, file + " of " + repo);
  head->commit = res->get_header_value("X-Repo-Commit");
  head->etag =
      normalize_etag(res->has_header("X-Linked-Etag") ? res->get_header_value("X-Linked-Etag")
                                                      : res->get_header_value("ETag"));
  const std::string size = res->has_header("X-Linked-Size")
                               ? res->get_header_value("X-Linked-Size")
                               : res->get_header_value("Content-Length");
  head->size = std::strtoull(size.c_str(), nullptr, 10);
  head->location = url;
  if (res->status >= 300 && res->has_header("Location")) {
    const std::string location = res->get_header_value("Location");
    head->location = location[0] == '/' ? origin + location : location;
  }
  // It names a file of the cache: hex digits (a sha256 or git blob id) and little else.
  if (head->etag.empty() || head->etag.size() > 128 ||
      head->etag.find_first_not_of("0123456789abcdefABCDEF-_") != std::string::npos) {
    return "the Hub sent no usable ETag for " + file + " of " + repo;
  }
  return "";
}

std::string HubClient::download(const std::string& repo, const FileHead& head,
                                const fs::path& partial, const Progress& progress) const {
  std::string url = head.location;
  for (int hop = 0; hop <= kMaxRedirects; ++hop) {
    std::string origin, path;
    if (!split_url(url, &origin, &path)) return "bad download URL " + url;
    std::error_code ec;
    uint64_t have = fs::exists(partial, ec) ? fs::file_size(partial, ec) : 0;
    if (head.size && have == head.size) return "";  // a complete .incomplete: only renamed
    if (head.size && have > head.size) {            // not this file's start: begin again
      fs::remove(partial, ec);
      have = 0;
    }
    httplib::Headers headers = auth_headers(settings_, origin);
    if (have > 0) headers.emplace("Range", "bytes=" + std::to_string(have) + "-");
    auto client = make_client(origin);
    std::ofstream out;
    uint64_t written = have;
    std::string redirect;
    auto res = client->Get(
        path, headers,
        [&](const httplib::Response& response) {
          if (response.status >= 300 && response.status < 400) {
            redirect = response.get_header_value("Location");
            return false;
          }
          if (response.status != 200 && response.status != 206) return true;  // body ignored
          const bool resume = response.status == 206;
          if (!resume) written = 0;  // the server sent it all again
          out.open(partial, std::ios::binary | (resume ? std::ios::app : std::ios::trunc));
          return static_cast<bool>(out);
        },
        [&](const char* data, size_t size) {
          if (!out.is_open()) return true;
          out.write(data, static_cast<std::streamsize>(size));
          written += size;
          if (progress) progress(written, head.size);
          return static_cast<bool>(out);
        });
    out.close();
    if (!redirect.empty()) {
      url = redirect[0] == '/' ? origin + redirect : redirect;
      continue;
    }
    if (!res) {
      return "download of " + url + " stopped after " + std::to_string(written) + " bytes (" +
             httplib::to_string(res.error()) + "); run the same command again to resume";
    }
    if (res->status != 200 && res->status != 206) return http_problem(repo, *res, url);
    if (!out) return "cannot write " + partial.string();
    if (head.size && written != head.size) {
      return "download of " + url + " ended after " + std::to_string(written) + " of " +
             std::to_string(head.size) + " bytes; run the same command again to resume";
    }
    return "";
  }
  return "too many redirects from " + head.location;
}

}  // namespace allm
