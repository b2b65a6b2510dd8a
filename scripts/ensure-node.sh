#!/usr/bin/env bash
# Prints the path of a Node.js binary of the given major version, fetching it
# once from the npm registry when it is missing: the registry ships Node's own
# release binaries as the packages node-linux-<arch>@<major> (no other
# download). They are kept in .cache/node/<major>/. The machine's own `node` is
# used when it already is that major version.
#   scripts/ensure-node.sh 24   ->  /path/to/node (v24.x)
set -euo pipefail
major=${1:?usage: ensure-node.sh MAJOR}
cd "$(dirname "$0")/.."

if command -v node >/dev/null 2>&1 && [ "$(node -p 'process.versions.node.split(".")[0]')" = "$major" ]; then
  command -v node
  exit 0
fi

dir=.cache/node/$major
bin=$dir/package/bin/node
if [ ! -x "$bin" ]; then
  case "$(uname -m)" in
    x86_64) arch=x64 ;;
    aarch64) arch=arm64 ;;
    *) echo "ensure-node: no npm package of Node's binaries for $(uname -m)" >&2; exit 1 ;;
  esac
  rm -rf "$dir" && mkdir -p "$dir"
  echo "ensure-node: fetching node-linux-$arch@$major from the npm registry" >&2
  tarball=$(cd "$dir" && npm pack --silent "node-linux-$arch@$major" 2>/dev/null | tail -n 1)
  tar xzf "$dir/$tarball" -C "$dir"
  rm -f "$dir/$tarball"
fi
"$bin" --version >/dev/null
echo "$PWD/$bin"
