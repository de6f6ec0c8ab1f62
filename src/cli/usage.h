// What the model commands (pull, ls, show, rm) share of their command lines.
#pragma once

#include <optional>

#include "hub/repo_spec.h"

namespace allm {

// The exit status when `allm COMMAND` asked for help (0, after printing `help`) or has not
// `arguments` arguments (2, after saying `expected`); nullopt when it should run.
std::optional<int> help_or_bad_usage(int argc, char** argv, const char* command, const char* help,
                                     int arguments, const char* expected);
// The same for a command taking one REPO[@REVISION][:QUANT], parsed into *spec.
std::optional<int> repo_command_usage(int argc, char** argv, const char* command, const char* help,
                                      std::optional<RepoSpec>* spec);

}  // namespace allm
