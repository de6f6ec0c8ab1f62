#pragma once

namespace allm {

// argv starts after the subcommand name.
int run_serve(int argc, char** argv);

}  // namespace allm
