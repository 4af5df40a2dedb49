#include "providers/tart/scripts.h"

#include <algorithm>
#include <cctype>
#include <filesystem>

#include "providers/tart/ssh.h"
#include "providers/tart/wire.h"

namespace flotilla::providers::tart {
namespace {

std::string Q(std::string_view text) { return ShellQuote(text); }

// Prints one VM's `tart get` (and, when it runs, `tart ip`) as report sections; $n is the VM.
constexpr std::string_view kDescribeVm = R"sh(describe() {
  g=$("$T" get "$1" --format json 2>&1 </dev/null); r=$?
  echo "@@get $1"; printf '%s\n' "$g"; echo "@@rc $r"
  case "$g" in *'"running"'*)
    i=$("$T" ip "$1" 2>&1 </dev/null); r=$?
    echo "@@ip $1"; printf '%s\n' "$i"; echo "@@rc $r";;
  esac
}
job() {
  p="$F/run/$1.pid"
  [ -f "$p" ] || return 0
  read -r pid started <"$p" || return 0
  if ours "$pid"; then a=1; else a=0; fi
  echo "@@job $1"; echo "$pid $started $a"; echo "@@rc 0"
  if [ "$a" = 0 ]; then
    echo "@@log $1"
    awk '/^--- .* flotilla starts/ { n = 0 } { line[n++] = $0 } END { for (i = (n > 5 ? n - 5 : 0); i < n; i++) print line[i] }' "$F/log/$1.log" 2>/dev/null
    echo "@@rc 0"
  fi
}
)sh";

}  // namespace

std::string RemoteCommand() {
  // TART_HOME, when the host's environment sets it, is what the user's own tart uses too.
  return "exec /usr/bin/env -i HOME=\"$HOME\" ${TART_HOME:+TART_HOME=\"$TART_HOME\"} LC_ALL=C "
         "/bin/sh -s";
}

std::string Scripts::TartHome() const {
  const std::string& home = settings_.tart_home;
  if (home == "~") {
    return "\"$HOME\"";
  }
  if (home.starts_with("~/")) {
    return "\"$HOME\"/" + Q(home.substr(2));
  }
  return Q(home);
}

// `ours PID`: the process is a `tart run` Flotilla started (a pid file that outlived a reboot
// may name someone else's process by now).
constexpr std::string_view kOurs = R"sh(ours() {
  kill -0 "$1" 2>/dev/null && ps -p "$1" -o command= 2>/dev/null | grep -q -- 'run --no-graphics'
}
)sh";

std::string Scripts::Wrap(std::string_view body) const {
  const std::string folder = std::filesystem::path(settings_.tart_path).parent_path().string();
  std::string script = "{\n";
  script += "PATH=" + Q(folder + ":/usr/bin:/bin:/usr/sbin:/sbin") + "; export PATH\n";
  if (!settings_.tart_home.empty()) {
    script += "TART_HOME=" + TartHome() + "; export TART_HOME\n";
  }
  script += "T=" + Q(settings_.tart_path) + "\n";
  script += "F=\"${TART_HOME:-$HOME/.tart}/flotilla\"\n";
  script += kOurs;
  script += body;
  script += "\n} </dev/null\n";
  return script;
}

std::string Scripts::Observe() const {
  std::string body(kDescribeVm);
  body += R"sh(echo @@version; "$T" --version 2>&1; echo "@@rc $?"
echo @@sysctl; sysctl -n hw.ncpu hw.memsize hw.machine 2>&1; echo "@@rc $?"
echo @@sw_vers; sw_vers -productVersion 2>&1; echo "@@rc $?"
D="${TART_HOME:-$HOME/.tart}"; [ -d "$D" ] || D="$HOME"
echo @@df; df -k "$D" 2>&1; echo "@@rc $?"
echo "@@now $(date +%s)"; echo "@@rc 0"
echo @@list; "$T" list --source local --format json 2>&1; echo "@@rc $?"
echo @@oci; "$T" list --source oci -q 2>&1; echo "@@rc $?"
"$T" list --source local -q 2>/dev/null | while IFS= read -r n; do
  [ -n "$n" ] && describe "$n"
done
if [ -d "$F/run" ]; then
  for p in "$F"/run/*.pid; do
    [ -f "$p" ] || continue
    n=${p##*/}; job "${n%.pid}"
  done
