#!/bin/sh
# Installs the Debian packages the project needs when they are missing.
set -e
missing=""
python3 -c 'import venv, ensurepip' 2>/dev/null || missing="$missing python3-venv"
python3 -c 'import sqlite3' 2>/dev/null || missing="$missing libsqlite3-0"
# The process runtime: nsenter (exec into containers) and mount/umount (tmpfs volumes).
command -v nsenter >/dev/null 2>&1 || missing="$missing util-linux"
command -v mount >/dev/null 2>&1 || missing="$missing mount"
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing:$missing"
    apt-get update -qq && apt-get install -y -qq $missing
else
    echo "skiff needs these Debian packages:$missing (run as root or install them)" >&2
    exit 1
fi
