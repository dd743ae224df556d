#!/usr/bin/env bash
# Create .venv if it is missing and install the project with the extras asked for.
#
# Usage: scripts/ensure-venv.sh [EXTRA...]    e.g. scripts/ensure-venv.sh dev mysql
# With no extra given: "dev", plus "mysql" when DATABASE_URL names MySQL/MariaDB.
# A stamp in .venv remembers what was installed for which pyproject.toml, so that a
# second run with nothing changed returns at once.
set -euo pipefail

cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
PYTHON="${PYTHON:-python3}"
STAMP="$VENV/.bjgas-installed"

if [[ $# -gt 0 ]]; then
    wanted=("$@")
else
    wanted=(dev)
    if [[ "${DATABASE_URL:-}" == mysql* ]]; then
        wanted+=(mysql)
    fi
fi

if [[ ! -x "$VENV/bin/python" ]]; then
    if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] < (3, 11))' 2>/dev/null; then
        echo "Python 3.11 or 3.12 is needed; '$PYTHON' is $("$PYTHON" --version 2>&1)." >&2
        echo "Install it, or run: make PYTHON=/path/to/python3.11 ..." >&2
        exit 1
    fi
    echo "Creating the virtual environment $VENV ..."
    "$PYTHON" -m venv "$VENV"
fi

digest="$(sha256sum pyproject.toml | cut -c1-16)"
installed=()
if [[ -f "$STAMP" ]] && [[ "$(head -n1 "$STAMP")" == "$digest" ]]; then
    read -r -a installed <<<"$(sed -n 2p "$STAMP")"
fi
words() { printf '%s\n' "$@" | sed '/^$/d' | sort -u | xargs; }
have="$(words "${installed[@]}")"
# What is needed now: what was installed for this pyproject.toml plus what is wanted.
read -r -a needed <<<"$(words "${installed[@]}" "${wanted[@]}")"
if [[ -n "$have" && "${needed[*]}" == "$have" ]]; then
    exit 0
fi

if printf '%s\n' "${needed[@]}" | grep -qx mysql && ! "$VENV/bin/python" -c 'import MySQLdb' \
    2>/dev/null; then
    if ! pkg-config --exists mysqlclient 2>/dev/null && ! pkg-config --exists mariadb 2>/dev/null \
        && ! pkg-config --exists libmariadb 2>/dev/null; then
        cat >&2 <<'MSG'
DATABASE_URL points at MySQL/MariaDB, so the driver mysqlclient must be built, but the
MariaDB client headers or pkg-config are missing on this machine. Install them first:

    sudo apt-get install libmariadb-dev pkg-config      (Debian/Ubuntu)

or unset DATABASE_URL to run on the embedded SQLite database.
MSG
        exit 1
    fi
fi

extras="$(IFS=,; echo "${needed[*]}")"
echo "Installing the project with extras [$extras] into $VENV (the first time takes about a minute) ..."
"$VENV/bin/python" -m pip install --disable-pip-version-check --quiet -e ".[$extras]"
printf '%s\n%s\n' "$digest" "${needed[*]}" >"$STAMP"
