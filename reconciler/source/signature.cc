#include "reconciler/source/signature.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <vector>

extern char** environ;

namespace flotilla::source {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kSshSignatureHeader = "-----BEGIN SSH SIGNATURE-----";

// A file under the system's temporary folder holding `content`, removed on destruction.
class TempFile {
 public:
  explicit TempFile(std::string_view content) {
    std::string pattern = (fs::temp_directory_path() / "flotilla-sig-XXXXXX").string();
    const int fd = mkstemp(pattern.data());
    if (fd < 0) {
      return;
    }
    close(fd);
    path_ = pattern;
    std::ofstream(path_, std::ios::binary) << content;
  }
  ~TempFile() {
    if (!path_.empty()) {
      std::error_code ec;
      fs::remove(path_, ec);
    }
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  bool ok() const { return !path_.empty(); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

struct Outcome {
  int exit_code = -1;  // -1: could not run
  std::string out;
};

// Runs `argv` (looked up in PATH) with stdin from `stdin_path` (or /dev/null) and returns its
// exit code and standard output. Standard error is discarded.
Outcome Run(const std::vector<std::string>& argv, const std::string& stdin_path) {
  Outcome outcome;
  int out[2];
  if (pipe(out) != 0) {
    return outcome;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(
      &actions, STDIN_FILENO, stdin_path.empty() ? "/dev/null" : stdin_path.c_str(), O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addclose(&actions, out[0]);
  std::vector<char*> args;
  for (const std::string& a : argv) {
    args.push_back(const_cast<char*>(a.c_str()));
  }
  args.push_back(nullptr);
  pid_t pid = -1;
  const int rc = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(out[1]);
  if (rc == 0) {
    char buffer[4096];
    ssize_t n;
    while ((n = read(out[0], buffer, sizeof(buffer))) > 0) {
      outcome.out.append(buffer, static_cast<size_t>(n));
    }
    int status = 0;
    waitpid(pid, &status, 0);
    outcome.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  close(out[0]);
  return outcome;
}

}  // namespace

Status VerifySshSignature(std::string_view signature, std::string_view signed_data,
                          const std::string& allowed_signers_file, const std::string& what) {
  if (signature.empty()) {
    return Status::PermissionDenied(what +
                                    " is not signed; source.verify requires every fetched "
                                    "tip to carry an SSH signature");
  }
  if (signature.substr(0, kSshSignatureHeader.size()) != kSshSignatureHeader) {
    return Status::PermissionDenied(what +
                                    " has a signature that is not an SSH signature "
                                    "(GPG and X.509 signatures are not accepted)");
  }
  TempFile sig(signature);
  TempFile data(signed_data);
  if (!sig.ok() || !data.ok()) {
    return Status::Unavailable("cannot write temporary files to check the signature of " + what);
  }
  const Outcome found = Run(
      {"ssh-keygen", "-Y", "find-principals", "-s", sig.path(), "-f", allowed_signers_file}, "");
  if (found.exit_code < 0) {
    return Status::Unavailable("cannot run ssh-keygen (openssh-client) to check " + what);
  }
  if (found.exit_code != 0 || found.out.empty()) {
    return Status::PermissionDenied(what + " is signed by a key that is not in " +
                                    allowed_signers_file);
  }
  // One line per matching entry, each "principal[,principal...]"; any one of them will do.
  const std::string principal = found.out.substr(0, found.out.find_first_of(",\n"));
  const Outcome verified = Run({"ssh-keygen", "-Y", "verify", "-f", allowed_signers_file, "-I",
                                principal, "-n", "git", "-s", sig.path()},
                               data.path());
  if (verified.exit_code != 0) {
    return Status::PermissionDenied("the signature of " + what + " by " + principal +
                                    " does not verify");
  }
  return Status::Ok();
}

}  // namespace flotilla::source
