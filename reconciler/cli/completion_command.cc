#include "reconciler/cli/completion_command.h"

#include <algorithm>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <sstream>

#include "reconciler/manifest/loader.h"

#ifndef FLOTILLA_VERSION
#define FLOTILLA_VERSION "unknown"
#endif

namespace flotilla::cli {
namespace {

namespace fs = std::filesystem;

// What a flag's value is, by its long name, where CLI11 has no fixed list of choices. Flags not
// named here take free text (a URL, a duration, a revision).
ValueKind KindOfFlag(const std::string& name) {
  static const std::map<std::string, ValueKind, std::less<>> kKinds = {
      {"pool", ValueKind::kPool},
      {"pools", ValueKind::kPool},
      {"vmset", ValueKind::kVmSet},
      {"host", ValueKind::kHost},
      {"dir", ValueKind::kDir},
      {"state-dir", ValueKind::kDir},
      {"secrets-dir", ValueKind::kDir},
      {"mirror-dir", ValueKind::kDir},
      {"repo", ValueKind::kDir},
      {"config", ValueKind::kFile},
      {"token-file", ValueKind::kFile},
      {"ca-file", ValueKind::kFile},
      {"plan", ValueKind::kFile},
      {"inventory", ValueKind::kFile},
      {"out", ValueKind::kFile},
      {"ssh-key-file", ValueKind::kFile},
      {"ssh-passphrase-file", ValueKind::kFile},
      {"known-hosts-file", ValueKind::kFile},
  };
  const auto found = kKinds.find(name);
  return found == kKinds.end() ? ValueKind::kText : found->second;
}

// CLI11 spells an IsMember check "TEXT:{a,b,c}" in the option's type name.
std::vector<std::string> ChoicesOf(const CLI::Option& option) {
  const std::string type = option.get_type_name();
  const size_t open = type.find('{');
  const size_t close = type.find('}', open);
  std::vector<std::string> choices;
  if (open == std::string::npos || close == std::string::npos) {
    return choices;
  }
  std::stringstream words(type.substr(open + 1, close - open - 1));
  for (std::string word; std::getline(words, word, ',');) {
    choices.push_back(word);
  }
  return choices;
}

std::string FirstLine(const std::string& text) { return text.substr(0, text.find('\n')); }

CommandSpec Describe(const CLI::App& app) {
  CommandSpec spec{.name = app.get_parent() == nullptr ? "" : app.get_name(),
                   .help = FirstLine(app.get_description())};
  for (const CLI::Option* option : app.get_options()) {
    if (option->get_group().empty()) {
      continue;  // hidden
    }
    const std::vector<std::string> choices = ChoicesOf(*option);
    if (option->get_positional() && !option->nonpositional()) {
      spec.operand = !choices.empty() ? ValueKind::kChoice : ValueKind::kFile;
      spec.operand_choices = choices;
      continue;
    }
    FlagSpec flag{.help = FirstLine(option->get_description())};
    for (const std::string& s : option->get_snames()) {
      flag.names.push_back("-" + s);
    }
    for (const std::string& l : option->get_lnames()) {
      flag.names.push_back("--" + l);
    }
    if (option->get_expected_max() > 0) {
      const std::string long_name = option->get_lnames().empty() ? "" : option->get_lnames()[0];
      flag.value = !choices.empty() ? ValueKind::kChoice : KindOfFlag(long_name);
      flag.choices = choices;
      flag.list = long_name == "pools";
    }
    spec.flags.push_back(flag);
  }
  for (const CLI::App* sub : app.get_subcommands({})) {
    if (!sub->get_group().empty()) {
      spec.commands.push_back(Describe(*sub));
    }
  }
  return spec;
}

// Every command of the tree with its path ("", "plan", "store check"), parents first.
void Walk(const CommandSpec& command, const std::string& path,
          const std::function<void(const std::string&, const CommandSpec&)>& visit) {
  visit(path, command);
  for (const CommandSpec& sub : command.commands) {
    Walk(sub, path.empty() ? sub.name : path + " " + sub.name, visit);
  }
}

std::string Join(const std::vector<std::string>& words, const std::string& separator = " ") {
  std::string text;
  for (const std::string& word : words) {
    text += (text.empty() ? "" : separator) + word;
  }
  return text;
}

// The value word the scripts share: "choice:a b c", "file", "dir", "pools", "vmsets", "hosts",
// "text"; "" for a flag without a value.
std::string KindWord(ValueKind kind, const std::vector<std::string>& choices) {
  switch (kind) {
    case ValueKind::kNone:
      return "";
    case ValueKind::kText:
      return "text";
    case ValueKind::kChoice:
      return "choice:" + Join(choices);
    case ValueKind::kFile:
      return "file";
    case ValueKind::kDir:
      return "dir";
    case ValueKind::kPool:
      return "pools";
    case ValueKind::kVmSet:
      return "vmsets";
    case ValueKind::kHost:
      return "hosts";
  }
  return "text";
}

// Single-quoted for sh, bash, zsh and fish alike (fish also reads \' inside single quotes, but
// no text here holds a quote after Quote() replaces it).
std::string Quote(const std::string& text) {
  std::string out = "'";
  for (char c : text) {
    out += c == '\'' ? '`' : c;
  }
  return out + "'";
}

// The shell functions bash and zsh share, as `case` tables over the command path:
//   _flotilla_commands PATH     the commands below PATH (words)
//   _flotilla_flags PATH        its flags (words)
//   _flotilla_value PATH FLAG   what FLAG takes (KindWord; "" none)
//   _flotilla_operand PATH      what its operands are
std::string CaseTables(const CommandSpec& root) {
  std::string commands = "_flotilla_commands() {\n  case \"$1\" in\n";
  std::string flags = "_flotilla_flags() {\n  case \"$1\" in\n";
  std::string values = "_flotilla_value() {\n  case \"$1 $2\" in\n";
  std::string operands = "_flotilla_operand() {\n  case \"$1\" in\n";
  Walk(root, "", [&](const std::string& path, const CommandSpec& command) {
    std::vector<std::string> subs;
    for (const CommandSpec& sub : command.commands) {
      subs.push_back(sub.name);
    }
    if (!subs.empty()) {
      commands += "    " + Quote(path) + ") echo " + Quote(Join(subs)) + " ;;\n";
    }
    std::vector<std::string> names;
    for (const FlagSpec& flag : command.flags) {
      names.insert(names.end(), flag.names.begin(), flag.names.end());
      const std::string kind = KindWord(flag.value, flag.choices);
      for (const std::string& name : flag.names) {
        if (!kind.empty()) {
          values += "    " + Quote(path + " " + name) + ") echo " + Quote(kind) + " ;;\n";
        }
      }
    }
    flags += "    " + Quote(path) + ") echo " + Quote(Join(names)) + " ;;\n";
    const std::string operand = KindWord(command.operand, command.operand_choices);
    if (!operand.empty()) {
      operands += "    " + Quote(path) + ") echo " + Quote(operand) + " ;;\n";
    }
  });
  const std::string end = "  esac\n}\n";
  return commands + end + flags + end + values + end + operands + end;
}

std::string Header(const std::string& shell, const std::string& install) {
  return "# " + shell + " completion for flotilla, made by `flotilla completion " + shell +
         "` (flotilla " FLOTILLA_VERSION ").\n# " + install + "\n";
}

// The command path, the flag whose value the current word is, and the first operand (where
// names are read), from the words before the current one. Shared by bash and zsh (1-based
// `words` in zsh, 0-based COMP_WORDS in bash: the caller passes them as arguments).
constexpr const char* kWalk =
    R"sh(# Sets _fl_path (the command path), _fl_value (the flag the next word is the value of) and
# _fl_dir (the first operand: a folder of manifests) from the words given (after the program).
_flotilla_walk() {
  _fl_path='' _fl_value='' _fl_dir=''
  local w
  for w in "$@"; do
    if [[ -n $_fl_value ]]; then
      [[ $w == = ]] && continue  # bash splits --flag=value at the '='
      _fl_value=''
      continue
    fi
    case $w in
      --*=*) ;;
      -*) [[ -n $(_flotilla_value "$_fl_path" "$w") ]] && _fl_value=$w ;;
      *)
        if [[ " $(_flotilla_commands "$_fl_path") " == *" $w "* ]]; then
          _fl_path=${_fl_path:+$_fl_path }$w
        elif [[ -z $_fl_dir ]]; then
          _fl_dir=$w
        fi
        ;;
    esac
  done
}

