#!/usr/bin/env bash
# Debian packages some features use. Optional: plait installs and runs without them, and each feature
# that needs one says so. Installed only where this machine allows it (root, or passwordless sudo).
set -uo pipefail
packages=(espeak-ng      # speak: text to speech
          dovecot-imapd  # workflows: the IMAP server the IMAP-trigger tests and benchmark start locally
          chromium       # the web page's browser tests (Playwright drives it; its own browsers are not fetched)
          fonts-noto-color-emoji)  # emoji in chat answers and screenshots (a browser without the font draws boxes)

missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
((${#missing[@]})) || exit 0
if ! command -v apt-get >/dev/null; then
  echo "note: not a Debian system; install ${missing[*]} yourself for the features that need them" >&2
  exit 0
fi
if [[ $(id -u) -eq 0 ]]; then sudo=(); elif sudo -n true 2>/dev/null; then sudo=(sudo -n); else
  echo "note: cannot install ${missing[*]} without root; run: sudo apt-get install ${missing[*]}" >&2
  exit 0
fi
# Try the install first; refresh the package lists only when it fails (a fresh machine has none).
install() { DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1; }
if ! install; then
  "${sudo[@]}" apt-get update -qq >/dev/null 2>&1 || true
  install || echo "note: could not install ${missing[*]}; the features that need them will say so, and" \
                  "make test fails on the tests they skip" >&2
fi
