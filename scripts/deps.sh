#!/bin/sh
# Installs the Debian packages moetrace needs, if any are missing.
# Usage: deps.sh REQUIRED... [-- OPTIONAL...]
# As root it runs apt-get for both lists.  Otherwise it prints the apt-get
# line and fails if a required package is missing; a missing optional one
# (the tests that need it skip) only gets the line printed.
missing=""; optional=""; opt=0
for p in "$@"; do
	if [ "$p" = "--" ]; then opt=1; continue; fi
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" && continue
	if [ $opt -eq 1 ]; then optional="$optional $p"; else missing="$missing $p"; fi
done
[ -z "$missing$optional" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
	[ -n "$missing" ] && echo "moetrace needs these Debian packages:$missing"
	[ -n "$optional" ] && echo "moetrace's tests use these Debian packages if present (skipped without):$optional"
	echo "run as root:  apt-get install -y$missing$optional"
	[ -z "$missing" ]
	exit
fi
echo "installing Debian packages:$missing$optional"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq || true
apt-get install -y -qq --no-install-recommends $missing $optional
