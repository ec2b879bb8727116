#include "engine/runtime/family_adapter.h"

#include <map>

#include <fmt/format.h>

#include "engine/common/error.h"

namespace engine {
namespace {

std::map<std::string, AdapterFactory>& registry() {
  static std::map<std::string, AdapterFactory> families;
  return families;
}

}  // namespace

void register_family(const std::string& name, AdapterFactory factory) {
  registry()[name] = factory;
}

std::unique_ptr<FamilyAdapter> make_adapter(const std::string& family,
                                            const AdapterContext& context) {
  auto found = registry().find(family);
  if (found == registry().end()) {
    std::string known;
    for (const auto& entry : registry()) known += (known.empty() ? "" : ", ") + entry.first;
    throw ConfigError(fmt::format("{}/engine.json: family '{}' is not served by this engine; "
                                  "known families: {}",
                                  context.bundle.manifest.directory, family, known));
  }
  std::unique_ptr<FamilyAdapter> adapter = found->second(context);
  check<ConfigError>(adapter->serves(context.task.kind),
                     "task.kind is '{}' but the {} model at {} does not serve it",
                     task_name(context.task.kind), family, context.bundle.manifest.directory);
  return adapter;
}

}  // namespace engine