# Pool, VM set or host names from the manifests of the line's operand, else of the current
# folder when it is a Git work tree (read by flotilla itself; nothing leaves the machine).
_flotilla_names() {
  local program=$1 kind=$2 dir=$3
  if [[ -n $dir ]]; then
    "$program" completion --names "$kind" --path "$dir" 2>/dev/null
  else
    "$program" completion --names "$kind" 2>/dev/null
  fi
}
)sh";

}  // namespace

CommandSpec DescribeCommands(const CLI::App& app) { return Describe(app); }

std::string BashCompletion(const CommandSpec& root) {
  return Header("bash",
                "Installed as /usr/share/bash-completion/completions/flotilla by the package; "
                "or: source <(flotilla completion bash)") +
         CaseTables(root) + kWalk + R"sh(
# Offers what kind $1 allows for the word $2 (names read with program $3 below folder $4).
_flotilla_offer() {
  local kind=$1 cur=$2 prefix=''
  case $kind in
    choice:*) mapfile -t COMPREPLY < <(compgen -W "${kind#choice:}" -- "$cur") ;;
    file) compopt -o filenames 2>/dev/null; mapfile -t COMPREPLY < <(compgen -f -- "$cur") ;;
    dir) compopt -o filenames 2>/dev/null; mapfile -t COMPREPLY < <(compgen -d -- "$cur") ;;
    pools | vmsets | hosts)
      if [[ $cur == *,* ]]; then  # --pools a,b: complete the last name of the list
        prefix=${cur%,*},
        cur=${cur##*,}
      fi
      mapfile -t COMPREPLY < <(compgen -P "$prefix" -W "$(_flotilla_names "$3" "$kind" "$4")" -- "$cur")
      ;;
  esac
}

