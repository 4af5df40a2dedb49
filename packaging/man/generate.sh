#!/usr/bin/env bash
# Writes Flotilla's man pages, each compressed with gzip -9n, into OUT/man1 and OUT/man5:
#   flotilla(1), and flotilla-COMMAND(1) for every command `flotilla --help` lists, and
#   flotilla-COMMAND-SUB(1) for every command that command's help lists in turn
#   (flotilla-store-backup(1)): the list is read off the binary, so a new command gets its page
#   with no change here;
#   flotilla-hostsim(1) and flotilla-tartsim(1);
#   flotilla.yaml(5), from the maintained source packaging/man/flotilla.yaml.5.
# The pages of the commands are written by help2man from each one's --help: see
# packaging/CMakeLists.txt for why help2man.
#
# Usage: generate.sh OUT VERSION FLOTILLA HOSTSIM TARTSIM SOURCE_DIR
set -euo pipefail

if (($# != 6)); then
  echo "usage: $0 OUT VERSION FLOTILLA HOSTSIM TARTSIM SOURCE_DIR" >&2
  exit 2
fi
out=$1
version=$2
flotilla=$3
hostsim=$4
tartsim=$5
source_dir=$6

# A sanitizer build's binaries would report the leaks of a process that prints its help and
# exits; the help is what is wanted here.
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0
export LC_ALL=C.UTF-8
# The month on the pages: the build's SOURCE_DATE_EPOCH when it sets one (help2man reads it
# too), so that a rebuild of the same sources gives the same pages.
month=$(date -u -d "@${SOURCE_DATE_EPOCH:-$(date +%s)}" '+%B %Y')

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/bin" "$work/man1" "$work/man5" "$work/include"

# The commands a CLI11 help lists under "Subcommands:", one "NAME<TAB>DESCRIPTION" a line: the
# description's lines (CLI11 indents the continuation lines) joined with spaces.
subcommands() {
  awk '
    function flush() { if (name != "") { print name "\t" text }; name = "" }
    /^Subcommands:/ { inside = 1; next }
    inside && /^[^ ]/ { flush(); inside = 0 }
    inside && /^  [a-z]/ {
      flush()
      name = $1
      text = $0
      sub(/^  [^ ]+ +/, "", text)
      next
    }
    inside && /^   +[^ ]/ { line = $0; sub(/^ +/, "", line); text = text " " line }
    END { flush() }
  ' <<<"$1"
}

# help2man's NAME line: the description up to the end of its first sentence or its first
# colon, its first letter in lower case (unless it begins an abbreviation) and no full stop, as
# man pages write it ("flotilla-status - what the fleet looks like now").
whatis() {
  local text=$1
  text=${text%%. *}
  text=${text%%: *}
  text=${text%.}
  if [[ "$text" =~ ^[A-Z][a-z] ]]; then
    text=${text,}
  fi
  printf '%s' "$text"
}

# Runs help2man on EXECUTABLE (a wrapper named like the page) with NAME_TEXT and an include
# file, into $work/man1/PAGE.1.
page() {
  local executable=$1 name_text=$2 include=$3
  local page
  page=$(basename "$executable")
  help2man --no-info --no-discard-stderr --section 1 --manual "Flotilla Manual" \
    --source "flotilla $version" --version-string "$version" --name "$name_text" \
    --include "$include" --output "$work/man1/$page.1" "$executable"
}

see_also_all=()

# Pages of `flotilla WORDS... --help`'s commands, recursively. PREFIX is the page name so far
# ("flotilla-store"), WORDS the command words ("store").
command_pages() {
  local prefix=$1
  shift
  local help
  help=$("$flotilla" "$@" --help)
  local name description
  while IFS=$'\t' read -r name description; do
    [[ -n "$name" ]] || continue
    local wrapper="$work/bin/$prefix-$name"
    printf '#!/usr/bin/env bash\nexec %q %s %q "$@"\n' "$flotilla" "$*" "$name" >"$wrapper"
    chmod +x "$wrapper"
    see_also_all+=("$prefix-$name")
    # Its parent's page, and flotilla.yaml(5) where it reads the configuration.
    {
      echo '[SEE ALSO]'
      if "$wrapper" --help | grep -q -- '--config'; then
        printf '.BR %s (1),\n.BR flotilla.yaml (5)\n' "${prefix//-/\\-}"
      else
        printf '.BR %s (1)\n' "${prefix//-/\\-}"
      fi
    } >"$work/include/$prefix-$name"
    page "$wrapper" "$(whatis "$description")" "$work/include/$prefix-$name"
    command_pages "$prefix-$name" "$@" "$name"
  done < <(subcommands "$help")
}

command_pages flotilla

# flotilla(1) names every other page.
{
  echo '[SEE ALSO]'
  for name in "${see_also_all[@]}"; do
    printf '.BR %s (1),\n' "${name//-/\\-}"
  done
  echo '.BR flotilla.yaml (5),'
  echo '.BR flotilla\-hostsim (1),'
  echo '.BR flotilla\-tartsim (1).'
  echo '.PP'
  echo 'The documentation in'
  echo '.IR /usr/share/doc/flotilla/ :'
  echo '.I operations.md'
  echo '(installing, configuring and running Flotilla),'
  echo '.I manifests.md'
  echo '(every field of HostPool, VMSet and flotilla.yaml) and'
  echo '.I api.md'
  echo '(the HTTP API and its metrics).'
} >"$work/include/flotilla"
page "$flotilla" "keep a fleet of virtual machines equal to a Git repository" \
  "$work/include/flotilla"

printf '[SEE ALSO]\n.BR flotilla (1),\n.BR flotilla\\-tartsim (1)\n' >"$work/include/hostsim"
page "$hostsim" "simulator of Parallels Desktop hosts for testing flotilla" "$work/include/hostsim"
# Tart's help says "USAGE: tart <subcommand>", which help2man does not take for a synopsis.
cat >"$work/include/tartsim" <<'END'
[SYNOPSIS]
.B flotilla\-tartsim
.I subcommand
.RI [ arguments ]
.br
.B tart
.I subcommand
.RI [ arguments ]
(called through a link named tart)
[ENVIRONMENT]
.TP
.B TART_HOME
The folder of Tart's state, as with the real
.BR tart :
.IR vms/ ,
.I cache/OCIs/
and
.IR tmp/ .
Default:
.IR ~/.tart .
[FILES]
.TP
.I $TART_HOME/.fake/config.json
The fake's own settings (the Tart version it answers as, the simulated host, latencies and
faults), read again by every call.
.TP
.I $TART_HOME/.fake/
Everything else only the fake keeps: the registry's images, DHCP leases, the guests' files.
[NOTES]
The name it is called by picks the tool:
.B tart
(or any other name),
.BR sysctl ,
.BR sw_vers ,
.BR df ,
.B sudo
or
.BR shutdown ;
tests and
.B flotilla dev
call it through symbolic links.
What it reproduces of Tart, version by version, is described in docs/providers.md of
Flotilla's sources.
[SEE ALSO]
.BR flotilla (1),
.BR flotilla\-hostsim (1)
END
# The fake reads its settings under TART_HOME even to print its help: give it an empty one.
TART_HOME="$work/tart-home" page "$tartsim" \
  "fake of the tart command of a Mac, for testing flotilla" "$work/include/tartsim"

sed -e "s/@FLOTILLA_VERSION@/$version/g" -e "s/@MONTH@/$month/g" \
  "$source_dir/packaging/man/flotilla.yaml.5" >"$work/man5/flotilla.yaml.5"

for file in "$work"/man1/*.1 "$work"/man5/*.5; do
  gzip -9n "$file"
done
chmod 0644 "$work"/man1/* "$work"/man5/*

# Replace the previous pages, so that a command that is gone leaves no page behind.
mkdir -p "$out"
rm -rf "$out/man1" "$out/man5"
mv "$work/man1" "$work/man5" "$out/"
