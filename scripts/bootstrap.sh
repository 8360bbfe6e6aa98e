#!/usr/bin/env bash
# Installs the system packages postroom needs on Debian/Ubuntu, if they are missing.
# Python packages go into the project's virtualenv (see the Makefile), not here.
set -euo pipefail

missing=()
python3 -c 'import ensurepip, venv' 2>/dev/null || missing+=(python3-venv python3-pip)
command -v redis-server >/dev/null || missing+=(redis-server)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || command -v initdb >/dev/null || missing+=(postgresql)
command -v make >/dev/null || missing+=(make)
# html engine (WeasyPrint): Pango and HarfBuzz; docx engine: LibreOffice Writer without a GUI.
ldconfig -p | grep -q 'libpango-1.0.so' || missing+=(libpango-1.0-0)
ldconfig -p | grep -q 'libpangoft2-1.0.so' || missing+=(libpangoft2-1.0-0)
ldconfig -p | grep -q 'libharfbuzz-subset.so' || missing+=(libharfbuzz-subset0)
command -v soffice >/dev/null || missing+=(libreoffice-writer-nogui)
# The LibreOffice pool drives soffice over UNO from Debian's own python3.
/usr/bin/python3 -c 'import uno' 2>/dev/null || missing+=(python3-uno)
# print channel: DataMatrix inserter codes (pylibdmtx loads libdmtx).
ldconfig -p | grep -q 'libdmtx.so' || missing+=(libdmtx0b)
# Browser tests and the benchmark's peer: Chromium driven through Playwright (no bundled browser).
command -v chromium >/dev/null || missing+=(chromium)

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

echo "bootstrap: installing system packages: ${missing[*]}"
if ! command -v apt-get >/dev/null; then
    echo "bootstrap: apt-get not found; install these packages yourself: ${missing[*]}" >&2
    exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
