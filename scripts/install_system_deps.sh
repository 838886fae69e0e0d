#!/usr/bin/env bash
# Debian packages osum uses for synthetic speech (espeak-ng, flite) and audio tools (sox); with --test also chromium
# and its driver, for the web page's browser test. Installs only what is missing; needs root or sudo. Everything else
# osum needs comes from PyPI (see the Makefile).
set -euo pipefail
missing=()
command -v espeak-ng >/dev/null || missing+=(espeak-ng)
command -v sox >/dev/null || missing+=(sox libsox-fmt-all)
command -v flite >/dev/null || missing+=(flite)
if [ "${1:-}" = "--test" ]; then
  command -v chromium >/dev/null || missing+=(chromium)
  command -v chromedriver >/dev/null || missing+=(chromium-driver)
fi
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "installing Debian packages: ${missing[*]}"
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${missing[@]}"
