// Checks shared by demands and totals.
#pragma once

#include <string>
#include <string_view>

#include "spindle/resources.hpp"

namespace spindle {

/// The shortest text that reads back as `value`: "1.5", "0.0001", "nan", "-inf".
std::string format_amount(double value);

namespace detail {

/// Checks a custom resource name; the built-in names are reserved for their own fields.
void check_custom_name(std::string_view name, std::string_view what);

/// A memory amount: valid, and a whole number of bytes.
Quantity whole_bytes(double value, std::string_view what);

}  // namespace detail
}  // namespace spindle
