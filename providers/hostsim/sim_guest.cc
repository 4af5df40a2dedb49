#include "providers/hostsim/sim_guest.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <vector>

namespace flotilla::hostsim {
namespace {

namespace fs = std::filesystem;

constexpr size_t kMaxOutput = size_t{1} << 20;

void TrimNewline(std::string& text) {
  if (!text.empty() && text.back() == '\n') {
    text.pop_back();
  }
}

}  // namespace

ExecOutcome Shape(std::string raw_stdout, std::string raw_stderr, int exit_code, bool killed) {
  ExecOutcome out;
  out.exit_code = killed ? -1 : exit_code;
  out.stdout_text = std::move(raw_stdout);
  TrimNewline(out.stdout_text);
  if (out.exit_code == 0) {
    return out;  // stderr = "" on success (helpers/os.go)
  }
  out.error = raw_stderr + ", err: " +
              (killed ? std::string("signal: killed") : "exit status " + std::to_string(exit_code));
  out.stderr_text = std::move(raw_stderr);
  TrimNewline(out.stderr_text);
  return out;
}

Result<std::unique_ptr<GuestShell>> GuestShell::Open(const SimOptions& options) {
  std::error_code ec;
  if (!options.guest_dir.empty()) {
    fs::create_directories(options.guest_dir, ec);
    if (ec) {
      return Status::InvalidArgument("--guest-dir " + options.guest_dir +
                                     " cannot be made: " + ec.message());
    }
    return std::unique_ptr<GuestShell>(new GuestShell(fs::absolute(options.guest_dir).string(),
                                                      /*owned=*/false));
  }
  std::string pattern = (fs::temp_directory_path(ec) / "flotilla-hostsim-guests-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) {
    return Status::Unavailable("cannot make a folder for guest shells under " +
                               fs::temp_directory_path(ec).string());
  }
  return std::unique_ptr<GuestShell>(new GuestShell(pattern, /*owned=*/true));
}

GuestShell::~GuestShell() {
  if (owned_) {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
}

ExecOutcome GuestShell::Run(const std::string& vm_uuid, const std::string& command,
                            Duration timeout) const {
  const std::string home = dir_ + "/" + vm_uuid;
  std::error_code ec;
  fs::create_directories(home, ec);
  std::array<int, 2> out_pipe{-1, -1};
  std::array<int, 2> err_pipe{-1, -1};
  if (::pipe2(out_pipe.data(), O_CLOEXEC) != 0 || ::pipe2(err_pipe.data(), O_CLOEXEC) != 0) {
    return Shape("", "hostsim: cannot make pipes", 1, false);
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], 2);
  posix_spawn_file_actions_addchdir_np(&actions, home.c_str());
  const std::string home_env = "HOME=" + home;
  std::vector<char*> env = {const_cast<char*>("PATH=/usr/bin:/bin"),
                            const_cast<char*>(home_env.c_str()), const_cast<char*>("LANG=C"),
                            nullptr};
  std::vector<char*> argv = {const_cast<char*>("/bin/sh"), const_cast<char*>("-c"),
                             const_cast<char*>(command.c_str()), nullptr};
  pid_t pid = -1;
  const int spawned = ::posix_spawn(&pid, "/bin/sh", &actions, nullptr, argv.data(), env.data());
  posix_spawn_file_actions_destroy(&actions);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  if (spawned != 0) {
    ::close(out_pipe[0]);
    ::close(err_pipe[0]);
    return Shape("", "hostsim: cannot run /bin/sh", 1, false);
  }
  // Read both streams until they close, killing the shell once the time limit passes (the
  // process only, as Go's exec.CommandContext does); after the kill, streams still held open
  // by its children are given a moment and then abandoned.
  std::string streams[2];
  std::array<pollfd, 2> fds = {pollfd{out_pipe[0], POLLIN, 0}, pollfd{err_pipe[0], POLLIN, 0}};
  const auto started = std::chrono::steady_clock::now();
  auto limit = started + timeout;
  bool killed = false;
  int open_streams = 2;
  while (open_streams > 0) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= limit) {
      if (killed) {
        break;
      }
      ::kill(pid, SIGKILL);
      killed = true;
      limit = now + std::chrono::seconds(1);
      continue;
    }
    const auto wait_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(limit - now).count() + 1;
    const int ready =
        ::poll(fds.data(), fds.size(), static_cast<int>(std::min<int64_t>(wait_ms, 1000)));
    if (ready < 0 && errno != EINTR) {
      break;
    }
    for (size_t i = 0; i < fds.size(); ++i) {
      if (fds[i].fd < 0 || (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) {
        continue;
      }
      std::array<char, 4096> buffer{};
      const ssize_t n = ::read(fds[i].fd, buffer.data(), buffer.size());
      if (n > 0) {
        if (streams[i].size() < kMaxOutput) {
          streams[i].append(buffer.data(), static_cast<size_t>(n));
        }
      } else if (n == 0 || errno != EINTR) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_streams;
      }
    }
  }
  for (pollfd& fd : fds) {
    if (fd.fd >= 0) {
      ::close(fd.fd);
    }
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  const bool signalled = WIFSIGNALED(status);
  const int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return Shape(std::move(streams[0]), std::move(streams[1]), code, killed || signalled);
}

}  // namespace flotilla::hostsim
