#!/bin/sh
# Stop and remove the holevision unit. The config (/etc/holevision) and the results journal
# (/var/lib/holevision or /var/lib/private/holevision) are kept; remove them by hand if wanted.
#   sudo systemd/uninstall.sh [--dry-run]
set -eu
UNIT_DIR=${UNIT_DIR:-/etc/systemd/system}
DRY=""
[ "${1:-}" = "--dry-run" ] && DRY=echo
if [ -z "$DRY" ] && [ "$(id -u)" != 0 ]; then echo "run as root (sudo $0)" >&2; exit 1; fi
$DRY systemctl disable --now holevision.service || true
$DRY rm -f "$UNIT_DIR/holevision.service"
$DRY systemctl daemon-reload
echo "removed holevision.service; kept /etc/holevision and the state directory"
