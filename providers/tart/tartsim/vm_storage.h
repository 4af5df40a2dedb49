#pragma once

// Tart's on-disk state, kept exactly as Tart keeps it (Config.swift, VMDirectory.swift,
// VMStorageLocal.swift, PIDLock.swift, FileLock.swift, VMConfig.swift):
//   TART_HOME/vms/<name>/{config.json, disk.img, nvram.bin, state.vzvmsave (while suspended)}
//   TART_HOME/cache/OCIs/...   (oci_storage.h)
//   TART_HOME/tmp/<UUID>/      (clone's staging directories, garbage-collected when unlocked)
// and the fake's own state under TART_HOME/.fake/ (never inside vms/).
//
// Locks, as Tart takes them:
//   - the global lock: flock(2) on the TART_HOME directory (clone's copy and move, run's start);
//   - a VM is running while some process holds an fcntl(2) write lock on its config.json
//     (F_GETLK gives that process's pid; a lock held by the caller itself is not reported);
//   - tmp/<UUID>: flock(2) while a clone fills it.
//
// Fake-only guest properties travel inside disk.img: a JSON header in its first 4 KiB (the rest
// is a hole), copied by clone, so agent presence and the image's allocated size follow the disk.

#include <sys/types.h>

#include <cstdint>
#include <ctime>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace flotilla::tartsim {

struct TartHome {
  std::string root;

  // TART_HOME, else $HOME/.tart.
  static TartHome FromEnvironment();
  // What Config() does first: create the missing components of TART_HOME, cache/ and tmp/.
  // Throws TartExit ("TART_HOME is invalid: ...") when it cannot.
  void Prepare() const;

  std::string vms() const { return root + "/vms"; }
  std::string cache_ocis() const { return root + "/cache/OCIs"; }
  std::string tmp() const { return root + "/tmp"; }
  std::string fake() const { return root + "/.fake"; }
  std::string fake_config() const { return fake() + "/config.json"; }
  std::string registry() const { return fake() + "/registry"; }
  std::string leases() const { return fake() + "/dhcpd_leases"; }
  std::string runs() const { return fake() + "/runs"; }
  std::string guest_home(const std::string& vm) const { return fake() + "/guests/" + vm; }
  std::string guest_bin() const { return fake() + "/guest-bin"; }
  // Markers the fake guest leaves for its `tart run` (agent up, shutdown requested).
  std::string vm_state(const std::string& vm) const { return fake() + "/vmstate/" + vm; }
};

// Tart's VMConfig, field for field.
struct VmConfig {
  int64_t version = 1;
  std::string os = "darwin";  // "darwin" or "linux"
  std::string arch = "arm64";
  std::string ecid;            // darwin: base64 VZMacMachineIdentifier
  std::string hardware_model;  // darwin: base64 VZMacHardwareModel
  int64_t cpu_count_min = 4;
  int64_t cpu_count = 4;
  int64_t memory_size_min = 4294967296;
  int64_t memory_size = 4294967296;
  std::string mac_address;
  int64_t display_width = 1024;
  int64_t display_height = 768;
  std::string display_unit;  // "", "pt" or "px"
  std::optional<bool> display_refit;
  std::string disk_format = "raw";

  // VMConfig.save: pretty-printed, keys in encode order.
  std::string Render() const;
  // Throws std::runtime_error with a DecodingError-like text.
  static VmConfig Parse(const std::string& text);
};

VmConfig ReadVmConfig(const std::string& path);
// In place (see WriteFileInPlace): keeps a running VM's lock.
void WriteVmConfig(const std::string& path, const VmConfig& config);

struct DiskHeader {
  bool agent = false;           // the image has the Tart Guest Agent
  int64_t allocated_bytes = 0;  // what the disk occupies on a real APFS volume
  std::string image;            // where it came from (informational)
};

