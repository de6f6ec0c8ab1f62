#include "hub/pull.h"

#include <fstream>
#include <nlohmann/json.hpp>

#include "hub/file_selection.h"
#include "hub/hub_cache.h"
#include "hub/hub_client.h"
#include "hub/sha256.h"

namespace allm {

namespace fs = std::filesystem;

namespace {

// The files of the cached snapshot `commit` that the model needs; "" or why they are not all there.
std::string select_cached(const HubCache& cache, const RepoSpec& spec, const std::string& commit,
                          std::vector<std::string>* files) {
  const std::vector<HubFile> present = files_at(cache.snapshot_files(spec.repo, commit));
  if (present.empty()) return spec.repo + " at " + spec.revision + " is not in the cache";
  FileSelection selection = select_files(present, spec.repo, spec.quant);
  if (!selection.problem.empty()) return selection.problem;
  *files = selection.files;
  return "";
}

class Puller {
 public:
  Puller(const HubSettings& settings, const RepoSpec& spec, PullObserver& observer)
      : cache_(settings.cache_dir), client_(settings), spec_(spec), observer_(observer) {}

  PullResult run(const std::vector<std::string>& supported_model_types) {
    RepoInfo info;
    if ((result_.error = client_.repo_info(spec_.repo, spec_.revision, &info)) != "")
      return result_;
    result_.commit = info.commit;
    const FileSelection selection = select_files(info.files, spec_.repo, spec_.quant);
    if (!selection.problem.empty()) return fail(selection.problem);
    std::vector<std::string> etags;
    for (const auto& file : selection.files) {
      std::string etag;
      if (!fetch_blob(info, file, &etag)) return result_;
      etags.push_back(etag);
      if (file == "config.json" && selection.kind == RepoKind::TRANSFORMERS) {
        const std::string refusal = check_config(etag, supported_model_types);
        if (!refusal.empty()) return fail(refusal);
      }
    }
    // Only a complete, verified model lands in snapshots/.
    for (size_t i = 0; i < etags.size(); ++i) {
      if (etags[i].empty()) continue;  // already in the snapshot
      const std::string problem =
          cache_.link_snapshot_file(spec_.repo, info.commit, selection.files[i], etags[i]);
      if (!problem.empty()) return fail(problem);
    }
    const std::string problem = cache_.write_ref(spec_.repo, spec_.revision, info.commit);
    if (!problem.empty()) return fail(problem);
    result_.snapshot = cache_.snapshot_dir(spec_.repo, info.commit);
    result_.files = selection.files;
    return result_;
  }

 private:
  PullResult fail(std::string error) {
    result_.error = std::move(error);
    return result_;
  }

  const HubFile* listed(const RepoInfo& info, const std::string& file) {
    for (const auto& f : info.files) {
      if (f.path == file) return &f;
    }
    return nullptr;
  }

  // Puts `file` in blobs/ (unless the snapshot has it: then *etag stays ""). False on failure.
  bool fetch_blob(const RepoInfo& info, const std::string& file, std::string* etag) {
    std::error_code ec;
    const HubFile* entry = listed(info, file);
    const uint64_t listed_size = entry ? entry->size : 0;
    if (fs::exists(cache_.snapshot_dir(spec_.repo, info.commit) / file, ec)) {
      observer_.file_done(file, listed_size, false);
      return true;
    }
    FileHead head;
    if ((result_.error = client_.head_file(spec_.repo, info.commit, file, &head)) != "")
      return false;
    *etag = head.etag;
    const fs::path blob = cache_.blob_path(spec_.repo, head.etag);
    if (fs::exists(blob, ec)) {
      observer_.file_done(file, head.size, false);
      return true;
    }
    fs::create_directories(blob.parent_path(), ec);
    const fs::path partial = blob.string() + ".incomplete";
    const uint64_t resumed_from = fs::exists(partial, ec) ? fs::file_size(partial, ec) : 0;
    observer_.file_started(file, head.size);
    result_.error = client_.download(
        spec_.repo, head, partial,
        [this](uint64_t done, uint64_t total) { observer_.file_progress(done, total); });
    if (!result_.error.empty()) return false;
    // The listed LFS oid, else the X-Linked-Etag of an LFS file (its sha256 too).
    const std::string expected = entry && !entry->lfs_sha256.empty() ? entry->lfs_sha256
                                 : is_sha256_hex(head.etag)          ? head.etag
                                                                     : "";
    if (!expected.empty()) {
      const std::string actual = sha256_file_hex(partial);
      if (actual != expected) {
        fs::remove(partial, ec);
        result_.error = file + " of " + spec_.repo + " is corrupt: its sha256 is " + actual +
                        ", the Hub lists " + expected + " (the download was discarded; try again)";
        return false;
      }
    }
    fs::rename(partial, blob, ec);
    if (ec) {
      result_.error = "cannot move " + partial.string() + " into place: " + ec.message();
      return false;
    }
    const uint64_t size = fs::file_size(blob, ec);
    result_.downloaded_bytes += size - resumed_from;
    observer_.file_done(file, size, true);
    return true;
  }

  std::string check_config(const std::string& etag, const std::vector<std::string>& supported) {
    const fs::path path = etag.empty()
                              ? cache_.snapshot_dir(spec_.repo, result_.commit) / "config.json"
                              : cache_.blob_path(spec_.repo, etag);
    std::ifstream in(path);
    const auto config = nlohmann::json::parse(in, nullptr, false);
    return config_refusal(config, spec_.repo, supported);
  }

  HubCache cache_;
  HubClient client_;
  RepoSpec spec_;
  PullObserver& observer_;
  PullResult result_;
};

}  // namespace

PullResult pull_model(const HubSettings& settings, const RepoSpec& spec,
                      const std::vector<std::string>& supported_model_types,
                      PullObserver& observer) {
  if (!settings.offline) return Puller(settings, spec, observer).run(supported_model_types);
  PullResult result;
  const HubCache cache(settings.cache_dir);
  const auto commit = cache.resolve_revision(spec.repo, spec.revision);
  if (!commit) {
    result.error = spec.repo + "@" + spec.revision + " is not in the cache (" +
                   settings.cache_dir.string() +
                   ") and HF_HUB_OFFLINE is set: pull it online first";
    return result;
  }
  result.commit = *commit;
  result.error = select_cached(cache, spec, *commit, &result.files);
  if (!result.error.empty()) return result;
  std::error_code ec;
  for (const auto& file : result.files) {
    if (!fs::exists(cache.snapshot_dir(spec.repo, *commit) / file, ec)) {
      result.error = file + " of " + spec.repo +
                     " is missing from the cache and HF_HUB_OFFLINE "
                     "is set: pull it online first";
      return result;
    }
    observer.file_done(file, fs::file_size(cache.snapshot_dir(spec.repo, *commit) / file, ec),
                       false);
  }
  result.snapshot = cache.snapshot_dir(spec.repo, *commit);
  return result;
}

bool is_pulled(const HubSettings& settings, const RepoSpec& spec) {
  const HubCache cache(settings.cache_dir);
  const auto commit = cache.resolve_revision(spec.repo, spec.revision);
  std::vector<std::string> files;
  return commit && select_cached(cache, spec, *commit, &files).empty();
}

}  // namespace allm
