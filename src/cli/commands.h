#pragma once

namespace allm {

// argv starts after the subcommand name.
int run_serve(int argc, char** argv);
// Hub models (cli/pull.cpp, cli/model_commands.cpp): 0 ok, 1 failure, 2 bad usage.
int run_pull(int argc, char** argv);
int run_ls(int argc, char** argv);
int run_show(int argc, char** argv);
int run_rm(int argc, char** argv);

}  // namespace allm
