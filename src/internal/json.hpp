// JSON forms of spindle's data, for the library's printers and the command line tool.
#pragma once

#include <nlohmann/json.hpp>

#include "spindle/resources.hpp"
#include "spindle/topology.hpp"

namespace spindle::detail {

using Json = nlohmann::ordered_json;

Json to_json_value(const Topology& topology);
/// Amounts as numbers: whole ones as integers, fractions as decimals.
Json to_json_value(const ResourceSet& resources);

}  // namespace spindle::detail
