// The seam between the engine and a model family (models/<family>/): the family turns records
// into token sequences and model outputs into scores. Nothing under engine/ names a family.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/config/config.h"
#include "engine/runtime/model_bundle.h"
#include "engine/text/tokenizer.h"

namespace engine {

struct AdapterContext {
  ModelBundle& bundle;
  const TaskConfig& task;
  const ConfigNode& options;  // model.options; the adapter rejects keys it does not know
};

class FamilyAdapter {
 public:
  virtual ~FamilyAdapter() = default;

  // The sequences that score one (query, passage) pair: one, or several when a long passage is
  // cut into windows, in which case the pair's score is the best window's. Throws RecordError.
  virtual std::vector<Encoding> encode_pair(std::string_view query,
                                            std::string_view passage) const = 0;

  // One score per sequence, in order, after the family's activation. `padded_length` is the
  // length every sequence is padded to.
  virtual std::vector<float> score(const std::vector<const Encoding*>& batch,
                                   size_t padded_length) = 0;

  // One line for `engine check`: what the adapter computes.
  virtual std::string describe() const = 0;
};

using AdapterFactory = std::unique_ptr<FamilyAdapter> (*)(const AdapterContext&);

void register_family(const std::string& name, AdapterFactory factory);
// Throws ConfigError naming the registered families when `family` is not one of them.
std::unique_ptr<FamilyAdapter> make_adapter(const std::string& family,
                                            const AdapterContext& context);

}  // namespace engine
