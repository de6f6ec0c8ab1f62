// Format detection (spec rules 1–3) and the --model flag: the first line of the input is a
// `NAME=PATH[:format]` spec, every further line names a file created in an empty model folder.
// Whatever the folder holds, the chosen format must be one that is present, and a registered
// format that is absent must be FORMAT_MISMATCH.
#include <sstream>
#include <vector>

#include "core/model_registry.h"
#include "fuzz_util.h"

namespace fs = std::filesystem;

namespace {

constexpr size_t kMaxFiles = 8;

// A name usable as one file in the folder (no separators, not . or ..).
bool usable_name(const std::string& name) {
  return !name.empty() && name.size() < 128 && name != "." && name != ".." &&
         name.find('/') == std::string::npos && name.find('\0') == std::string::npos;
}

fs::path fill_folder(std::istringstream& lines) {
  const fs::path folder = fuzz::scratch_dir() / "model";
  std::error_code ec;
  fs::remove_all(folder, ec);
  fs::create_directories(folder);
  std::string name;
  for (size_t n = 0; n < kMaxFiles && std::getline(lines, name);) {
    if (!usable_name(name)) continue;
    fuzz::write_file(folder / name, "x");
    ++n;
  }
  return folder;
}

void check_resolution(const allm::FormatProbe& probe, std::optional<allm::ModelFormat> registered) {
  const allm::ResolvedFormat resolved = allm::resolve_format(probe, registered, "fuzz");
  if (resolved.error) {
    const bool anything = probe.has_gguf() || probe.has_safetensors();
    if (!anything) return;  // nothing to load: LOAD_FAILED
    if (!registered) fuzz::fail("a folder with a model refused without a registered format");
    if (resolved.error.code != allm::ErrorCode::FORMAT_MISMATCH) {
      fuzz::fail("an absent registered format that is not FORMAT_MISMATCH");
    }
    return;
  }
  const bool present =
      resolved.format == allm::ModelFormat::GGUF ? probe.has_gguf() : probe.has_safetensors();
  if (!present) fuzz::fail("resolved to a format that is not there");
  if (registered && resolved.format != *registered) fuzz::fail("ignored the registered format");
  if (!registered && probe.has_safetensors() && resolved.format != allm::ModelFormat::SAFETENSORS) {
    fuzz::fail("both present without registration must default to safetensors");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::istringstream lines(std::string(reinterpret_cast<const char*>(data), size));
  std::string spec;
  std::getline(lines, spec);
  std::string problem;
  if (auto entry = allm::parse_model_spec(spec, &problem)) {
    if (entry->id.empty() || entry->path.empty()) fuzz::fail("a model spec without name or path");
  } else if (problem.empty()) {
    fuzz::fail("a refused model spec without a reason");
  }

  const fs::path folder = fill_folder(lines);
  const allm::FormatProbe probe = allm::probe_model_path(folder);
  check_resolution(probe, std::nullopt);
  check_resolution(probe, allm::ModelFormat::GGUF);
  check_resolution(probe, allm::ModelFormat::SAFETENSORS);
  if (probe.has_gguf()) check_resolution(allm::probe_model_path(probe.gguf_file), std::nullopt);
  return 0;
}
