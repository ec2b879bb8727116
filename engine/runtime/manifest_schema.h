// The text of models/common/manifest.schema.json, built into the engine (manifest_schema.cc.in), so
// that the exporters and the engine check bundles against one copy of the contract.
#pragma once

namespace engine {

const char* manifest_schema_text();

}  // namespace engine
