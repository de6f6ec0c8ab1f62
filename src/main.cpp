// allm: one process serving text, speech and image models over OpenAI-compatible HTTP.
#include <cstdio>
#include <cstring>

#include "cli/commands.h"

#ifndef ALLM_VERSION
#define ALLM_VERSION "0.0.0"
#endif

static void print_help(FILE* out) {
  std::fputs("usage: allm <command> [options]\n\ncommands:\n", out);
  for (const allm::Command& command : allm::commands())
    std::fprintf(out, "  %-11s %s\n", command.name, command.summary);
  std::fputs(
      "\n'allm <command> --help' describes a command.\n\n"
      "options:\n"
      "  --version  print the version\n"
      "  --help     print this help\n",
      out);
}

int main(int argc, char** argv) {
  if (argc < 2) {
    print_help(stderr);
    return allm::kExitUsage;
  }
  if (!std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    print_help(stdout);
    return allm::kExitOk;
  }
  if (!std::strcmp(argv[1], "--version")) {
    std::printf("allm %s\n", ALLM_VERSION);
    return allm::kExitOk;
  }
  for (const allm::Command& command : allm::commands()) {
    if (!std::strcmp(argv[1], command.name)) return command.run(argc - 2, argv + 2);
  }
  std::fprintf(stderr, "allm: unknown command '%s'\n\n", argv[1]);
  print_help(stderr);
  return allm::kExitUsage;
}
