// The Hub's HTTP protocol: the model info endpoint, and file downloads through `resolve` URLs
// that redirect to a CDN, resumable with Range.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "hub/file_selection.h"
#include "hub/hub_settings.h"

namespace httplib {
struct Response;
}

namespace allm {

struct RepoInfo {
  std::string commit;          // the revision's commit ("sha")
  std::vector<HubFile> files;  // its "siblings"
};

// What a HEAD of resolve/{revision}/{file} tells.
struct FileHead {
  std::string commit;    // X-Repo-Commit
  std::string etag;      // X-Linked-Etag (LFS: its sha256), else ETag; quotes and W/ removed
  uint64_t size = 0;     // X-Linked-Size, else Content-Length
  std::string location;  // where the contents are (a CDN URL), or the resolve URL itself
};

// `scheme://host[:port]` and the path of a URL; false when it is not http(s).
bool split_url(const std::string& url, std::string* origin, std::string* path);
// ETag header → blob name: `W/"abc"` → `abc`.
std::string normalize_etag(const std::string& etag);
// Percent-encodes a repo path or revision for a URL (keeping '/' when `keep_slash`).
std::string url_encode(const std::string& text, bool keep_slash);
// Parses the model info JSON; "" or what is wrong with it.
std::string parse_repo_info(const std::string& body, RepoInfo* info);

class HubClient {
 public:
  explicit HubClient(HubSettings settings) : settings_(std::move(settings)) {}

  // These return "" on success, else a message for the user.
  std::string repo_info(const std::string& repo, const std::string& revision, RepoInfo* info) const;
  std::string head_file(const std::string& repo, const std::string& commit, const std::string& file,
                        FileHead* head) const;
  // Downloads `head.location` into `partial`, resuming after the bytes already there;
  // `progress(bytes_so_far, total)` as they come.
  using Progress = std::function<void(uint64_t, uint64_t)>;
  std::string download(const std::string& repo, const FileHead& head,
                       const std::filesystem::path& partial, const Progress& progress) const;

 private:
  std::string http_problem(const std::string& repo, const httplib::Response& response,
                           const std::string& what) const;

  HubSettings settings_;
};

}  // namespace allm
