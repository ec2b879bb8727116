// Inside engine/config only: the yaml-cpp tree a ConfigNode reads. Nothing outside engine/config
// includes this; everything else reads config through ConfigNode's typed accessors and Config.
#pragma once

#include <memory>
#include <string>

#include <yaml-cpp/yaml.h>

#include "engine/config/config_node.h"

namespace engine {

struct ConfigNode::Tree {
  YAML::Node node;
};

inline ConfigNode make_config_node(YAML::Node node, std::string key_path,
                                   std::shared_ptr<const ConfigSource> source) {
  return ConfigNode(std::make_shared<const ConfigNode::Tree>(ConfigNode::Tree{std::move(node)}),
                    std::move(key_path), std::move(source));
}

}  // namespace engine
