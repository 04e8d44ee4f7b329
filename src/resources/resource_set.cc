// Quantity, ResourceSet and the totals taken from the machine.
#include <algorithm>
#include <array>
#include <cfloat>
#include <charconv>
#include <cmath>
#include <sstream>

#include "internal/json.hpp"
#include "resources/validation.hpp"
#include "spindle/errors.hpp"
#include "spindle/resources.hpp"
#include "spindle/topology.hpp"

namespace spindle {

std::string format_amount(double value) {
  std::array<char, 64> text{};
  auto result = std::to_chars(text.data(), text.data() + text.size(), value);
  return std::string(text.data(), result.ptr);
}

namespace detail {

void check_custom_name(std::string_view name, std::string_view what) {
  ResourceSet::check_name(name);
  if (ResourceSet::is_builtin(name)) {
    throw InvalidArgumentError(std::string(what) + ": '" + std::string(name) +
                               "' is reserved; use num_cpus, num_gpus or memory");
  }
}

Json to_json_value(const ResourceSet& resources) {
  Json json = Json::object();
  for (const auto& [name, amount] : resources.amounts()) {
    json[name] = amount.is_whole() ? Json(amount.whole_part()) : Json(amount.to_double());
  }
  return json;
}

Quantity whole_bytes(double value, std::string_view what) {
  Quantity bytes = Quantity::from_double(value, what);
  if (!bytes.is_whole()) {
    throw InvalidArgumentError(std::string(what) + " = " + format_amount(value) +
                               ": must be a whole number of bytes");
  }
  return bytes;
}

}  // namespace detail

Quantity Quantity::from_double(double value, std::string_view what) {
  auto fail = [&](std::string_view rule) {
    throw InvalidArgumentError(std::string(what) + " = " + format_amount(value) + ": " +
                               std::string(rule));
  };
  if (!std::isfinite(value)) fail("must be a finite number");
  if (value < 0) fail("must not be negative");
  if (value > kMaxAmount) fail("must be at most " + format_amount(kMaxAmount));
  double scaled = value * kUnitsPerWhole;
  double rounded = std::nearbyint(scaled);
  // Decimal fractions such as 0.0003 are not exact in binary: allow their rounding error.
  if (std::abs(scaled - rounded) > std::max(1e-6, 4 * DBL_EPSILON * scaled)) {
    fail("the finest fraction allowed is 0.0001");
  }
  return Quantity(static_cast<std::int64_t>(rounded));
}

std::string Quantity::to_string() const {
  std::string text = std::to_string(units_ / kUnitsPerWhole);
  std::int64_t fraction = units_ % kUnitsPerWhole;
  if (fraction == 0) return text;
  std::string digits = std::to_string(kUnitsPerWhole + fraction).substr(1);
  digits.erase(digits.find_last_not_of('0') + 1);
  return text + '.' + digits;
}

ResourceSet ResourceSet::demand(double num_cpus, double num_gpus, double memory,
                                const std::map<std::string, double>& custom) {
  auto counted = [](double value, const std::string& what) {
    Quantity amount = Quantity::from_double(value, what);
    if (amount > Quantity::whole(1) && !amount.is_whole()) {
      throw InvalidArgumentError(what + " = " + format_amount(value) +
                                 ": a demand above 1 must be a whole number");
    }
    return amount;
  };
  ResourceSet set;
  set.set(kCpu, counted(num_cpus, "num_cpus"));
  set.set(kGpu, counted(num_gpus, "num_gpus"));
  set.set(kMemory, detail::whole_bytes(memory, "memory"));
  for (const auto& [name, value] : custom) {
    std::string what = "resources[\"" + name + "\"]";
    detail::check_custom_name(name, what);
    set.set(name, counted(value, what));
  }
  return set;
}

void ResourceSet::check_name(std::string_view name) {
  if (name.empty()) {
    throw InvalidArgumentError("resource name '': a resource needs a non-empty name");
  }
  constexpr std::size_t kMaxLength = 64;
  if (name.size() > kMaxLength) {
    throw InvalidArgumentError("resource name '" + std::string(name) + "': at most " +
                               std::to_string(kMaxLength) + " characters are allowed");
  }
  auto allowed = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           std::string_view("_-.:/").find(c) != std::string_view::npos;
  };
  if (!std::ranges::all_of(name, allowed)) {
    throw InvalidArgumentError("resource name '" + std::string(name) +
                               "': only letters, digits and _ - . : / are allowed");
  }
}

