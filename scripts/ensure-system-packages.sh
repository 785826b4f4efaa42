#!/bin/sh
# Installs the Debian packages the project needs when they are missing.
set -e
missing=""
python3 -c 'import venv, ensurepip' 2>/dev/null || missing="$missing python3-venv"
python3 -c 'import sqlite3' 2>/dev/null || missing="$missing libsqlite3-0"
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing:$missing"
    apt-get update -qq && apt-get install -y -qq $missing
else
    echo "skiff needs these Debian packages:$missing (run as root or install them)" >&2
    exit 1
fi
