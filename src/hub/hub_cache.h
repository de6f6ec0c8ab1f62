// The Hugging Face Hub cache, laid out as huggingface_hub lays it out, so that both read what
// either wrote:
//   models--ORG--NAME/blobs/<etag>            file contents, named by their ETag (LFS: sha256)
//   models--ORG--NAME/snapshots/<commit>/<p>  relative symlinks to ../../blobs/<etag>
//   models--ORG--NAME/refs/<revision>         the commit a branch or tag pointed to
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace allm {

struct CachedRepo {
  std::string repo;                         // "ORG/NAME"
  std::filesystem::path dir;                // models--ORG--NAME
  std::map<std::string, std::string> refs;  // revision → commit
  std::vector<std::string> snapshots;       // commits with a snapshots/ folder
  // The snapshot a bare ORG/NAME means: refs/main's, else the newest one; "" when none.
  std::string default_commit;
};

class HubCache {
 public:
  explicit HubCache(std::filesystem::path root) : root_(std::move(root)) {}
  const std::filesystem::path& root() const { return root_; }

  std::filesystem::path repo_dir(const std::string& repo) const;
  std::filesystem::path blob_path(const std::string& repo, const std::string& etag) const;
  std::filesystem::path snapshot_dir(const std::string& repo, const std::string& commit) const;

  // The commit `revision` names: itself when a commit hash, else refs/<revision>.
  std::optional<std::string> resolve_revision(const std::string& repo,
                                              const std::string& revision) const;
  // These return "" on success, else what failed.
  std::string write_ref(const std::string& repo, const std::string& revision,
                        const std::string& commit) const;
  // snapshots/<commit>/<file> → the blob: a relative symlink, a copy where links fail.
  std::string link_snapshot_file(const std::string& repo, const std::string& commit,
                                 const std::string& file, const std::string& etag) const;

  std::vector<CachedRepo> list() const;
  std::optional<CachedRepo> find(const std::string& repo) const;
  // The files of a snapshot, as repo paths ("unet/config.json").
  std::vector<std::string> snapshot_files(const std::string& repo, const std::string& commit) const;

  // Removes `files` of the snapshot (all of it when empty), the refs to a snapshot that is gone,
  // and the blobs no remaining snapshot links to. Adds the bytes freed to *freed.
  std::string remove(const std::string& repo, const std::string& commit,
                     const std::vector<std::string>& files, uint64_t* freed) const;

 private:
  std::filesystem::path root_;
};

// Bytes on disk of `path` (a file, or a folder with links followed once): what `allm ls` shows.
uint64_t disk_size(const std::filesystem::path& path);

}  // namespace allm