_flotilla() {
  local cur=${COMP_WORDS[COMP_CWORD]}
  COMPREPLY=()
  _flotilla_walk "${COMP_WORDS[@]:1:COMP_CWORD-1}"
  local flag=$_fl_value
  if [[ $cur == = && -n $flag ]]; then
    cur=''
  elif [[ -z $flag && $cur == --*=* ]]; then  # '=' taken out of COMP_WORDBREAKS
    flag=${cur%%=*}
    cur=${cur#*=}
  fi
  if [[ -n $flag ]]; then
    _flotilla_offer "$(_flotilla_value "$_fl_path" "$flag")" "$cur" "${COMP_WORDS[0]}" "$_fl_dir"
    return 0
  fi
  if [[ $cur == -* ]]; then
    mapfile -t COMPREPLY < <(compgen -W "$(_flotilla_flags "$_fl_path")" -- "$cur")
    return 0
  fi
  local commands
  commands=$(_flotilla_commands "$_fl_path")
  if [[ -n $commands ]]; then
    mapfile -t COMPREPLY < <(compgen -W "$commands" -- "$cur")
    return 0
  fi
  _flotilla_offer "$(_flotilla_operand "$_fl_path")" "$cur" "${COMP_WORDS[0]}" "$_fl_dir"
  return 0
}

complete -F _flotilla flotilla
)sh";
}

std::string ZshCompletion(const CommandSpec& root) {
  // Descriptions for _describe: "name:help" per command and per flag.
  std::string described = "_flotilla_described() {\n  case \"$1\" in\n";
  Walk(root, "", [&](const std::string& path, const CommandSpec& command) {
    std::vector<std::string> entries;
    for (const CommandSpec& sub : command.commands) {
      entries.push_back(Quote(sub.name + ":" + sub.help));
    }
    described += "    " + Quote("commands " + path) + ") reply=(" + Join(entries) + ") ;;\n";
    entries.clear();
    for (const FlagSpec& flag : command.flags) {
      for (const std::string& name : flag.names) {
        entries.push_back(Quote(name + ":" + flag.help));
      }
    }
    described += "    " + Quote("flags " + path) + ") reply=(" + Join(entries) + ") ;;\n";
  });
  described += "    *) reply=() ;;\n  esac\n}\n";
  return "#compdef flotilla\n" +
         Header("zsh",
                "Installed as /usr/share/zsh/vendor-completions/_flotilla by the package; or: "
                "source <(flotilla completion zsh) after compinit") +
         "compdef _flotilla flotilla\n\n" + CaseTables(root) + described + kWalk + R"sh(
_flotilla_offer() {
  local kind=$1
  local -a names
  case $kind in
    choice:*) compadd -- ${=kind#choice:} ;;
    file) _files ;;
    dir) _files -/ ;;
    pools | vmsets | hosts)
      names=(${(f)"$(_flotilla_names "$2" "$kind" "$3")"})
      if [[ $kind == pools ]]; then
        compset -P '*,'  # --pools a,b: complete the last name of the list
      fi
      compadd -- $names
      ;;
  esac
}

