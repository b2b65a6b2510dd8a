#!/usr/bin/env bash
# The benchmark's native peer, hnswlib-node (a bench-only devDependency):
# npm 11 skips its install script, so its addon is built here, once, with
# node-gyp against the Node headers in /usr (nothing is downloaded). It needs
# a C++ compiler and Python, installed when missing. A failure leaves the
# benchmark running without that peer (its columns say why).
set -uo pipefail
cd "$(dirname "$0")/.."

dir=node_modules/hnswlib-node
[ -d "$dir" ] || { echo "ensure-bench-peers: $dir is not installed (npm ci installs it)" >&2; exit 0; }
[ -f "$dir/build/Release/addon.node" ] && exit 0

missing=()
command -v g++ >/dev/null 2>&1 || missing+=(g++)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
command -v make >/dev/null 2>&1 || missing+=(make)
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# npm's own node-gyp when it ships one, else npx fetches it from the registry.
gyp="$(dirname "$(readlink -f "$(command -v npm)")")/../node_modules/node-gyp/bin/node-gyp.js"
echo "ensure-bench-peers: building hnswlib-node's addon" >&2
if [ -f "$gyp" ]; then
  (cd "$dir" && node "$gyp" rebuild --nodedir=/usr >/dev/null)
else
  (cd "$dir" && npx --yes node-gyp rebuild --nodedir=/usr >/dev/null)
fi || echo "ensure-bench-peers: building hnswlib-node failed; the benchmark runs without it" >&2
exit 0