// The header of a fake disk.img, or nullopt for a disk without one (replaced by `set --disk`).
std::optional<DiskHeader> ReadDiskHeader(const std::string& disk_path);
// A new sparse disk: the header, then a hole up to `size_bytes`.
void WriteNewDisk(const std::string& disk_path, const DiskHeader& header, int64_t size_bytes);

// flock(2) on a path (a directory works). Unlocks on destruction. As in Tart's FileLock.swift,
// opening is not checked: a path removed meanwhile (another command's GC of an unlocked
// ~/.tart/tmp entry) fails at Lock() with EBADF, thrown as Tart prints its
// FileLockError.Failed("failed to lock URL: ERRNO").
class FileLock {
 public:
  explicit FileLock(const std::string& path);
  ~FileLock();
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  bool valid() const { return fd_ >= 0; }
  void Lock();     // blocks
  bool TryLock();  // false when another holder has it

 private:
  [[noreturn]] void Fail(int error) const;
  std::string path_;
  int fd_;
};

// Tart's PIDLock: an fcntl lock on config.json. The descriptor stays open for the object's
// lifetime; closing ANY descriptor of the file in this process drops the lock (POSIX).
class PidLock {
 public:
  // nullopt when config.json cannot be opened (Tart's PIDLockMissing).
  static std::optional<PidLock> Open(const std::string& config_path);
  ~PidLock();
  PidLock(PidLock&& other) noexcept;
  PidLock& operator=(PidLock&& other) noexcept;
  PidLock(const PidLock&) = delete;
  PidLock& operator=(const PidLock&) = delete;
  bool TryLock();
  void Unlock();
  // The pid of another process holding the lock, 0 when none does.
  pid_t HolderPid() const;

 private:
  explicit PidLock(int fd) : fd_(fd) {}
  int fd_;
};

enum class VmState { kRunning, kSuspended, kStopped };
const char* VmStateName(VmState state);

class VmDir {
 public:
  explicit VmDir(std::string base) : base_(std::move(base)) {}
  const std::string& base() const { return base_; }
  std::string name() const;
  std::string config_path() const { return base_ + "/config.json"; }
  std::string disk_path() const { return base_ + "/disk.img"; }
  std::string nvram_path() const { return base_ + "/nvram.bin"; }
  std::string state_path() const { return base_ + "/state.vzvmsave"; }

  bool Initialized() const;  // config.json, disk.img and nvram.bin all exist
  pid_t RunningPid() const;  // via F_GETLK; 0 when stopped or unreadable
  bool Running() const { return RunningPid() != 0; }
  VmState State() const;
  int64_t SizeBytes() const;       // apparent: config + disk + nvram
  int64_t AllocatedBytes() const;  // on disk; the disk header's figure for disk.img
  time_t AccessTime() const;       // the directory's atime
  void UpdateAccessDate() const;   // what VMStorageLocal.open does
  std::string MacAddress() const;

 private:
  std::string base_;
};

// The directory a local VM name maps to, or nullopt when the name cannot be one directory
// under vms/ ("", ".", "..", anything with '/'): such a VM never exists.
std::optional<VmDir> LocalVmDir(const TartHome& home, const std::string& name);
// Initialized VMs under vms/, sorted by name.
std::vector<std::pair<std::string, VmDir>> ListLocalVms(const TartHome& home);

// Config().gc(): removes every tmp/ entry nobody holds a flock on. Prints Tart's
// "Failed to perform garbage collection: ..." on failure and carries on.
void CollectTmpGarbage(const TartHome& home);

// VZMACAddress.randomLocallyAdministered(), as "xx:xx:xx:xx:xx:xx".
std::string RandomMacAddress();
// UUID().uuidString (upper case).
std::string RandomUuid();
// A base64 VZMacMachineIdentifier data representation (a binary plist with a random ECID).
std::string RandomEcid();
// The hardware model data representation macOS images carry.
std::string DefaultHardwareModel();

}  // namespace flotilla::tartsim