_flotilla() {
  local -a reply
  _flotilla_walk "${(@)words[2,CURRENT-1]}"
  local cur=${words[CURRENT]} flag=$_fl_value
  if [[ -z $flag && $cur == --*=* ]]; then
    flag=${cur%%=*}
    compset -P '*='
  fi
  if [[ -n $flag ]]; then
    _flotilla_offer "$(_flotilla_value "$_fl_path" "$flag")" "${words[1]}" "$_fl_dir"
    return
  fi
  if [[ $cur == -* ]]; then
    _flotilla_described "flags $_fl_path"
    _describe -t options 'option' reply
    return
  fi
  _flotilla_described "commands $_fl_path"
  if (( ${#reply} )); then
    _describe -t commands 'command' reply
    return
  fi
  _flotilla_offer "$(_flotilla_operand "$_fl_path")" "${words[1]}" "$_fl_dir"
}

# Autoloaded from fpath, the file's body runs as _flotilla: complete now. Sourced: only define.
if [[ ${funcstack[1]} == _flotilla ]]; then
  _flotilla "$@"
fi
)sh";
}

std::string FishCompletion(const CommandSpec& root) {
  std::string tables = "function __flotilla_commands\n    switch \"$argv[1]\"\n";
  std::string takes = "function __flotilla_takes_value\n    switch \"$argv[1] $argv[2]\"\n";
  std::string completions;
  std::vector<std::string> value_flags;
  Walk(root, "", [&](const std::string& path, const CommandSpec& command) {
    std::vector<std::string> subs;
    const std::string at = "-n \"__flotilla_at '" + path + "'\"";
    for (const CommandSpec& sub : command.commands) {
      subs.push_back(sub.name);
      completions += "complete -c flotilla " + at + " -f -a " + Quote(sub.name) + " -d " +
                     Quote(sub.help) + "\n";
    }
    if (!subs.empty()) {
      tables += "        case " + Quote(path) + "\n            echo " +
                Join(subs, "\n            echo ") + "\n";
    }
    for (const FlagSpec& flag : command.flags) {
      std::string names;
      for (const std::string& name : flag.names) {
        names += name.starts_with("--") ? " -l " + name.substr(2) : " -s " + name.substr(1);
        if (flag.value != ValueKind::kNone) {
          value_flags.push_back(Quote(path + " " + name));
        }
      }
      std::string value;
      switch (flag.value) {
        case ValueKind::kNone:
          break;
        case ValueKind::kText:
          value = " -x";
          break;
        case ValueKind::kChoice:
          value = " -x -a " + Quote(Join(flag.choices));
          break;
        case ValueKind::kFile:
          value = " -r -F";
          break;
        case ValueKind::kDir:
          value = " -x -a '(__fish_complete_directories)'";
          break;
        case ValueKind::kPool:
          value = " -x -a '(__flotilla_names pools " + std::string(flag.list ? "list" : "") + ")'";
          break;
        case ValueKind::kVmSet:
          value = " -x -a '(__flotilla_names vmsets)'";
          break;
        case ValueKind::kHost:
          value = " -x -a '(__flotilla_names hosts)'";
          break;
      }
      completions +=
          "complete -c flotilla " + at + names + value + " -d " + Quote(flag.help) + "\n";
    }
    if (command.operand == ValueKind::kChoice) {
      completions +=
          "complete -c flotilla " + at + " -f -a " + Quote(Join(command.operand_choices)) + "\n";
    } else if (command.operand == ValueKind::kFile) {
      completions += "complete -c flotilla " + at + " -F\n";
    }
  });
  tables += "    end\nend\n";
  for (const std::string& flag : value_flags) {
    takes += "        case " + flag + "\n            return 0\n";
  }
  takes += "    end\n    return 1\nend\n";
  return Header("fish",
                "Installed as /usr/share/fish/vendor_completions.d/flotilla.fish by the package; "
                "or: flotilla completion fish | source") +
         tables + takes + R"sh(
# Sets the command path and the first operand (a folder of manifests) of the line so far.
function __flotilla_walk
    set -l tokens (commandline -opc)
    set -e tokens[1]
    set -g __flotilla_path ''
    set -g __flotilla_dir ''
    set -l skip 0
    for w in $tokens
        if test $skip = 1
            set skip 0
            continue
        end
        switch $w
            case '--*=*'
            case '-*'
                if __flotilla_takes_value "$__flotilla_path" $w
                    set skip 1
                end
            case '*'
                if contains -- $w (__flotilla_commands "$__flotilla_path")
                    set -g __flotilla_path (string trim -- "$__flotilla_path $w")
                else if test -z "$__flotilla_dir"
                    set -g __flotilla_dir $w
                end
        end
    end
end

function __flotilla_at
    __flotilla_walk
    test "$__flotilla_path" = "$argv[1]"
end

# Pool, VM set or host names from the manifests of the line's operand, else of the current
# folder when it is a Git work tree (read by flotilla itself; nothing leaves the machine).
function __flotilla_names
    __flotilla_walk
    set -l program (commandline -opc)[1]
    set -l names
    if test -n "$__flotilla_dir"
        set names ($program completion --names $argv[1] --path $__flotilla_dir 2>/dev/null)
    else
        set names ($program completion --names $argv[1] 2>/dev/null)
    end
    if test "$argv[2]" = list  # --pools a,b: complete the last name of the list
        set -l current (commandline -ct | string replace -r '^--[^=]*=' '')
        set -l prefix (string match -r '^.*,' -- $current)
        test -n "$prefix"; or set prefix ''  # an empty list would empty the product below
        printf '%s\n' $prefix$names
    else
        printf '%s\n' $names
    end
end

complete -c flotilla -f
)sh" + completions;
}

