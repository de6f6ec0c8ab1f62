#!/usr/bin/env bash
# Fetches the pinned dependency sources (the packages and checksums below) into a cache outside
# the repo.
# Idempotent; once the cache is complete it works offline.
set -euo pipefail

DEPS_DIR="${ALLM_DEPS_DIR:-$HOME/.cache/allm/deps}"
LLAMA_PKG="node-llama-cpp@3.22.1"
LLAMA_SHA512="6e5b488a9b9699cd76dc7eed30880318a4ac4ab866865418795502e3c5d38d55bb5c624988927209d95333343f2e25a83e4183a5c2f816f883a60c3ba9f4e20f"
WHISPER_PKG="nodejs-whisper@0.3.1"
WHISPER_SHA512="71ea2295456b691b91e459cdc97a46413d9ab80478f0e7370100449a45e75694a7f6237ac95473401142a954c659b93a59d8bde4d86fc1737316fb91edeacb5b"

mkdir -p "$DEPS_DIR/tarballs"

# fetch_tarball PKG SHA512 -> prints the path of the verified tarball
fetch_tarball() {
  local pkg="$1" sha="$2"
  local file="$DEPS_DIR/tarballs/${pkg/@/-}.tgz"
  if [ ! -f "$file" ] || ! echo "$sha  $file" | sha512sum -c --status; then
    local tmp
    tmp=$(mktemp -d)
    (cd "$tmp" && npm pack --silent "$pkg" >/dev/null)
    mv "$tmp"/*.tgz "$file"
    rmdir "$tmp"
  fi
  if ! echo "$sha  $file" | sha512sum -c --status; then
    echo "fetch-deps: sha512 mismatch for $pkg" >&2
    rm -f "$file"
    exit 1
  fi
  echo "$file"
}

if [ ! -f "$DEPS_DIR/llama.cpp/.allm-complete" ]; then
  tgz=$(fetch_tarball "$LLAMA_PKG" "$LLAMA_SHA512")
  tmp=$(mktemp -d)
  tar -xzf "$tgz" -C "$tmp" package/llama/gitRelease.bundle
  rm -rf "$DEPS_DIR/llama.cpp"
  git -c advice.detachedHead=false clone --quiet "$tmp/package/llama/gitRelease.bundle" "$DEPS_DIR/llama.cpp"
  rm -rf "$tmp"
  touch "$DEPS_DIR/llama.cpp/.allm-complete"
  echo "fetch-deps: llama.cpp ready in $DEPS_DIR/llama.cpp"
fi

# apply_patch DIR PATCH: applies PATCH (scripts/patches/) to DIR once. Files carrying another
# version of it (the patch was changed since) are restored from DIR's git first; fails when it
# still does not apply.
apply_patch() {
  local dir="$1" patch="$2"
  if git -C "$dir" apply --reverse --check "$patch" 2>/dev/null; then
    return
  fi
  if ! git -C "$dir" apply --check "$patch" 2>/dev/null; then
    git -C "$dir" apply --numstat "$patch" | cut -f3 | xargs git -C "$dir" checkout --
  fi
  if ! git -C "$dir" apply "$patch"; then
    echo "fetch-deps: $patch does not apply to $dir" >&2
    exit 1
  fi
  echo "fetch-deps: applied $(basename "$patch")"
}
PATCHES_DIR="$(cd "$(dirname "$0")" && pwd)/patches"
apply_patch "$DEPS_DIR/llama.cpp" "$PATCHES_DIR/ggml-rpc-lost-worker.patch"
apply_patch "$DEPS_DIR/llama.cpp" "$PATCHES_DIR/ggml-amx-tile-config.patch"

if [ ! -f "$DEPS_DIR/whisper.cpp/.allm-complete" ]; then
  tgz=$(fetch_tarball "$WHISPER_PKG" "$WHISPER_SHA512")
  tmp=$(mktemp -d)
  tar -xzf "$tgz" -C "$tmp" package/cpp/whisper.cpp
  rm -rf "$DEPS_DIR/whisper.cpp"
  mv "$tmp/package/cpp/whisper.cpp" "$DEPS_DIR/whisper.cpp"
  rm -rf "$tmp"
  touch "$DEPS_DIR/whisper.cpp/.allm-complete"
  echo "fetch-deps: whisper.cpp ready in $DEPS_DIR/whisper.cpp"
fi
