#!/bin/sh
# Makes xrd_<version>_<architecture>.deb (docs/install.md "The .deb package") with dpkg-deb from
# this checkout's build (`npm run package:deb` builds first): the built release in /opt/xrd — dist/,
# ui/dist/, the TLS signer engine, the production dependencies copied with the native addons built
# here (the closure `npm ls --omit=dev` names), native-config/, docs/ — the units, the users and
# directories files, and /usr/bin/xrd. No TypeScript source, no devDependency.
# The addons are built for this node's major version (its ABI), so the package depends on that
# nodejs major, on this architecture.
# Usage: scripts/package-deb.sh [output folder, default build]
set -eu
cd "$(dirname "$0")/.."
out=$(realpath -m "${1:-build}")

for built in dist/cli/bin.js ui/dist/index.html build/xrd-signer-engine.so; do
  [ -f "$built" ] || { echo "package-deb: $built is missing: npm run build first" >&2; exit 1; }
done

version=$(node -p "require('./package.json').version")
arch=$(dpkg --print-architecture)
major=$(node -p "process.versions.node.split('.')[0]")
# package.json's engines say 20.19 at least; within another major, any of its versions.
lowest=$([ "$major" = 20 ] && echo 20.19 || echo "$major")

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
opt=$stage/opt/xrd
mkdir -p "$opt/scripts" "$opt/ui" "$opt/build" "$stage/DEBIAN" "$stage/usr/bin" \
  "$stage/usr/lib/systemd/system" "$stage/usr/lib/sysusers.d" "$stage/usr/lib/tmpfiles.d"

cp -a dist native-config docs package.json package-lock.json "$opt/"
cp -a ui/dist "$opt/ui/"
cp -a build/xrd-signer-engine.so "$opt/build/"
# The launcher of a checkout, for docs/backup.md's `node scripts/xrd.mjs …`: without tsx it runs dist/.
cp -a scripts/xrd.mjs "$opt/scripts/"
# Top-level folders only: a nested node_modules comes with its parent.
npm ls --omit=dev --parseable --all | tail -n +2 | grep -v '/node_modules/.*/node_modules/' | while read -r dir; do
  rel=${dir#"$PWD"/}
  mkdir -p "$opt/$(dirname "$rel")"
  cp -a "$dir" "$opt/$rel"
done

cp native-config/systemd/xrd-signer.service native-config/systemd/xrd-proxy.service native-config/systemd/xrd-admin.service "$stage/usr/lib/systemd/system/"
cp native-config/systemd/xrd.sysusers.conf "$stage/usr/lib/sysusers.d/xrd.conf"
cp native-config/systemd/xrd.tmpfiles.conf "$stage/usr/lib/tmpfiles.d/xrd.conf"
printf '#!/bin/sh\nexec /usr/bin/node /opt/xrd/dist/cli/bin.js "$@"\n' > "$stage/usr/bin/xrd"
chmod 0755 "$stage/usr/bin/xrd"

cat > "$stage/DEBIAN/control" <<EOF
Package: xrd
Version: $version
Architecture: $arch
Maintainer: xrd maintainers <xrd@localhost>
Section: net
Priority: optional
Depends: nodejs (>= $lowest), nodejs (<< $((major + 1))), systemd
Recommends: softhsm2, opensc
Suggests: pamtester
Installed-Size: $(du -sk "$stage" | cut -f1)
Description: X-Road security server: signer, proxies, administration (xrd)
 The signer daemon (PKCS#11 tokens), the client and server proxies and the
 administration API with its web interface, as systemd services xrd-signer,
 xrd-proxy and xrd-admin. Installing starts nothing: configure and start as
 /opt/xrd/docs/install.md says.
EOF

cat > "$stage/DEBIAN/postinst" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
  systemd-sysusers xrd.conf
  systemd-tmpfiles --create xrd.conf
  install -d -m 0755 /etc/xrd
  [ -e /etc/xrd/devices.ini ] || install -m 0644 /opt/xrd/native-config/devices.ini /etc/xrd/devices.ini
  if [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    # An upgrade restarts what was running, the signer first; a first install starts nothing.
    for unit in xrd-signer xrd-proxy xrd-admin; do systemctl try-restart "$unit.service"; done
  fi
fi
EOF
cat > "$stage/DEBIAN/prerm" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
  systemctl stop xrd-admin.service xrd-proxy.service xrd-signer.service || true
  systemctl disable xrd-admin.service xrd-proxy.service xrd-signer.service || true
fi
EOF
cat > "$stage/DEBIAN/postrm" <<'EOF'
#!/bin/sh
set -e
# /etc/xrd and /var/lib/xrd (configuration, keys' metadata, message log) stay: they are the server's data.
if [ -d /run/systemd/system ]; then systemctl daemon-reload || true; fi
EOF
chmod 0755 "$stage/DEBIAN/postinst" "$stage/DEBIAN/prerm" "$stage/DEBIAN/postrm"
chmod 0755 "$stage"
chmod -R u+rwX,go+rX,go-w "$stage"

mkdir -p "$out"
# gzip rather than xz: several times faster to build, for a package of a few tens of megabytes.
dpkg-deb --root-owner-group -Zgzip --build "$stage" "$out/xrd_${version}_${arch}.deb" >&2
echo "$out/xrd_${version}_${arch}.deb"