CLI::App* AddCompletionCommand(CLI::App& app, CompletionOptions& options) {
  CLI::App* cmd = app.add_subcommand(
      "completion",
      "Print a completion script for bash, zsh or fish: commands, flags, their fixed values, and "
      "pool, VM set and host names from the manifests of the line's folder (or of the current "
      "folder, when it is a Git work tree). The Debian package installs all three. By hand: "
      "'source <(flotilla completion bash)' in ~/.bashrc, 'source <(flotilla completion zsh)' "
      "in ~/.zshrc after compinit, 'flotilla completion fish | source' in fish's config.fish.");
  cmd->add_option("SHELL", options.shell, "bash, zsh or fish")
      ->check(CLI::IsMember({"bash", "zsh", "fish"}));
  // What the scripts call for names; not for people.
  cmd->add_option("--names", options.names, "pools, vmsets or hosts")
      ->check(CLI::IsMember({"pools", "vmsets", "hosts"}))
      ->group("");
  cmd->add_option("--path", options.path, "Folder (or file) of manifests")->group("");
  return cmd;
}

namespace {

// Names of `kind` in the manifests below `path`; nothing (never an error) when they cannot be
// read: a completion must not print messages into the user's command line.
std::vector<std::string> NamesIn(const std::string& kind, const std::string& path,
                                 const Context& context) {
  std::error_code ec;
  if (path.empty() || !fs::exists(path, ec)) {
    return {};
  }
  Result<manifest::LoadResult> loaded = context.loader.LoadPath(path, path);
  if (!loaded.ok()) {
    return {};
  }
  std::set<std::string> names;
  for (const HostPool& pool : loaded->desired.pools) {
    if (kind == "pools") {
      names.insert(pool.meta.name);
    }
    for (const HostSpec& host : pool.hosts) {
      if (kind == "hosts") {
        names.insert(host.name);
      }
    }
  }
  for (const VMSet& set : loaded->desired.sets) {
    if (kind == "vmsets") {
      names.insert(set.meta.name);
    }
  }
  return {names.begin(), names.end()};
}

}  // namespace

int RunCompletion(const CompletionOptions& options, const CLI::App& root, const Context& context) {
  if (!options.names.empty()) {
    std::string path = options.path;
    std::error_code ec;
    if (path.empty() && fs::exists(".git", ec)) {
      path = ".";  // the current folder, when it is a fleet repository's work tree
    }
    for (const std::string& name : NamesIn(options.names, path, context)) {
      context.out << name << "\n";
    }
    return 0;
  }
  const CommandSpec spec = DescribeCommands(root);
  if (options.shell == "bash") {
    context.out << BashCompletion(spec);
  } else if (options.shell == "zsh") {
    context.out << ZshCompletion(spec);
  } else if (options.shell == "fish") {
    context.out << FishCompletion(spec);
  } else {
    context.err << "flotilla completion: name a shell: bash, zsh or fish\n";
    return 1;
  }
  return 0;
}

}  // namespace flotilla::cli
