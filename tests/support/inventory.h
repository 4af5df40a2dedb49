#pragma once

// Inventory snapshots (reconciler/render/inventory.h) written by hand, for tests that run
// `flotilla diff --inventory FILE` without a loop to export one.

#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

namespace flotilla::testing {

// Sizes of one host as an inventory gives them: {"cpu", "memory", "disk"}.
inline nlohmann::json Resources(int cpu, const std::string& memory, const std::string& disk) {
  return {{"cpu", cpu}, {"memory", memory}, {"disk", disk}};
}

// An online host with no VMs.
inline nlohmann::json InventoryHost(const std::string& name, const std::string& pool,
                                    const std::string& arch, const nlohmann::json& total,
                                    const nlohmann::json& reserved,
                                    const nlohmann::json& available) {
  return {{"name", name},           {"pool", pool},
          {"online", true},         {"arch", arch},
          {"total", total},         {"reserved", reserved},
          {"available", available}, {"vms", nlohmann::json::array()}};
}

// Writes an inventory of `hosts` with an empty ledger to `file`.
inline void WriteInventory(const std::filesystem::path& file, const nlohmann::json& hosts) {
  const nlohmann::json inventory = {{"apiVersion", "flotilla.dev/v1"},
                                    {"kind", "Inventory"},
                                    {"hosts", hosts},
                                    {"ledger", nlohmann::json::array()}};
  std::ofstream(file) << inventory.dump();
}

}  // namespace flotilla::testing