ResourceSet& ResourceSet::set(std::string_view name, double amount) {
  check_name(name);
  return set(name, Quantity::from_double(amount, name));
}

ResourceSet& ResourceSet::set(std::string_view name, Quantity amount) {
  check_name(name);
  if (amount.is_zero()) {
    if (auto it = amounts_.find(name); it != amounts_.end()) amounts_.erase(it);
  } else {
    amounts_.insert_or_assign(std::string(name), amount);
  }
  return *this;
}

Quantity ResourceSet::get(std::string_view name) const {
  auto it = amounts_.find(name);
  return it == amounts_.end() ? Quantity() : it->second;
}

bool ResourceSet::contains(const ResourceSet& other) const {
  return std::ranges::all_of(other.amounts_,
                             [&](const auto& item) { return item.second <= get(item.first); });
}

ResourceSet& ResourceSet::operator+=(const ResourceSet& other) {
  for (const auto& [name, amount] : other.amounts_) amounts_[name] += amount;
  return *this;
}

ResourceSet& ResourceSet::operator-=(const ResourceSet& other) {
  if (!contains(other)) {
    throw std::logic_error("cannot take " + other.to_string() + " from " + to_string());
  }
  for (const auto& [name, amount] : other.amounts_) set(name, get(name) - amount);
  return *this;
}

std::string ResourceSet::to_string() const {
  std::ostringstream out;
  out << '{';
  bool first = true;
  auto print = [&](std::string_view name, Quantity amount) {
    out << (first ? "" : ", ") << name << ": "
        << (name == kMemory && amount.is_whole()
                ? format_bytes(static_cast<std::uint64_t>(amount.whole_part()))
                : amount.to_string());
    first = false;
  };
  for (std::string_view name : {kCpu, kGpu, kMemory}) {
    if (Quantity amount = get(name); !amount.is_zero()) print(name, amount);
  }
  for (const auto& [name, amount] : amounts_) {
    if (!is_builtin(name)) print(name, amount);
  }
  out << '}';
  return out.str();
}

ResourceSet resource_totals(const Topology& topology, const ResourceOverrides& overrides) {
  ResourceSet totals;
  totals.set(ResourceSet::kCpu,
             overrides.num_cpus ? Quantity::from_double(*overrides.num_cpus, "num_cpus")
                                : Quantity::whole(static_cast<std::int64_t>(topology.num_cores())));
  Quantity gpus = Quantity::whole(static_cast<std::int64_t>(topology.gpus.size()));
  if (overrides.num_gpus) {
    gpus = Quantity::from_double(*overrides.num_gpus, "num_gpus");
    if (!gpus.is_whole()) {
      throw InvalidArgumentError("num_gpus = " + format_amount(*overrides.num_gpus) +
                                 ": the total is a number of devices, so it must be whole");
    }
  }
  totals.set(ResourceSet::kGpu, gpus);
  double memory =
      std::min<double>(static_cast<double>(topology.usable_memory_bytes()), Quantity::kMaxAmount);
  totals.set(ResourceSet::kMemory,
             detail::whole_bytes(overrides.memory.value_or(memory), "memory"));
  for (const auto& [name, value] : overrides.resources) {
    std::string what = "resources[\"" + name + "\"]";
    detail::check_custom_name(name, what);
    totals.set(name, Quantity::from_double(value, what));
  }
  return totals;
}

}  // namespace spindle
