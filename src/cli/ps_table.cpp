#include "cli/ps_table.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

#include "base/byte_size.h"

namespace allm {

namespace {

uint64_t bytes_member(const json& model, const char* key) {
  const json& value = model.contains(key) ? model[key] : json();
  return value.is_number_unsigned() ? value.get<uint64_t>() : 0;
}

int int_member(const json& model, const char* key) {
  const json& value = model.contains(key) ? model[key] : json();
  return value.is_number_integer() ? value.get<int>() : 0;
}

std::string requests_cell(const json& model) {
  const int requests = int_member(model, "requests");
  if (requests == 0) return "-";
  if (!model.contains("running")) return std::to_string(requests);
  return std::to_string(int_member(model, "running")) + " running, " +
         std::to_string(int_member(model, "queued")) + " queued";
}

// Where a text model's blocks are: "CPU:1 RPC0:1 RPC1:1"; "-" when the model does not say.
std::string devices_cell(const json& model) {
  const json& devices = model.contains("devices") ? model["devices"] : json();
  std::string cell;
  if (devices.is_array()) {
    for (const json& device : devices) {
      if (!device.is_object()) continue;
      cell += (cell.empty() ? "" : " ") + text_member(device, "name", "?") + ":" +
              std::to_string(int_member(device, "layers"));
    }
  }
  return cell.empty() ? "-" : cell;
}

std::string unloads_cell(const json& model) {
  if (int_member(model, "requests") > 0) return "-";  // a busy model stays
  const json& in = model.contains("unloads_in_seconds") ? model["unloads_in_seconds"] : json();
  return in.is_number() ? "in " + format_duration(in.get<double>()) : "never";
}

std::vector<std::string> model_row(const json& model) {
  const uint64_t vram = bytes_member(model, "vram_bytes");
  const double idle = model.contains("idle_seconds") && model["idle_seconds"].is_number()
                          ? model["idle_seconds"].get<double>()
                          : 0;
  return {text_member(model, "id", ""),
          text_member(model, "modality", ""),
          format_bytes(bytes_member(model, "ram_bytes")),
          vram ? format_bytes(vram) : "-",
          devices_cell(model),
          requests_cell(model),
          int_member(model, "requests") > 0 ? "busy" : format_duration(idle),
          unloads_cell(model)};
}

}  // namespace

std::string format_duration(double seconds) {
  const long total = std::lround(std::max(0.0, seconds));
  char text[32];
  if (total < 60) {
    std::snprintf(text, sizeof text, "%lds", total);
  } else if (total < 3600) {
    std::snprintf(text, sizeof text, "%ldm %02lds", total / 60, total % 60);
  } else {
    std::snprintf(text, sizeof text, "%ldh %02ldm", total / 3600, total % 3600 / 60);
  }
  return text;
}

std::string format_ps_table(const json& loaded_models) {
  std::vector<std::vector<std::string>> rows = {
      {"ID", "MODALITY", "RAM", "VRAM", "DEVICES", "REQUESTS", "IDLE", "UNLOADS"}};
  const json& data = loaded_models.contains("data") ? loaded_models["data"] : json();
  if (data.is_array()) {
    for (const json& model : data) {
      if (model.is_object()) rows.push_back(model_row(model));
    }
  }
  std::vector<size_t> widths(rows[0].size(), 0);
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(widths[i] - row[i].size() + 3, ' ');
    }
    out += line + "\n";
  }
  return out;
}

}  // namespace allm
