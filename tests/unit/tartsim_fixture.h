#pragma once

// Runs flotilla-tartsim (FLOTILLA_TARTSIM_BIN) as `tart` in a scratch TART_HOME, the way the Tart
// provider's tests will run it behind sshd: each call its own process. Background `tart run`s are
// SIGKILLed at the end of each test.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

extern char** environ;

namespace flotilla::tartsim::testing {

struct Outcome {
  int code = -1;
  std::string out;
  std::string err;
};

inline std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

inline void WriteText(const std::string& path, const std::string& text) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

// The expected text lives in tests/golden/tart/<rel>; FLOTILLA_UPDATE_GOLDEN=1 rewrites it.
inline void ExpectGolden(const std::string& rel, const std::string& actual) {
  const std::string path = std::string(FLOTILLA_SOURCE_DIR) + "/tests/golden/tart/" + rel;
  if (std::getenv("FLOTILLA_UPDATE_GOLDEN") != nullptr) {
    WriteText(path, actual);
    return;
  }
  EXPECT_EQ(ReadText(path), actual) << "golden file " << path;
}

class TartsimTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/tartsim-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    home_ = root_ + "/tart";
    // Fast defaults; a test that measures a delay sets its own.
    Config({{"latency_ms", {{"limitcheck", 0}}}});
    Image("ghcr.io/cirruslabs/macos-sequoia-base/latest",
          {{"os", "darwin"},
           {"cpuCountMin", 4},
           {"memorySizeMin", 8589934592},
           {"diskGB", 50},
           {"sizeGB", 22.123},
           {"agent", true},
           {"digest", "4f2e9c7a1b3d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7"}});
    Image("ghcr.io/cirruslabs/ubuntu/latest",
          {{"os", "linux"},
           {"cpuCountMin", 2},
           {"memorySizeMin", 4294967296},
           {"diskGB", 20},
           {"sizeGB", 3.5},
           {"agent", true},
           {"digest", "9a8b7c6d5e4f30211203f4e5d6c7b8a99a8b7c6d5e4f30211203f4e5d6c7b8a9"}});
    Image("ghcr.io/cirruslabs/macos-sequoia-vanilla/latest",
          {{"os", "darwin"}, {"diskGB", 50}, {"sizeGB", 16.2}, {"agent", false}});
  }

  void TearDown() override {
    for (pid_t pid : background_) {
      kill(pid, SIGKILL);
      int status = 0;
      waitpid(pid, &status, 0);
    }
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  }

  void Config(const nlohmann::json& config) {
    WriteText(home_ + "/.fake/config.json", config.dump(2));
  }
  void Image(const std::string& ref_path, const nlohmann::json& descriptor) {
    WriteText(home_ + "/.fake/registry/" + ref_path + ".json", descriptor.dump());
  }
  std::string Fake(const std::string& rel) const { return home_ + "/.fake/" + rel; }

  std::vector<std::string> Env(const std::vector<std::string>& extra) const {
    std::vector<std::string> env;
    for (char** e = environ; *e != nullptr; ++e) {
      const std::string entry = *e;
      if (entry.rfind("TART_", 0) != 0 && entry.rfind("CI=", 0) != 0) {
        env.push_back(entry);
      }
    }
    env.push_back("TART_HOME=" + home_);
    env.push_back("CI=1");  // the plain console logger
    env.insert(env.end(), extra.begin(), extra.end());
    return env;
  }

  // Starts `tool args...` (tool "tart" unless given) with stdout and stderr going to `fds`.
  pid_t Start(const std::vector<std::string>& args, int in_fd, int out_fd, int err_fd,
              const std::vector<std::string>& extra_env, const std::string& tool) const {
    std::string program = FLOTILLA_TARTSIM_BIN;
    if (tool != "tart") {
      program = root_ + "/bin/" + tool;
      std::filesystem::create_directories(root_ + "/bin");
      std::error_code ec;
      std::filesystem::create_symlink(FLOTILLA_TARTSIM_BIN, program, ec);
    }
    std::vector<std::string> argv_s = {tool};
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (std::string& a : argv_s) {
      argv.push_back(a.data());
    }
    argv.push_back(nullptr);
    std::vector<std::string> env_s = Env(extra_env);
    std::vector<char*> envp;
    for (std::string& e : env_s) {
      envp.push_back(e.data());
    }
    envp.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in_fd, 0);
    posix_spawn_file_actions_adddup2(&actions, out_fd, 1);
    posix_spawn_file_actions_adddup2(&actions, err_fd, 2);
    pid_t pid = -1;
    const int rc = posix_spawn(&pid, program.c_str(), &actions, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    EXPECT_EQ(rc, 0) << std::strerror(rc);
    return pid;
  }

  // Runs to completion, feeding `input` on stdin.
  Outcome Run(const std::vector<std::string>& args, const std::string& input = "",
              const std::vector<std::string>& extra_env = {}, const std::string& tool = "tart") {
    int in[2];
    int out[2];
    int err[2];
    EXPECT_EQ(pipe2(in, O_CLOEXEC), 0);
    EXPECT_EQ(pipe2(out, O_CLOEXEC), 0);
    EXPECT_EQ(pipe2(err, O_CLOEXEC), 0);
    const pid_t pid = Start(args, in[0], out[1], err[1], extra_env, tool);
    close(in[0]);
    close(out[1]);
    close(err[1]);
    signal(SIGPIPE, SIG_IGN);
    (void)!write(in[1], input.data(), input.size());
    close(in[1]);
    Outcome outcome;
    pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
    std::string* sinks[2] = {&outcome.out, &outcome.err};
    int open_fds = 2;
    while (open_fds > 0) {
      poll(fds, 2, -1);
      for (int i = 0; i < 2; ++i) {
        if (fds[i].fd >= 0 && (fds[i].revents & (POLLIN | POLLHUP)) != 0) {
          char buf[4096];
          const ssize_t n = read(fds[i].fd, buf, sizeof(buf));
          if (n > 0) {
            sinks[i]->append(buf, static_cast<size_t>(n));
          } else {
            close(fds[i].fd);
            fds[i].fd = -1;
            --open_fds;
          }
        }
      }
    }
    int status = 0;
    waitpid(pid, &status, 0);
    outcome.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return outcome;
  }

  // A background process (`tart run`), its output in <root>/<log>.
  pid_t Spawn(const std::vector<std::string>& args, const std::string& log,
              const std::vector<std::string>& extra_env = {}) {
    const int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    const int out =
        open((root_ + "/" + log + ".out").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    const int err =
        open((root_ + "/" + log + ".err").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    const pid_t pid = Start(args, null, out, err, extra_env, "tart");
    close(null);
    close(out);
    close(err);
    background_.push_back(pid);
    return pid;
  }
  std::string Log(const std::string& log, const char* stream = "out") const {
    return ReadText(root_ + "/" + log + "." + stream);
  }

  // Waits (generously) for a background process to exit; its exit code, or 128+signal.
  int WaitExit(pid_t pid, int seconds = 20) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (waitpid(pid, &status, WNOHANG) == pid) {
        background_.erase(std::find(background_.begin(), background_.end(), pid));
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ADD_FAILURE() << "process " << pid << " still running after " << seconds << " s";
    return -1;
  }

  static bool Eventually(const std::function<bool()>& condition, int seconds = 20) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    while (std::chrono::steady_clock::now() < deadline) {
      if (condition()) {
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return condition();
  }

  std::string State(const std::string& vm) {
    Outcome got = Run({"get", vm, "--format", "json"});
    if (got.code != 0) {
      return "error: " + got.err;
    }
    return nlohmann::json::parse(got.out).at("State").get<std::string>();
  }

  // Clones the darwin image into `vm` (or `image`'s).
  void Clone(const std::string& vm,
             const std::string& image = "ghcr.io/cirruslabs/macos-sequoia-base:latest") {
    Outcome got = Run({"clone", image, vm});
    ASSERT_EQ(got.code, 0) << got.err;
  }

  // Starts `tart run --no-graphics vm` and waits until the guest has its DHCP lease.
  pid_t Boot(const std::string& vm, std::vector<std::string> flags = {}) {
    flags.insert(flags.begin(), "run");
    flags.push_back("--no-graphics");
    flags.push_back(vm);
    const pid_t pid = Spawn(flags, "run-" + vm);
    // The guest is up (the marker `run` writes after boot), then has its lease.
    EXPECT_TRUE(Eventually([&] {
      return std::filesystem::exists(Fake("vmstate/" + vm + "/agent-ready")) &&
             ReadText(Fake("dhcpd_leases")).find("\tname=" + vm + "\n") != std::string::npos;
    })) << Log("run-" + vm, "err");
    return pid;
  }

  std::string root_;
  std::string home_;
  std::vector<pid_t> background_;
};

}  // namespace flotilla::tartsim::testing
