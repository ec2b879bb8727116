#include "engine/runtime/family_adapter.h"

#include <map>

#include <fmt/format.h>

#include "engine/common/error.h"

namespace engine {
namespace {

std::map<std::string, FamilyRegistration>& registry() {
  static std::map<std::string, FamilyRegistration> families;
  return families;
}

const FamilyRegistration& registered(const std::string& family, const Manifest& manifest) {
  auto found = registry().find(family);
  if (found == registry().end()) {
    std::string known;
    for (const auto& entry : registry()) known += (known.empty() ? "" : ", ") + entry.first;
    throw ConfigError(
        fmt::format("{}/engine.json: family '{}' is not served by this engine; "
                    "known families: {}",
                    manifest.directory, family, known));
  }
  return found->second;
}

}  // namespace

void register_family(const std::string& name, FamilyRegistration family) {
  registry()[name] = family;
}

std::shared_ptr<const FamilyOptions> read_family_options(const std::string& family,
                                                         const OptionsContext& context) {
  return registered(family, context.manifest).read_options(context);
}

std::unique_ptr<FamilyAdapter> make_adapter(const std::string& family,
                                            const AdapterContext& context) {
  const FamilyRegistration& found = registered(family, context.bundle.manifest);
  std::unique_ptr<FamilyAdapter> adapter = found.make_adapter(context);
  check<ConfigError>(adapter->serves(context.task.kind),
                     "task.kind is '{}' but the {} model at {} does not serve it",
                     task_name(context.task.kind), family, context.bundle.manifest.directory);
  return adapter;
}

}  // namespace engine
