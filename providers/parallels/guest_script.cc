#include "providers/parallels/guest_script.h"

#include <charconv>
#include <vector>

#include "providers/parallels/wire.h"
#include "reconciler/model/text.h"

namespace flotilla::providers::parallels {
namespace {

// The run's folder, under the exec user's home (the same user for every command of a VM).
std::string RunDir(std::string_view run_id) {
  return "d=\"${HOME:-/tmp}/.flotilla/runs/" + std::string(run_id) + "\"\n";
}

}  // namespace

std::string ScriptRunId(std::string_view vm_id, std::string_view script,
                        const std::map<std::string, std::string>& env) {
  // Each part ends with a byte no text here contains, so that no two inputs run together.
  std::string text(vm_id);
  text += '\xff';
  text += script;
  text += '\xff';
  for (const auto& [name, value] : env) {
    text += name + '\xff' + value + '\xff';
  }
  return HexHash(text, 16);
}

Result<std::string> LaunchScript(std::string_view run_id, std::string_view script,
                                 const std::map<std::string, std::string>& env) {
  // The script with `export` lines for its environment, as ExecCommand would send it.
  Result<std::string> command = ExecCommand(script, env);
  if (!command.ok()) {
    return command.status();
  }
  // ExecCommand's form is "echo <base64> | base64 --decode | /bin/bash": the base64 is the
  // second word.
  const std::string& text = *command;
  const size_t start = text.find(' ') + 1;
  const std::string payload = text.substr(start, text.find(' ', start) - start);
  return RunDir(run_id) +
         "umask 077\n"
         "mkdir -p \"${d%/*}\" || exit 70\n"
         "if mkdir \"$d\" 2>/dev/null; then\n"
         "  printf '%s' '" +
         payload +
         "' | base64 --decode > \"$d/script\" || exit 71\n"
         "  cd \"${HOME:-/}\" 2>/dev/null || cd /\n"
         "  nohup /bin/bash -c '/bin/bash \"$1/script\" > \"$1/out\" 2> \"$1/err\" < /dev/null; "
         "echo $? > \"$1/rc.tmp\"; mv \"$1/rc.tmp\" \"$1/rc\"' flotilla-script \"$d\" "
         "> /dev/null 2>&1 < /dev/null &\n"
         "  echo launched\n"
         "else\n"
         "  echo running\n"
         "fi\n";
}

std::string PollScript(std::string_view run_id) {
  return RunDir(run_id) +
         "if [ -f \"$d/rc\" ]; then\n"
         "  printf 'done %s x' \"$(cat \"$d/rc\")\"\n"
         "  tail -c 65536 \"$d/out\" | base64 | tr -d '\\n'\n"
         "  printf ' x'\n"
         "  tail -c 8192 \"$d/err\" | base64 | tr -d '\\n'\n"
         "  echo\n"
         "elif [ -d \"$d\" ]; then\n"
         "  echo running\n"
         "else\n"
         "  echo missing\n"
         "fi\n";
}

std::string CleanScript(std::string_view run_id) { return RunDir(run_id) + "rm -rf \"$d\"\n"; }

Result<ScriptState> ParsePoll(std::string_view output) {
  // The status is the last line (anything a login shell printed before it is ignored).
  std::string_view text = TrimAscii(output);
  const size_t newline = text.rfind('\n');
  const std::string_view line =
      TrimAscii(newline == std::string_view::npos ? text : text.substr(newline + 1));
  ScriptState state;
  if (line == "running") {
    return state;
  }
  if (line == "missing") {
    state.kind = ScriptState::Kind::kMissing;
    return state;
  }
  std::vector<std::string_view> words;
  size_t begin = 0;
  while (begin <= line.size()) {
    const size_t space = line.find(' ', begin);
    words.push_back(line.substr(begin, space == std::string_view::npos ? space : space - begin));
    if (space == std::string_view::npos) {
      break;
    }
    begin = space + 1;
  }
  int code = 0;
  if (words.size() != 4 || words[0] != "done" || !words[2].starts_with("x") ||
      !words[3].starts_with("x") ||
      std::from_chars(words[1].data(), words[1].data() + words[1].size(), code).ec != std::errc()) {
    return Status::InvalidArgument("no status line in the guest's answer");
  }
  std::optional<std::string> out = DecodeBase64(words[2].substr(1));
  std::optional<std::string> err = DecodeBase64(words[3].substr(1));
  if (!out || !err) {
    return Status::InvalidArgument("the guest's status line has malformed output");
  }
  state.kind = ScriptState::Kind::kDone;
  state.exit_code = code;
  state.stdout_text = std::move(*out);
  state.stderr_text = std::move(*err);
  return state;
}

}  // namespace flotilla::providers::parallels
