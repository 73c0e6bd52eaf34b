#!/usr/bin/env bash
# Builds the pinned Consul release (the version required in go.mod beside this script) into
# ${MESHSPEC_TOOLS:-~/.cache/meshspec-tools}/bin/consul and prints the binary's path.
# Idempotent: when that binary already reports the pinned version, it only prints the path.
# Needs only the Go toolchain; a cold build takes several minutes (see docs/consul.md).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
tools=${MESHSPEC_TOOLS:-$HOME/.cache/meshspec-tools}
binary=$tools/bin/consul
# The pinned version is the one go.mod requires; read it without asking Go (fast path).
version=$(awk '$1 == "github.com/hashicorp/consul" || ($1 == "require" && $2 == "github.com/hashicorp/consul") {print $NF == "indirect" ? $(NF-2) : $NF; exit}' "$here/go.mod")
if [ -z "$version" ]; then
  echo "build.sh: go.mod beside this script requires no github.com/hashicorp/consul version" >&2
  exit 1
fi

# First line of `consul version`; sed reads all of it, so consul never dies of SIGPIPE.
version_of() { "$1" version 2>/dev/null | sed -n 1p; }

if [ -x "$binary" ] && [ "$(version_of "$binary")" = "Consul $version" ]; then
  echo "$binary"
  exit 0
fi

command -v go >/dev/null || { echo "build.sh: the Go toolchain (go) is needed to build Consul" >&2; exit 1; }
mkdir -p "$tools/bin"
# go.sum pins every module. The checksum database does not answer for these two MPL-2.0
# modules, so go.sum alone vouches for them.
export GONOSUMDB=github.com/hashicorp/consul/envoyextensions,github.com/hashicorp/hcp-sdk-go
export CGO_ENABLED=0
partial=$(mktemp "$tools/bin/.consul.XXXXXX")
trap 'rm -f "$partial"' EXIT
echo "build.sh: building Consul $version (a cold build takes several minutes)" >&2
started=$SECONDS
(
  cd "$here"
  go build -mod=readonly -trimpath -ldflags "-s -w" -o "$partial" github.com/hashicorp/consul
)
built=$(version_of "$partial")
if [ "$built" != "Consul $version" ]; then
  echo "build.sh: the built binary reports '$built', expected 'Consul $version'" >&2
  exit 1
fi
mv -f "$partial" "$binary"   # atomic: a half-built binary never sits at $binary
trap - EXIT
echo "build.sh: built $binary in $((SECONDS - started))s" >&2
echo "$binary"
