#include "providers/hostsim/sim_world.h"

#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace flotilla::hostsim {
namespace {

std::string Hex(uint64_t value, int digits) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(static_cast<size_t>(digits), '0');
  for (int i = digits - 1; i >= 0; --i) {
    out[static_cast<size_t>(i)] = kDigits[value & 0xF];
    value >>= 4;
  }
  return out;
}

std::string HostName(int index) {
  std::array<char, 16> buf{};
  std::snprintf(buf.data(), buf.size(), "sim-%03d", index);
  return buf.data();
}

}  // namespace

SimWorld::SimWorld(SimOptions options)
    : options_(std::move(options)), rng_(options_.seed), token_rng_(std::random_device{}()) {
  if (options_.hosts == 0) {
    hosts_.push_back(std::make_unique<SimHost>(options_.name, 0, options_, *this));
  } else {
    for (int i = 0; i < options_.hosts; ++i) {
      hosts_.push_back(std::make_unique<SimHost>(HostName(i), i, options_, *this));
    }
  }
  scheduler_ = std::thread([this] { RunScheduler(); });
}

SimWorld::~SimWorld() { Shutdown(); }

Status SimWorld::Open() {
  if (options_.guest_exec == "shell") {
    Result<std::unique_ptr<GuestShell>> guests = GuestShell::Open(options_);
    if (!guests.ok()) {
      return guests.status();
    }
    guests_ = std::move(*guests);
  }
  if (Status s = LoadState(); !s.ok()) {
    return s;
  }
  for (const auto& host : hosts_) {
    host->StartBackgroundWork();
  }
  return Status::Ok();
}

SimHost* SimWorld::FindHost(std::string_view name) const {
  for (const auto& host : hosts_) {
    if (host->name() == name) {
      return host.get();
    }
  }
  return nullptr;
}

void SimWorld::Shutdown() {
  if (stopping_.exchange(true)) {
    return;
  }
  { std::lock_guard lock(stop_mu_); }
  stop_cv_.notify_all();
  for (const auto& host : hosts_) {
    host->Shutdown();
  }
  { std::lock_guard lock(sched_mu_); }
  sched_cv_.notify_all();
  if (scheduler_.joinable()) {
    scheduler_.join();
  }
  if (Status s = SaveState(); !s.ok()) {
    std::fprintf(stderr, "flotilla-hostsim: %s\n", s.ToString().c_str());
  }
}

// ---------------------------------------------------------------------------------------------
// Randomness and time

std::string SimWorld::NewUuid() {
  uint64_t hi = 0;
  uint64_t lo = 0;
  {
    std::lock_guard lock(rng_mu_);
    hi = rng_();
    lo = rng_();
  }
  hi = (hi & ~uint64_t{0xF000}) | 0x4000;                      // version 4
  lo = (lo & ~(uint64_t{0xC} << 60)) | (uint64_t{0x8} << 60);  // RFC 4122 variant
  return Hex(hi >> 32, 8) + "-" + Hex((hi >> 16) & 0xFFFF, 4) + "-" + Hex(hi & 0xFFFF, 4) + "-" +
         Hex(lo >> 48, 4) + "-" + Hex(lo & 0xFFFFFFFFFFFF, 12);
}

std::string SimWorld::NewToken() {
  std::lock_guard lock(rng_mu_);
  std::string token;
  for (int i = 0; i < 4; ++i) {
    token += Hex(token_rng_(), 16);
  }
  return token;
}

Duration SimWorld::Latency(std::string_view op) {
  auto it = options_.latency.find(std::string(op));
  if (it == options_.latency.end() || it->second.count() <= 0) {
    return Duration(0);
  }
  if (options_.jitter <= 0.0) {
    return it->second;
  }
  double factor = 1.0;
  {
    std::lock_guard lock(rng_mu_);
    std::uniform_real_distribution<double> dist(1.0 - options_.jitter, 1.0 + options_.jitter);
    factor = dist(rng_);
  }
  return Duration(static_cast<int64_t>(static_cast<double>(it->second.count()) * factor));
}