fi
echo @@end)sh";
  return Wrap(body);
}

std::string Scripts::Status(std::string_view vm) const {
  std::string body(kDescribeVm);
  body += "N=" + Q(vm) + "\n";
  body += R"sh(describe "$N"; job "$N"
echo "@@now $(date +%s)"; echo "@@rc 0"
echo @@end)sh";
  return Wrap(body);
}

std::string Scripts::Version() const {
  return Wrap(R"sh(echo @@version; "$T" --version 2>&1; echo "@@rc $?"
echo @@end)sh");
}

std::string Scripts::TunnelAddress(std::string_view vm, std::string_view version,
                                   int wait_seconds) const {
  std::string options;
  if (TartAtLeast(version, "0.2.0")) {
    options += " --wait " + std::to_string(std::max(0, wait_seconds));
  }
  if (TartAtLeast(version, "1.1.0")) {
    options += " --resolver dhcp";
  }
  std::string body = "N=" + Q(vm) + "\n";
  body += R"sh(g=$("$T" get "$N" --format json 2>&1 </dev/null); r=$?
echo "@@get $N"; printf '%s\n' "$g"; echo "@@rc $r"
case "$g" in *'"running"'*|*'"Running" : true'*)
  i=$("$T" ip)sh";
  body += options;
  body += R"sh( "$N" 2>&1 </dev/null); r=$?
  echo "@@ip $N"; printf '%s\n' "$i"; echo "@@rc $r";;
esac
echo @@end)sh";
  return Wrap(body);
}

std::string Scripts::Inventory() const {
  // The creates first, then the VMs: a create's steps rename its VM before they remove their
  // marker, so a create seen gone has its VM in the list after it. Listed the other way round,
  // steps that end in between look as if they had made nothing (TartProvider::Create).
  return Wrap(R"sh(if [ -d "$F/run" ]; then
  for c in "$F"/run/*.create; do
    [ -f "$c" ] || continue
    n=${c##*/}; n=${n%.create}
    read -r pid started <"$c" || continue
    if kill -s 0 -- "-$pid" 2>/dev/null; then a=1; else a=0; fi
    echo "@@create $n"; echo "$pid $started $a"; echo "@@rc 0"
  done
fi
echo @@names; "$T" list --source local -q 2>&1; echo "@@rc $?"
echo @@oci; "$T" list --source oci -q 2>&1; echo "@@rc $?"
echo @@end)sh");
}

std::string Scripts::Launch(std::string_view vm, std::chrono::milliseconds settle) const {
  const int64_t steps = (settle.count() + 199) / 200;
  return Wrap(std::string(kDescribeVm) + "N=" + Q(vm) + "\nSTEPS=" + std::to_string(steps) + "\n" +
              R"sh(mkdir -p "$F/run" "$F/log" || exit 70
cd / || exit 70
L="$F/log/$N.log"
echo "--- $(date -u +%Y-%m-%dT%H:%M:%SZ) flotilla starts: tart run --no-graphics" >>"$L"
if [ -x /usr/bin/perl ]; then
  nohup /usr/bin/perl -MPOSIX -e '$SIG{INT} = $SIG{QUIT} = "DEFAULT"; POSIX::setsid(); exec @ARGV or exit 127' "$T" run --no-graphics "$N" </dev/null >>"$L" 2>&1 &
else
  nohup "$T" run --no-graphics "$N" </dev/null >>"$L" 2>&1 &
fi
p=$!
echo "$p $(date +%s)" >"$F/run/$N.pid"
echo "@@pid"; echo "$p"; echo "@@rc 0"
i=0
while [ "$i" -lt "$STEPS" ] && kill -0 "$p" 2>/dev/null; do sleep 0.2; i=$((i + 1)); done
describe "$N"; job "$N"
echo "@@now $(date +%s)"; echo "@@rc 0"
echo @@end)sh");
}

