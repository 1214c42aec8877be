#!/bin/sh
# Runs every command of the GPU image (Dockerfile.gpu): `herd ...`, or the `ray start` line of an
# Akash worker. Akash mounts persistent volumes root-owned (its pods set no fsGroup), so while
# still root this hands the data directory to the herd user, then drops root for good before
# anything else runs. Started as a non-root user already (docker --user, a pod with runAsUser),
# it only runs the command.
set -eu
HERD_UID=10001
if [ "$(id -u)" = 0 ]; then
    data="${HERD_DATA_DIR:-/data}"
    mkdir -p "$data"
    # Only what is not the herd user's yet: fast on every later start of a big model cache.
    find "$data" -xdev ! -user "$HERD_UID" -exec chown "$HERD_UID:$HERD_UID" {} +
    export HOME=/home/herd USER=herd
    exec setpriv --reuid="$HERD_UID" --regid="$HERD_UID" --clear-groups -- "$@"
fi
exec "$@"
