# Helpers for bench scripts (POSIX sh).
# median_time N cmd...: runs cmd N times, prints the median wall time in seconds.
median_time() {
	n=$1; shift
	i=0; ts=""
	while [ $i -lt "$n" ]; do
		s=$(date +%s.%N)
		"$@"
		e=$(date +%s.%N)
		ts="$ts $(awk -v a="$s" -v b="$e" 'BEGIN{printf "%.6f", b-a}')"
		i=$((i + 1))
	done
	echo $ts | tr ' ' '\n' | sort -g | awk '{v[NR]=$1} END{ if (NR%2) print v[(NR+1)/2]; else printf "%.6f\n", (v[NR/2]+v[NR/2+1])/2 }'
}
fmt3() { awk -v x="$1" 'BEGIN{printf "%.3f", x}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b > 0) printf "%.1f", a/b; else print "-" }'; }
# bench_ch_start [WRAPPER...]: starts clickhouse-server on free ports of
# 127.0.0.1 from a config under a new temporary directory $d, run by
# WRAPPER if given (taskset -c 0 ...); sets $H (its HTTP port) and $srv (its
# PID), waits until it answers /ping, and stops it and removes $d at exit.
bench_ch_start() {
	d=$(mktemp -d)
	srv=""
	trap '[ -n "$srv" ] && kill "$srv" 2>/dev/null; sleep 1; rm -rf "$d"' EXIT
	read -r H N I <<PORTS
$(python3 -c '
import socket
ss = [socket.socket() for _ in range(3)]
for s in ss: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))')
PORTS
	cat >"$d/config.xml" <<XML
<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>$d/log</log><errorlog>$d/err</errorlog></logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>$H</http_port><tcp_port>$N</tcp_port><interserver_http_port>$I</interserver_http_port>
  <path>$d/data/</path><tmp_path>$d/tmp/</tmp_path><format_schema_path>$d/fs/</format_schema_path>
  <users_config>$d/users.xml</users_config>
  <default_profile>default</default_profile><default_database>default</default_database>
  <mark_cache_size>5368709</mark_cache_size>
</yandex>
XML
	cat >"$d/users.xml" <<'XML'
<?xml version="1.0"?>
<yandex><profiles><default/></profiles>
<users><default><password></password><networks><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota></default></users>
<quotas><default/></quotas></yandex>
XML
	"$@" clickhouse-server --config-file="$d/config.xml" >"$d/stdout" 2>&1 &
	srv=$!
	_i=0
	until curl -sf "http://127.0.0.1:$H/ping" >/dev/null 2>&1; do
		_i=$((_i + 1)); [ $_i -lt 300 ] || { echo "clickhouse-server did not start"; exit 1; }
		sleep 0.1
	done
}
