#!/bin/sh
# Install the holevision systemd unit and an example config (kept if one exists), then start it.
#   sudo systemd/install.sh [--dry-run] [--no-start]
# The same as `sudo holevision service install`.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
UNIT_DIR=${UNIT_DIR:-/etc/systemd/system}
CONFIG_DIR=${CONFIG_DIR:-/etc/holevision}
BIN=${BIN:-/usr/local/bin/holevision}
DRY=""
START=1
for arg in "$@"; do
  case "$arg" in
    --dry-run) DRY=echo ;;
    --no-start) START=0 ;;
    *) echo "usage: $0 [--dry-run] [--no-start]" >&2; exit 2 ;;
  esac
done
if [ -z "$DRY" ] && [ "$(id -u)" != 0 ]; then echo "run as root (sudo $0)" >&2; exit 1; fi
if [ ! -x "$BIN" ]; then
  FOUND=$(command -v holevision || true)
  if [ -n "$FOUND" ]; then $DRY ln -sf "$FOUND" "$BIN"; else echo "holevision is not installed (pip install 'holevision[runtime]')" >&2; exit 1; fi
fi
$DRY install -d -m 0755 "$CONFIG_DIR"
if [ ! -e "$CONFIG_DIR/holevision.toml" ]; then
  $DRY install -m 0644 "$HERE/holevision.toml" "$CONFIG_DIR/holevision.toml"
else
  echo "keeping existing $CONFIG_DIR/holevision.toml"
fi
$DRY install -m 0644 "$HERE/holevision.service" "$UNIT_DIR/holevision.service"
$DRY systemctl daemon-reload
if [ "$START" = 1 ]; then $DRY systemctl enable --now holevision.service; fi
echo "installed; logs: journalctl -u holevision -f ; health: curl -s localhost:9108/health"