std::string Scripts::RequestShutdown(std::string_view vm, bool macos) const {
  std::string body = "N=" + Q(vm) + "\n";
  body +=
      macos
          ? R"sh("$T" exec "$N" sudo -n shutdown -h now >/dev/null 2>&1)sh"
          : R"sh(read -r pid started <"$F/run/$N.pid" 2>/dev/null && ours "$pid" && kill -s USR2 "$pid")sh";
  return Wrap(body);
}

std::string Scripts::PowerOff(std::string_view vm, int timeout_seconds) const {
  return Wrap("N=" + Q(vm) + "\n" + "\"$T\" stop --timeout " + std::to_string(timeout_seconds) +
              R"sh( "$N"; r=$?
if [ "$r" = 0 ] || [ "$r" = 2 ]; then
  # A tart run that has not taken the VM yet ("not running") would start it after all.
  if [ "$r" = 2 ] && read -r pid started <"$F/run/$N.pid" 2>/dev/null && ours "$pid"; then
    kill -s TERM "$pid"
  fi
  rm -f "$F/run/$N.pid"
fi
exit "$r")sh");
}

std::string Scripts::Delete(std::string_view vm) const {
  return Wrap("N=" + Q(vm) + "\n" + R"sh("$T" delete "$N"; r=$?
if [ "$r" = 0 ] || [ "$r" = 2 ]; then rm -f "$F/run/$N.pid" "$F/log/$N.log"; fi
exit "$r")sh");
}

namespace {

// `--cpu N --memory MIB [--disk-size GB]`, in Tart's units: MiB, and decimal GB (Tart multiplies
// by 1000^3), both rounded up.
std::string SetFlags(uint32_t cpu, Quantity memory, std::optional<Quantity> disk) {
  constexpr uint64_t kGb = uint64_t{1000} * 1000 * 1000;
  std::string flags = " --cpu " + std::to_string(cpu) + " --memory " +
                      std::to_string((memory.bytes() + Quantity::kMiB - 1) / Quantity::kMiB);
  if (disk) {
    flags += " --disk-size " + std::to_string((disk->bytes() + kGb - 1) / kGb);
  }
  return flags;
}

}  // namespace

std::string Scripts::Set(std::string_view vm, uint32_t cpu, Quantity memory,
                         std::optional<Quantity> disk, bool random_mac) const {
  std::string line = "\"$T\" set " + Q(vm) + SetFlags(cpu, memory, disk);
  if (random_mac) {
    line += " --random-mac";
  }
  return Wrap(line);
}

namespace {

std::string Exports(const std::map<std::string, std::string>& values) {
  std::string text;
  for (const auto& [key, value] : values) {
    text += key + "=" + ShellQuote(value) + "; export " + key + "\n";
  }
  return text;
}

}  // namespace

std::string Scripts::Create(std::string_view image, std::string_view temp,
                            std::string_view final_name, bool pull, uint32_t cpu, Quantity memory,
                            std::optional<Quantity> disk,
                            const std::map<std::string, std::string>& registry) const {
  const std::string set_flags = SetFlags(cpu, memory, disk);
  std::string body(kDescribeVm);
  body += "TEMP=" + Q(temp) + "; IMG=" + Q(image) + "; FINAL=" + Q(final_name) + "\n" +
          Exports(registry);
  body += R"sh(mkdir -p "$F/run" || exit 70
C="$F/run/$TEMP.create"
# One script per create: the marker is made only if absent (noclobber: O_EXCL), so a second
# script of the same create (a killed attempt's, reaching the host late) leaves it to the first.
claim() { (set -C; echo "$$ $(date +%s)" >"$C") 2>/dev/null; }
if ! claim; then
  # A marker whose process group is gone was left by a create that died (a reboot, a kill -9);
  # one that cannot be read yet is being written by its owner.
  if read -r pid started <"$C" 2>/dev/null && ! kill -s 0 -- "-$pid" 2>/dev/null; then
    rm -f "$C"; claim || { echo "@@busy"; exit 0; }
  else
    echo "@@busy"; exit 0
  fi
fi
O="$F/run/$TEMP.out"; : >"$O"
step() {
  s=$1; shift
  echo "@@step $s" >>"$O"
  "$@" >>"$O" 2>&1; r=$?
  if [ "$r" != 0 ]; then
    # A clone that was not renamed is nobody's once its attempt has gone: removed here too.
    case "$s" in set|rename) "$T" delete "$TEMP" >/dev/null 2>&1;; esac
    echo "@@failed $s $r" >>"$O"; rm -f "$C"; cat "$O"; rm -f "$O"; exit "$r"
  fi
}
)sh";
  if (pull) {
    body += "step pull \"$T\" pull \"$IMG\"\n";
  }
  body += "step clone \"$T\" clone \"$IMG\" \"$TEMP\"\n";
  body += "step set \"$T\" set \"$TEMP\"" + set_flags + " --random-mac\n";
  body += "step rename \"$T\" rename \"$TEMP\" \"$FINAL\"\n";
  body += R"sh(echo @@done >>"$O"; rm -f "$C"; cat "$O"; rm -f "$O"
