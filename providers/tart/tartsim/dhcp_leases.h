#pragma once

// The fake host's DHCP lease table, TART_HOME/.fake/dhcpd_leases, in the format of macOS
// bootpd's /var/db/dhcpd_leases that Tart parses (MACAddressResolver/Leases.swift, Lease.swift):
//   {
//   	name=<vm>
//   	ip_address=192.168.64.2
//   	hw_address=1,6e:4:a9:1b:2:c0
//   	identifier=1,6e:4:a9:1b:2:c0
//   	lease=0x6650a1b2
//   }
// `lease` is the expiry (Unix seconds, hex); bootpd writes octets without leading zeros. Leases
// outlive the VM, as bootpd's do: `tart ip` of a stopped VM still answers until the lease
// expires (a stale lease, tart#172). Tests may edit the file.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace flotilla::tartsim {

struct Lease {
  std::string name;
  std::string ip;
  std::string mac;  // normalised: "6e:04:a9:1b:02:c0"
  int64_t expires = 0;
};

// Leases.swift's parse; throws std::runtime_error with its texts for a malformed file. A
// missing file has no leases.
std::vector<Lease> ReadLeases(const std::string& path);

// Leases.ResolveMACAddress: the IP of the unexpired lease for `mac` (the newest one if there
// are several).
std::optional<std::string> ResolveLease(const std::string& path, const std::string& mac);

// bootpd answering a DHCP request from `mac`: renews its lease (same IP) or takes the lowest
// free N (2..254) of the /24 around `shared_net_address` (the host's own address there, vmnet's
// Shared_Net_Address: 192.168.64.1 on a Mac, whose guests get 192.168.64.2 first); with
// `duplicate_ip`, the IP of another MAC's lease (tart#1097). Lease time 86400 s, bootpd's
// default. Serialised by a flock on the file. Returns the IP ("" when the pool is exhausted).
std::string AssignLease(const std::string& path, const std::string& name, const std::string& mac,
                        const std::string& shared_net_address, bool duplicate_ip);

// "6e:4:A9:1b:2:c0" -> "6e:04:a9:1b:02:c0"; empty when not a MAC.
std::string NormalizeMac(const std::string& mac);

}  // namespace flotilla::tartsim
