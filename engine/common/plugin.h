// Finding and opening the engine's own plugins (shared libraries built beside the executable).
#pragma once

#include <string>

namespace engine {

// Opens the plugin `file_name` and returns its symbol `symbol`, or nullptr with `tried` saying what
// failed. Looked for where the environment variable `override_variable` points, beside the
// executable, in ../lib, and at `build_path` (where the build put it), in that order.
void* open_plugin_symbol(const std::string& file_name, const char* override_variable,
                         const char* build_path, int dlopen_flags, const char* symbol,
                         std::string& tried);

}  // namespace engine
