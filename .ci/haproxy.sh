#!/usr/bin/env bash
# Install Debian's HAProxy if missing (the scale-out tests start it themselves, on 127.0.0.1,
# with deploy/haproxy.cfg). Idempotent; run as root. Prints the haproxy binary's path.
set -euo pipefail

if ! command -v haproxy >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y haproxy
fi
command -v haproxy
