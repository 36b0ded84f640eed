#!/usr/bin/env bash
# Makes (or reuses) a Python virtual environment holding pinned packages, quietly:
#   bash scripts/pip-venv.sh DIR NAME==VERSION ...
# Installs only when DIR/.installed does not list exactly these requirements. The package indexes
# are pip's own configuration (`pip config list`): where it names local indexes or wheel folders,
# they are passed as the only sources, so pip does not also try (and retry for minutes) an index
# this machine cannot reach; elsewhere plain `pip install` is used.
set -euo pipefail
dir="$1"
shift
want="$*"
if [ -f "$dir/.installed" ] && [ "$(cat "$dir/.installed")" = "$want" ] && [ -x "$dir/bin/python" ]; then exit 0; fi
echo "setup: Python environment $dir ($want)"
[ -x "$dir/bin/python" ] || /usr/bin/python3 -m venv "$dir"
sources=()
config="$(/usr/bin/python3 -m pip config list 2>/dev/null || true)"
value() { printf '%s\n' "$config" | sed -n "s/^[^ ]*\\.$1='\\(.*\\)'\$/\\1/p" | head -1; }
index="$(value index-url)"
extra="$(value extra-index-url)"
links="$(value find-links)"
if [ -n "$index$extra$links" ]; then
  first=1
  for url in $index $extra; do
    if [ "$first" = 1 ]; then sources+=(--index-url "$url"); first=0; else sources+=(--extra-index-url "$url"); fi
  done
  [ "$first" = 1 ] && sources+=(--no-index)
  for l in $links; do sources+=(--find-links "$l"); done
fi
# pip's warnings about packages the local indexes lack are noise when the install succeeds: shown only on failure.
log="$(mktemp)"
if ! "$dir/bin/pip" install -q --disable-pip-version-check "${sources[@]}" "$@" >"$log" 2>&1; then
  grep -v "is ignored: it is neither a file nor a directory" "$log" | tail -20 >&2
  rm -f "$log"
  echo "setup: pip could not install $want into $dir" >&2
  exit 1
fi
rm -f "$log"
printf '%s' "$want" >"$dir/.installed"