describe "$FINAL"; job "$FINAL"
echo "@@now $(date +%s)"; echo "@@rc 0"
echo @@end)sh";
  return Wrap(body);
}

std::string Scripts::CreateAlive(std::string_view temp) const {
  return Wrap(
      "TEMP=" + Q(temp) + "\n" +
      R"sh(if read -r pid started <"$F/run/$TEMP.create" 2>/dev/null && kill -s 0 -- "-$pid" 2>/dev/null; then echo alive; fi)sh");
}

std::string Scripts::CancelCreate(std::string_view temp) const {
  return Wrap("TEMP=" + Q(temp) + "\n" +
              R"sh(if read -r pid started <"$F/run/$TEMP.create" 2>/dev/null; then
  kill -s INT -- "-$pid" 2>/dev/null
  i=0; while kill -s 0 -- "-$pid" 2>/dev/null && [ "$i" -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
  kill -s KILL -- "-$pid" 2>/dev/null
fi
rm -f "$F/run/$TEMP.create" "$F/run/$TEMP.out")sh");
}

std::string Scripts::CreateOutput(std::string_view temp) const {
  return Wrap(
      "TEMP=" + Q(temp) + "\n" +
      R"sh(cat "$F/run/$TEMP.out" 2>/dev/null; rm -f "$F/run/$TEMP.create" "$F/run/$TEMP.out")sh");
}

std::string Scripts::Rename(std::string_view from, std::string_view to) const {
  return Wrap("\"$T\" rename " + Q(from) + " " + Q(to));
}

std::string Scripts::Pull(std::string_view image,
                          const std::map<std::string, std::string>& registry) const {
  return Wrap(Exports(registry) + "\"$T\" pull " + Q(image) + " >/dev/null");
}

std::string Scripts::ExecCommand(std::string_view vm) const {
  std::string command =
      "exec /usr/bin/env -i HOME=\"$HOME\" LC_ALL=C " +
      (settings_.tart_home.empty() ? std::string("${TART_HOME:+TART_HOME=\"$TART_HOME\"}")
                                   : "TART_HOME=" + TartHome());
  command += " " + Q(settings_.tart_path) + " exec -i " + Q(vm) + " /bin/sh -s";
  return command;
}

std::string Scripts::ExecInput(std::string_view script,
                               const std::map<std::string, std::string>& env) {
  std::string input = Exports(env);
  input += "(\n";
  input += script;
  input += "\n) </dev/null\n";
  input += "printf '\\n__FLOTILLA_EXIT=%d\\n' \"$?\"\nexit 0\n";
  return input;
}

std::optional<int> Scripts::ParseExecTrailer(std::string& out) {
  constexpr std::string_view kTrailer = "\n__FLOTILLA_EXIT=";
  const size_t at = out.rfind(kTrailer);
  if (at == std::string::npos) {
    return std::nullopt;
  }
  int code = 0;
  size_t i = at + kTrailer.size();
  if (i >= out.size() || std::isdigit(static_cast<unsigned char>(out[i])) == 0) {
    return std::nullopt;
  }
  for (; i < out.size() && std::isdigit(static_cast<unsigned char>(out[i])) != 0; ++i) {
    code = code * 10 + (out[i] - '0');
  }
  out.erase(at);
  return code;
}

}  // namespace flotilla::providers::tart
