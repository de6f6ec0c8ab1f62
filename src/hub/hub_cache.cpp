#include "hub/hub_cache.h"

#include <fstream>
#include <set>

#include "hub/repo_spec.h"

namespace allm {

namespace fs = std::filesystem;

// Repo files nest a few folders deep at most ("unet/config.json"); the walks stop well below.
static constexpr int kMaxDepth = 16;

fs::path HubCache::repo_dir(const std::string& repo) const {
  return root_ / repo_cache_folder(repo);
}

fs::path HubCache::blob_path(const std::string& repo, const std::string& etag) const {
  return repo_dir(repo) / "blobs" / etag;
}

fs::path HubCache::snapshot_dir(const std::string& repo, const std::string& commit) const {
  return repo_dir(repo) / "snapshots" / commit;
}

static std::string read_first_line(const fs::path& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r' || line.back() == ' ')) {
    line.pop_back();
  }
  return line;
}

std::optional<std::string> HubCache::resolve_revision(const std::string& repo,
                                                      const std::string& revision) const {
  if (is_commit_hash(revision)) return revision;
  const std::string commit = read_first_line(repo_dir(repo) / "refs" / revision);
  if (commit.empty()) return std::nullopt;
  return commit;
}

std::string HubCache::write_ref(const std::string& repo, const std::string& revision,
                                const std::string& commit) const {
  if (revision == commit) return "";
  const fs::path path = repo_dir(repo) / "refs" / revision;
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  std::ofstream out(path, std::ios::trunc);
  out << commit;
  out.close();
  return out ? "" : "cannot write " + path.string();
}

std::string HubCache::link_snapshot_file(const std::string& repo, const std::string& commit,
                                         const std::string& file, const std::string& etag) const {
  const fs::path link = snapshot_dir(repo, commit) / file;
  const fs::path blob = blob_path(repo, etag);
  std::error_code ec;
  fs::create_directories(link.parent_path(), ec);
  fs::remove(link, ec);
  fs::create_symlink(blob.lexically_relative(link.parent_path()), link, ec);
  if (ec) {
    ec.clear();
    fs::copy_file(blob, link, fs::copy_options::overwrite_existing, ec);
  }
  return ec ? "cannot place " + link.string() + ": " + ec.message() : "";
}

std::vector<std::string> HubCache::snapshot_files(const std::string& repo,
                                                  const std::string& commit) const {
  std::vector<std::string> files;
  const fs::path dir = snapshot_dir(repo, commit);
  std::error_code ec;
  fs::recursive_directory_iterator it(dir, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    if (it.depth() >= kMaxDepth) it.disable_recursion_pending();
    if (!it->is_directory(ec)) files.push_back(it->path().lexically_relative(dir).generic_string());
  }
  return files;
}

static std::vector<std::string> subfolders(const fs::path& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.is_directory(ec)) names.push_back(entry.path().filename().string());
  }
  return names;
}

static std::map<std::string, std::string> read_refs(const fs::path& refs_dir) {
  std::map<std::string, std::string> refs;
  std::error_code ec;
  fs::recursive_directory_iterator it(refs_dir, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    if (it.depth() >= kMaxDepth) it.disable_recursion_pending();
    if (it->is_regular_file(ec)) {
      refs[it->path().lexically_relative(refs_dir).generic_string()] = read_first_line(it->path());
    }
  }
  return refs;
}

std::optional<CachedRepo> HubCache::find(const std::string& repo) const {
  CachedRepo cached;
  cached.repo = repo;
  cached.dir = repo_dir(repo);
  cached.snapshots = subfolders(cached.dir / "snapshots");
  if (cached.snapshots.empty()) return std::nullopt;
  cached.refs = read_refs(cached.dir / "refs");
  auto main = cached.refs.find("main");
  std::error_code ec;
  if (main != cached.refs.end() && fs::is_directory(snapshot_dir(repo, main->second), ec)) {
    cached.default_commit = main->second;
  } else {
    fs::file_time_type newest{};
    for (const auto& commit : cached.snapshots) {
      const auto time = fs::last_write_time(snapshot_dir(repo, commit), ec);
      if (cached.default_commit.empty() || time > newest) {
        newest = time;
        cached.default_commit = commit;
      }
    }
  }
  return cached;
}

std::vector<CachedRepo> HubCache::list() const {
  std::vector<CachedRepo> repos;
  for (const auto& folder : subfolders(root_)) {
    const std::string repo = repo_from_cache_folder(folder);
    if (repo.empty()) continue;
    if (auto cached = find(repo)) repos.push_back(*cached);
  }
  return repos;
}

// The blobs the snapshots' links point to (by file name: the etag).
static std::set<std::string> linked_blobs(const fs::path& snapshots_dir) {
  std::set<std::string> blobs;
  std::error_code ec;
  fs::recursive_directory_iterator it(snapshots_dir, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    if (it.depth() >= kMaxDepth) it.disable_recursion_pending();
    if (it->is_symlink(ec)) blobs.insert(fs::read_symlink(it->path(), ec).filename().string());
  }
  return blobs;
}

// Removes the now-empty folders of a snapshot, deepest first.
static void remove_empty_folders(const fs::path& dir) {
  std::vector<fs::path> folders;
  std::error_code ec;
  fs::recursive_directory_iterator it(dir, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    if (it.depth() >= kMaxDepth) it.disable_recursion_pending();
    if (it->is_directory(ec) && !it->is_symlink(ec)) folders.push_back(it->path());
  }
  for (auto f = folders.rbegin(); f != folders.rend(); ++f) fs::remove(*f, ec);  // only if empty
  fs::remove(dir, ec);
}

std::string HubCache::remove(const std::string& repo, const std::string& commit,
                             const std::vector<std::string>& files, uint64_t* freed) const {
  const fs::path snapshot = snapshot_dir(repo, commit);
  std::error_code ec;
  if (!fs::is_directory(snapshot, ec)) return repo + " has no snapshot " + commit + " in the cache";
  for (const auto& file : files.empty() ? snapshot_files(repo, commit) : files) {
    if (file.find("..") != std::string::npos) return "bad file name " + file;
    const fs::path path = snapshot / file;
    if (!fs::is_symlink(path, ec)) *freed += fs::file_size(path, ec);  // a copy, not a link
    fs::remove(path, ec);
    if (ec) return "cannot remove " + path.string() + ": " + ec.message();
  }
  remove_empty_folders(snapshot);
  const fs::path dir = repo_dir(repo);
  if (!fs::exists(snapshot, ec)) {
    for (const auto& [revision, target] : read_refs(dir / "refs")) {
      if (target == commit) fs::remove(dir / "refs" / revision, ec);
    }
  }
  const std::set<std::string> kept = linked_blobs(dir / "snapshots");
  for (const auto& entry : fs::directory_iterator(dir / "blobs", ec)) {
    if (kept.count(entry.path().filename().string())) continue;
    *freed += entry.file_size(ec);
    fs::remove(entry.path(), ec);
  }
  if (subfolders(dir / "snapshots").empty()) fs::remove_all(dir, ec);
  return "";
}

uint64_t disk_size(const fs::path& path) {
  std::error_code ec;
  if (!fs::is_directory(path, ec)) {
    const uintmax_t size = fs::file_size(path, ec);
    return ec ? 0 : size;
  }
  uint64_t total = 0;
  fs::recursive_directory_iterator it(path, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    if (it.depth() >= kMaxDepth) it.disable_recursion_pending();
    if (it->is_regular_file(ec)) total += it->file_size(ec);  // follows a link to its blob
  }
  return total;
}

}  // namespace allm
