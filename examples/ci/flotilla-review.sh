#!/bin/sh
# Reviews a change to a fleet repository as a pull-request check does: validates the head
# revision, plans it against the base revision with `flotilla diff`, and writes the body of the
# review comment. The GitHub and GitLab examples beside this file run it; so does
# tests/e2e/ci_example_test.cc, which keeps examples/ci/README.md's sample comment true.
#
# usage: flotilla-review.sh --base REV [--head REV] [--path DIR] [--inventory FILE] [--out DIR]
#
# Run it from a checkout of the head revision (--head, default HEAD): the working tree is what
# `flotilla validate` checks. --path is the folder of the manifests, from the repository's root
# (default: the root). --inventory is a snapshot from the loop's API (GET /api/v1/inventory) to
# preview placement on the live fleet; without it the base revision is stood up on the hosts
# the manifests declare. Needs flotilla ($FLOTILLA, default `flotilla` on PATH) and jq.
#
# Writes into DIR (default flotilla-review/):
#   validate.txt, validate.json   flotilla validate, for people and for programs
#   plan.md, plan.json, diff.err  flotilla diff (only when the head validates)
#   comment.md                    the comment, starting with the marker <!-- flotilla-plan -->
#                                 by which the CI jobs find their previous comment to update it
#
# Exit status: 0 the check passes (changes or not); 1 it fails: the manifests do not validate,
# a VM would find no host (unschedulable), or flotilla diff could not plan (comment.md says
# which, and is written in every one of these cases); 2 bad usage, or flotilla or jq
# missing: no comment.

# Backticks in single quotes are Markdown code spans, not command substitutions.
# shellcheck disable=SC2016
set -eu

marker='<!-- flotilla-plan -->'
# GitHub refuses comments over 65,536 characters; past this the plan's details are left out.
max_comment_bytes=60000
max_validate_lines=200

usage() {
  echo "usage: $0 --base REV [--head REV] [--path DIR] [--inventory FILE] [--out DIR]" >&2
  exit 2
}

base=
head=HEAD
path=.
inventory=
out='flotilla-review'
while [ $# -ge 2 ]; do
  case $1 in
    --base) base=$2 ;;
    --head) head=$2 ;;
    --path) path=$2 ;;
    --inventory) inventory=$2 ;;
    --out) out=$2 ;;
    *) usage ;;
  esac
  shift 2