bool SimWorld::Chance(double p) {
  if (p <= 0.0) {
    return false;
  }
  std::lock_guard lock(rng_mu_);
  std::uniform_real_distribution<double> dist(0.0, 1.0);
  return dist(rng_) < p;
}

void SimWorld::Sleep(Duration d) {
  if (d.count() <= 0) {
    return;
  }
  std::unique_lock lock(stop_mu_);
  stop_cv_.wait_for(lock, d, [this] { return stopping_.load(); });
}

// ---------------------------------------------------------------------------------------------
// Scheduler

void SimWorld::Schedule(Duration delay, std::function<void()> task) {
  {
    std::lock_guard lock(sched_mu_);
    if (stopping_) {
      return;
    }
    tasks_.push({std::chrono::steady_clock::now() + delay, next_seq_++, std::move(task)});
  }
  sched_cv_.notify_all();
}

void SimWorld::RunScheduler() {
  std::unique_lock lock(sched_mu_);
  while (!stopping_) {
    if (tasks_.empty()) {
      sched_cv_.wait(lock, [this] { return stopping_ || !tasks_.empty(); });
      continue;
    }
    const auto due = tasks_.top().due;
    if (std::chrono::steady_clock::now() < due) {
      sched_cv_.wait_until(lock, due);
      continue;
    }
    std::function<void()> fn = tasks_.top().fn;
    tasks_.pop();
    lock.unlock();
    fn();
    lock.lock();
  }
}

// ---------------------------------------------------------------------------------------------
// State file

void SimWorld::OnMutation() {
  if (options_.state_file.empty()) {
    return;
  }
  if (Status s = SaveState(); !s.ok()) {
    std::fprintf(stderr, "flotilla-hostsim: %s\n", s.ToString().c_str());
  }
}

Status SimWorld::SaveState() {
  if (options_.state_file.empty()) {
    return Status::Ok();
  }
  std::lock_guard lock(save_mu_);
  nlohmann::json hosts = nlohmann::json::array();
  for (const auto& host : hosts_) {
    hosts.push_back(host->Snapshot());
  }
  const nlohmann::json doc = {{"format", "flotilla-hostsim-state/v1"}, {"hosts", hosts}};
  const std::string tmp = options_.state_file + ".tmp." + std::to_string(getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << doc.dump(1) << '\n';
    out.flush();
    if (!out) {
      return Status::Unavailable("cannot write state file " + tmp);
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, options_.state_file, ec);
  if (ec) {
    return Status::Unavailable("cannot replace state file " + options_.state_file + ": " +
                               ec.message());
  }
  return Status::Ok();
}

Status SimWorld::LoadState() {
  if (options_.state_file.empty()) {
    return Status::Ok();
  }
  std::ifstream in(options_.state_file, std::ios::binary);
  if (!in) {
    return Status::Ok();  // first run
  }
  std::stringstream text;
  text << in.rdbuf();
  const nlohmann::json doc = nlohmann::json::parse(text.str(), nullptr, false);
  if (doc.is_discarded() || !doc.is_object() || !doc.contains("hosts") ||
      !doc["hosts"].is_array()) {
    return Status::InvalidArgument("state file " + options_.state_file + " is not valid");
  }
  for (const nlohmann::json& snapshot : doc["hosts"]) {
    if (!snapshot.is_object() || !snapshot.contains("name") || !snapshot["name"].is_string()) {
      return Status::InvalidArgument("state file " + options_.state_file +
                                     " has a host without a name");
    }
    SimHost* host = FindHost(snapshot["name"].get<std::string>());
    if (host == nullptr) {
      continue;
    }
    if (Status s = host->Restore(snapshot); !s.ok()) {
      return s.WithContext(options_.state_file);
    }
  }
  return Status::Ok();
}

}  // namespace flotilla::hostsim
