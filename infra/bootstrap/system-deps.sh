#!/usr/bin/env bash
# Installs what the local stack runs on, when it is missing: Java 17+ with its compiler (the
# engagement job's lenient Avro format is compiled at set-up), Maven, a PostgreSQL
# server, Node.js 18+ with npm (the dashboard's build) and Chromium (the dashboard's browser
# test). Uses Debian's packages when we are root on a Debian-like system; otherwise prints what
# to install and fails. Present tools are left alone.
set -euo pipefail

missing=()
java_ok() {
  command -v java >/dev/null || return 1
  local major
  major=$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1)
  [ -n "$major" ] && [ "$major" -ge 17 ]
}
java_ok || missing+=("openjdk-17-jre-headless")
command -v javac >/dev/null || missing+=("openjdk-17-jdk-headless")
command -v mvn >/dev/null || missing+=("maven")
if ! command -v initdb >/dev/null && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  missing+=("postgresql")
fi
command -v python3 >/dev/null || missing+=("python3")
python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=("python3-venv")
node_ok() {
  command -v node >/dev/null && command -v npm >/dev/null || return 1
  local major
  major=$(node --version | sed -n 's/^v\([0-9]*\).*/\1/p')
  [ -n "$major" ] && [ "$major" -ge 18 ]
}
node_ok || missing+=("nodejs" "npm")
command -v chromium >/dev/null || missing+=("chromium")

[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing system packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "missing system packages: ${missing[*]} (install them, e.g. sudo apt-get install ${missing[*]})" >&2
  exit 1
fi
