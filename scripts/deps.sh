#!/bin/sh
# Installs the Debian packages moetrace needs, if any are missing.
# As root it runs apt-get; otherwise it prints the command and stops.
missing=""
for p in "$@"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "moetrace needs these Debian packages:$missing"
if [ "$(id -u)" -ne 0 ]; then
	echo "run as root:  apt-get install -y$missing"
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq || true
apt-get install -y -qq --no-install-recommends $missing
