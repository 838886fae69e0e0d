#!/usr/bin/env bash
# Debian packages osum uses for synthetic speech (espeak-ng, flite), audio tools (sox), real text for the synthetic
# sentences (fortunes, WordNet, a word list) and the recorded clips of the
# off-generator evaluation sets (Asterisk prompts, alsa-utils, pocketsphinx test data); with --test also chromium
# and its driver, for the web page's browser test. Installs only what is missing; needs root or sudo. Everything else
# osum needs comes from PyPI (see the Makefile).
set -euo pipefail
missing=()
command -v espeak-ng >/dev/null || missing+=(espeak-ng)
command -v sox >/dev/null || missing+=(sox libsox-fmt-all)
command -v flite >/dev/null || missing+=(flite)
# Recorded speech and non-speech for the off-generator evaluation sets (osum data offgen)
[ -d /usr/share/asterisk/sounds/en_US_f_Allison ] || missing+=(asterisk-core-sounds-en-wav)
[ -f /usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz ] || missing+=(asterisk-core-sounds-en)
[ -f /usr/share/sounds/alsa/Front_Center.wav ] || missing+=(alsa-utils)
[ -d /usr/share/pocketsphinx/test/data/librivox ] || missing+=(pocketsphinx-testdata)
# Real text for the synthetic corpus's sentences (osum/data/synth/corpus_text.py)
[ -f /usr/share/games/fortunes/literature ] || missing+=(fortunes-min)
[ -f /usr/share/games/fortunes/people ] || missing+=(fortunes)
[ -f /usr/share/wordnet/data.noun ] || missing+=(wordnet-base)
[ -f /usr/share/dict/words ] || missing+=(wamerican)
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
