#include "cli/usage.h"

#include <cstdio>
#include <cstring>
#include <string>

namespace allm {

std::optional<int> help_or_bad_usage(int argc, char** argv, const char* command, const char* help,
                                     int arguments, const char* expected) {
  if (argc >= 1 && (!std::strcmp(argv[0], "--help") || !std::strcmp(argv[0], "-h"))) {
    std::fputs(help, stdout);
    return 0;
  }
  if (argc == arguments) return std::nullopt;
  std::fprintf(stderr, "allm %s: expected %s (see allm %s --help)\n", command, expected, command);
  return 2;
}

std::optional<int> repo_command_usage(int argc, char** argv, const char* command, const char* help,
                                      std::optional<RepoSpec>* spec) {
  if (auto status =
          help_or_bad_usage(argc, argv, command, help, 1, "one ORG/NAME[@REVISION][:QUANT]")) {
    return status;
  }
  std::string problem;
  *spec = parse_repo_spec(argv[0], &problem);
  if (*spec) return std::nullopt;
  std::fprintf(stderr, "allm %s: %s (see allm %s --help)\n", command, problem.c_str(), command);
  return 2;
}

}  // namespace allm