done
if [ $# -ne 0 ] || [ -z "$base" ]; then
  usage
fi
# flotilla diff names folders from the repository's root exactly: "fleet", not "./fleet/".
path=${path#./}
path=${path%/}
path=${path:-.}
flotilla=${FLOTILLA:-flotilla}
if ! command -v "$flotilla" >/dev/null 2>&1; then
  echo "$0: cannot find $flotilla (set FLOTILLA to the binary)" >&2
  exit 2
fi
if ! command -v jq >/dev/null 2>&1; then
  echo "$0: needs jq (apt-get install jq)" >&2
  exit 2
fi

NO_COLOR=1
export NO_COLOR
mkdir -p "$out"
rm -f "$out/validate.txt" "$out/validate.json" "$out/plan.md" "$out/plan.json" \
  "$out/diff.err" "$out/comment.md"

# 1. Validate the head, as people read it (comment) and as programs do (annotations).
valid=yes
"$flotilla" validate "$path" >"$out/validate.txt" 2>&1 || valid=no
"$flotilla" validate --format json "$path" >"$out/validate.json" 2>/dev/null || true

# 2. Plan head against base. The JSON plan (schemas/plan.v1.json) counts the unschedulable
# VMs: flotilla diff --fail-on-unschedulable would exit 1, which errors do too.
set -- --base "$base" --head "$head"
if [ "$path" != . ]; then
  set -- "$@" --path "$path"
fi
if [ -n "$inventory" ]; then
  set -- "$@" --inventory "$inventory"
fi
reproduce="flotilla diff $*"
planned=no
changes=no
unschedulable=0
if [ "$valid" = yes ]; then
  diff_status=0
  "$flotilla" diff "$@" --format markdown --out "$out/plan.json" >"$out/plan.md" \
    2>"$out/diff.err" || diff_status=$?
  # 0 no changes, 2 changes, 3 nothing can be done but VMs find no host or deletions are
  # refused (both shown in the comment), 1 error.
  case $diff_status in
    0 | 2 | 3)
      planned=yes
      if [ "$diff_status" -ne 0 ]; then
        changes=yes
      fi
      unschedulable=$(jq -r '.summary.unschedulable' "$out/plan.json")
      ;;
  esac
fi

# 3. The verdict.
if [ "$valid" = no ]; then
  verdict=':x: **Flotilla review failed**: the manifests do not validate, so there is no plan.'
  summary='failed: the manifests do not validate'
elif [ "$planned" = no ]; then
  verdict=':x: **Flotilla review failed**: `flotilla diff` could not plan the change.'
  summary='failed: flotilla diff could not plan the change'
elif [ "$unschedulable" -gt 0 ]; then
  if [ "$unschedulable" -eq 1 ]; then
    vms='1 VM'
  else
    vms="$unschedulable VMs"
  fi
  verdict=":x: **Flotilla review failed**: $vms would find no host (\`! unschedulable\` below)."
  summary="failed: $vms unschedulable"
elif [ "$changes" = yes ]; then
  verdict=':white_check_mark: **Flotilla review passed**: the manifests are valid and every VM finds a host.'
  summary='passed, with changes'
else
  verdict=':white_check_mark: **Flotilla review passed**: the manifests are valid and the fleet does not change.'
  summary='passed, no changes'
fi

fenced() {
  printf '```text\n'
  head -n "$max_validate_lines" "$1"
  lines=$(wc -l <"$1")
  if [ "$lines" -gt "$max_validate_lines" ]; then
    echo "... $((lines - max_validate_lines)) more lines in ${1##*/} of the job's artifacts"
  fi
  printf '```\n'
}

# $1: "full" for the whole plan, "short" for its summary and table only.
comment() {
  printf '%s\n%s\n\n' "$marker" "$verdict"
  if [ "$valid" = no ]; then
    printf 'Validation of `%s`:\n\n' "$path"
    fenced "$out/validate.txt"
    printf '\n<sub>Reproduce: <code>flotilla validate %s</code></sub>\n' "$path"
    return
  fi
  # Where placement came from is the plan's own header (flotilla diff says it).
  printf -- '- Validation of `%s`: %s\n\n' "$path" "$(tail -n 1 "$out/validate.txt")"
  if [ "$(wc -l <"$out/validate.txt")" -gt 1 ]; then
    printf '<details><summary>Validation messages</summary>\n\n'
    fenced "$out/validate.txt"
    printf '\n</details>\n\n'
  fi
  if [ -s "$out/diff.err" ]; then
    printf '`flotilla diff` says:\n\n'
    fenced "$out/diff.err"
    printf '\n'
  fi
  if [ "$planned" = yes ]; then
    if [ "$1" = full ]; then
      cat "$out/plan.md"
    else
      sed '/^<details>/,$d' "$out/plan.md"
      echo "The plan is too long for a comment: every VM's actions are in plan.md and plan.json" \
        "of the job's artifacts."
    fi
    printf '\n'
  fi
  printf '<sub>Reproduce: <code>%s</code></sub>\n' "$reproduce"
}

comment full >"$out/comment.md"
if [ "$(wc -c <"$out/comment.md")" -gt "$max_comment_bytes" ]; then
  comment short >"$out/comment.md"
fi

echo "flotilla-review: $summary (comment in $out/comment.md)"
case $summary in
  passed*) exit 0 ;;
  *) exit 1 ;;
esac
