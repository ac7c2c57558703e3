#!/bin/sh
# Installs what the project needs when it is missing, so `npm start` and `npm test` work on a fresh
# machine: Debian's softhsm2, opensc (pkcs11-tool), openssl, a C compiler (for the SoftHSM fault
# injector), curl, unzip and xmlsec1 (tests use them as independent peers and to open ASiC
# vectors), python3 (its email package reads MIME independently of us), opencryptoki with p11-kit
# (the second PKCS#11 implementation the token tests run against, softhsm/opencryptoki-testbed.ts),
# chromium (the browser test drives it headless with playwright-core, test/browser), pamtester (the
# admin API's PAM login), postgresql (the storage suites' second engine), haproxy (the clustered provider's
# balancer), with `--bench`
# also python3-xmlsec (the benchmarks' libxmlsec1 baseline); then the npm dependencies with their
# native builds (pkcs11js, better-sqlite3), which package.json's allowScripts lets npm 11 run; then
# the web interface (ui/ → ui/dist, which the admin API serves) when it is missing or older than
# its sources.
set -e
cd "$(dirname "$0")/.."

missing=""
command -v softhsm2-util >/dev/null 2>&1 || missing="$missing softhsm2"
command -v pkcs11-tool >/dev/null 2>&1 || missing="$missing opensc"
command -v openssl >/dev/null 2>&1 || missing="$missing openssl"
command -v cc >/dev/null 2>&1 || missing="$missing gcc libc6-dev"
command -v make >/dev/null 2>&1 || missing="$missing make"
command -v curl >/dev/null 2>&1 || missing="$missing curl"
command -v unzip >/dev/null 2>&1 || missing="$missing unzip"
command -v g++ >/dev/null 2>&1 || missing="$missing g++"
command -v xmlsec1 >/dev/null 2>&1 || missing="$missing xmlsec1"
# Conformance tests read MIME with Python's email package, a reader independent of ours.
command -v python3 >/dev/null 2>&1 || missing="$missing python3"
[ -x /usr/sbin/pkcsslotd ] || missing="$missing opencryptoki"
command -v p11-kit >/dev/null 2>&1 || missing="$missing p11-kit"
ls /usr/lib/*/pkcs11/p11-kit-client.so >/dev/null 2>&1 || missing="$missing p11-kit-modules"
command -v unshare >/dev/null 2>&1 || missing="$missing util-linux"
# OpenSSL 3.0 headers for the TLS signer engine (src/tls/engine), compiled against them, never linked.
[ -f /usr/include/openssl/engine.h ] || missing="$missing libssl-dev"
# The browser test's browser: Debian's, driven by playwright-core (no browser download from npm).
[ -x /usr/bin/chromium ] || missing="$missing chromium"
# The admin API's PAM login (src/admin/pam-users.ts) asks PAM through pamtester; its test uses it.
command -v pamtester >/dev/null 2>&1 || missing="$missing pamtester"
# The storage suites run every store on PostgreSQL too, in a throw-away cluster (test/support/postgres.ts).
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$missing postgresql"
# The local instance's clustered provider (`xrd local start --cluster`) and its test balance with HAProxy.
command -v haproxy >/dev/null 2>&1 || missing="$missing haproxy"
# Benchmarks compare with libxmlsec1 in-process, through Debian's Python binding.
if [ "$1" = "--bench" ] && ! /usr/bin/python3 -c 'import xmlsec' >/dev/null 2>&1; then missing="$missing python3-xmlsec"; fi
if [ -n "$missing" ]; then
  echo "bootstrap: installing Debian packages:$missing" >&2
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >&2
fi

stamp=node_modules/.xrd-installed
if [ -L node_modules ]; then
  # A worktree borrowing another checkout's node_modules: installing here would replace that
  # checkout's packages (npm ci empties node_modules first), so the owner of the folder installs.
  echo "bootstrap: node_modules is a symlink; not installing npm dependencies into it" >&2
elif [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ] || [ package.json -nt "$stamp" ]; then
  echo "bootstrap: installing npm dependencies" >&2
  # `npm ci`: exactly the locked versions, and a refusal when package.json and the lock file are out
  # of step (CI runs this on a clean clone, so a lock file that a fresh machine would refuse fails
  # CI; test/unit/lockfile.test.ts checks the same offline). `npm install` only without a lock file.
  if [ -f package-lock.json ]; then npm ci --no-audit --no-fund >&2; else npm install --no-audit --no-fund >&2; fi
  touch "$stamp"
fi

# A native addon built for another Node version (or skipped by an older npm) is rebuilt here.
if ! node -e "require('pkcs11js'); new (require('better-sqlite3'))(':memory:').close()" >/dev/null 2>&1; then
  echo "bootstrap: rebuilding native addons" >&2
  npm rebuild pkcs11js better-sqlite3 >&2
fi

# The web interface the admin API serves at / (docs/admin-ui.md): built again when any of its
# sources, or the locked dependency versions, are newer than the last build.
if [ ! -f ui/dist/index.html ] || [ -n "$(find ui package-lock.json -path ui/dist -prune -o -type f -newer ui/dist/index.html -print | head -n 1)" ]; then
  echo "bootstrap: building the web interface" >&2
  npm run --silent build:ui >&2
fi

# The TLS signer engine (src/tls/engine): `npm ci` builds it (postinstall); built again here when its
# source changed since, as the proxy only loads it (src/tls/signer-engine.ts).
node scripts/build-signer-engine.mjs
