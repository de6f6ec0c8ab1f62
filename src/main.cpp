// allm: one process serving text, speech and image models over OpenAI-compatible HTTP.
#include <cstdio>
#include <cstring>

#include "cli/commands.h"

#ifndef ALLM_VERSION
#define ALLM_VERSION "0.0.0"
#endif

static void print_help() {
  std::puts(
      "usage: allm <command> [options]\n\n"
      "commands:\n"
      "  serve      run the OpenAI-compatible API server (allm serve --help)\n"
      "  pull       download a model from the Hugging Face Hub (allm pull --help)\n"
      "  ls         list the models: the models dir and the Hub cache\n"
      "  show       describe a model (allm show ID)\n"
      "  rm         remove a pulled model from the Hub cache (allm rm ID)\n\n"
      "options:\n"
      "  --version  print the version\n"
      "  --help     print this help");
}

int main(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    print_help();
    return argc < 2 ? 2 : 0;
  }
  if (!std::strcmp(argv[1], "--version")) {
    std::printf("allm %s\n", ALLM_VERSION);
    return 0;
  }
  if (!std::strcmp(argv[1], "serve")) return allm::run_serve(argc - 2, argv + 2);
  if (!std::strcmp(argv[1], "pull")) return allm::run_pull(argc - 2, argv + 2);
  if (!std::strcmp(argv[1], "ls")) return allm::run_ls(argc - 2, argv + 2);
  if (!std::strcmp(argv[1], "show")) return allm::run_show(argc - 2, argv + 2);
  if (!std::strcmp(argv[1], "rm")) return allm::run_rm(argc - 2, argv + 2);
  std::fprintf(stderr, "allm: unknown command '%s' (see allm --help)\n", argv[1]);
  return 2;
}
