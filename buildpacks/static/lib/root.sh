# Sourced by bin/compile and bin/release. resolve_static_root BUILD_DIR prints the document
# root relative to BUILD_DIR: the "root" key of static.json, else public/ if it exists, else ".".
# On a problem it prints the reason to stderr and returns 1.
resolve_static_root() {
  local build_dir=$1 root
  if [[ -L "$build_dir/static.json" || ( -e "$build_dir/static.json" && ! -f "$build_dir/static.json" ) ]]; then
    echo "static.json must be a plain file, not a symbolic link or a device" >&2
    return 1
  fi
  if [[ -f "$build_dir/static.json" && $(stat -c %s "$build_dir/static.json") -gt 1048576 ]]; then
    echo "static.json is $(stat -c %s "$build_dir/static.json") bytes, more than the 1048576 allowed" >&2
    return 1
  fi
  if [[ -f "$build_dir/static.json" ]]; then
    command -v python3 >/dev/null 2>&1 || { echo "python3 is needed to read static.json but is not installed on this Slipway server" >&2; return 1; }
    root=$(python3 -c '
import json, sys
try:
    config = json.load(open(sys.argv[1]))
except ValueError as error:
    sys.exit("static.json is not valid JSON: %s" % error)
if not isinstance(config, dict):
    sys.exit("static.json must hold a JSON object, like {\"root\": \"public\"}")
root = config.get("root", "")
if not isinstance(root, str):
    sys.exit("the \"root\" key of static.json must be a string")
print(root)
' "$build_dir/static.json") || return 1
  fi
  if [[ -z "${root:-}" ]]; then
    if [[ -d "$build_dir/public" ]]; then root=public; else root=.; fi
  fi

  while [[ "$root" == ./* ]]; do root=${root#./}; done
  while [[ "$root" == */ && "$root" != / ]]; do root=${root%/}; done
  [[ -n "$root" ]] || root=.

  if [[ "$root" == /* || "$root" == ".." || "$root" == ../* || "$root" == */../* || "$root" == */.. ]]; then
    echo "the document root \"$root\" must be a path inside the app, like \"public\"" >&2
    return 1
  fi
  if [[ ! "$root" =~ ^[A-Za-z0-9\ ._/@+-]+$ ]]; then
    echo "the document root \"$root\" may only use letters, digits, spaces and . _ / @ + -" >&2
    return 1
  fi
  # A symbolic link on the way (`pub -> /var/lib/slipway`) must not make the host's files the site: the root,
  # resolved, lies inside the app. serve-static checks it again when it starts.
  local resolved tree
  if resolved=$(realpath -e -- "$build_dir/$root" 2>/dev/null); then
    tree=$(realpath -e -- "$build_dir")
    if [[ "$resolved" != "$tree" && "$resolved" != "$tree"/* ]]; then
      echo "the document root \"$root\" leads outside the app through a symbolic link; it must be a folder of the app" >&2
      return 1
    fi
  fi
  echo "$root"
}

# Prints ROOT as one shell word: as it is when it is plain, else in single quotes.
shell_quote_root() {
  if [[ "$1" =~ ^[A-Za-z0-9._/@+-]+$ ]]; then
    echo "$1"
  else
    echo "'$1'"
  fi
}
