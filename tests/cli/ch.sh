# Helpers for the tests that run a real ClickHouse server: sourced after
# lib.sh.  Servers start on 127.0.0.1 from a config under $T, are waited for
# on /ping, and are stopped by PID on exit, also on failure.  A test adds
# any other process it starts to $PIDS to have it stopped the same way.
#
#   ch_ports N                 N distinct free ports of 127.0.0.1, one a word
#   ch_config DIR HTTP TCP ISRV [XML]
#                              DIR/config.xml and DIR/users.xml; XML (cluster
#                              elements) is added to <remote_servers>, which
#                              always has 'here' (this server, one shard);
#                              users: default (no password), and writer and
#                              reader with password s3cretpw
#   ch_start DIR HTTP          starts the server of DIR/config.xml, waits for
#                              /ping; its PID in $CH_PID (and in $PIDS)
#   ch_new DIR                 ch_ports + ch_config + ch_start in one: sets
#                              $CH_HTTP, $CH_TCP, $CH_PID
#   ch_stop PID [SIGNAL]       stops a server (TERM, or e.g. KILL) and waits
#                              for it to exit
#   ch_q HTTP DB QUERY         one query over HTTP, TSV on stdout
command -v clickhouse-server >/dev/null || fail "clickhouse-server not installed (make deps-test)"
command -v curl >/dev/null || fail "curl not installed (make deps-test)"
command -v python3 >/dev/null || fail "python3 not installed (make deps-test)"

PIDS=""
ch_cleanup() {
	for p in $PIDS; do kill -9 "$p" 2>/dev/null; done
	for p in $PIDS; do wait "$p" 2>/dev/null; done
	rm -rf "$T"
}
trap ch_cleanup EXIT
trap 'ch_cleanup; exit 1' INT TERM

ch_ports() {
	python3 -c '
import socket, sys
ss = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in ss: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))' "$1"
}

ch_config() {
	mkdir -p "$1"
	cat >"$1/config.xml" <<XML
<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>$1/log</log><errorlog>$1/err</errorlog></logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>$2</http_port>
  <tcp_port>$3</tcp_port>
  <interserver_http_port>$4</interserver_http_port>
  <path>$1/data/</path>
  <tmp_path>$1/tmp/</tmp_path>
  <format_schema_path>$1/fs/</format_schema_path>
  <users_config>$1/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>5368709</mark_cache_size>
  <remote_servers>
    <here><shard><replica><host>127.0.0.1</host><port>$3</port></replica></shard></here>
    ${5:-}
  </remote_servers>
</yandex>
XML
	cat >"$1/users.xml" <<'XML'
<?xml version="1.0"?>
<yandex>
  <profiles><default/></profiles>
  <users>
    <default><password></password><networks><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota></default>
    <writer><password>s3cretpw</password><networks><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota></writer>
    <reader><password>s3cretpw</password><networks><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota></reader>
  </users>
  <quotas><default/></quotas>
</yandex>
XML
}

ch_start() {
	clickhouse-server --config-file="$1/config.xml" >>"$1/stdout" 2>&1 &
	CH_PID=$!
	PIDS="$PIDS $CH_PID"
	_ch_i=0
	until curl -sf "http://127.0.0.1:$2/ping" >/dev/null 2>&1; do
		kill -0 "$CH_PID" 2>/dev/null || { cat "$1/stdout" "$1/err" >&2; fail "clickhouse-server exited"; }
		_ch_i=$((_ch_i + 1))
		[ $_ch_i -lt 1200 ] || fail "clickhouse-server did not answer /ping"
		sleep 0.1
	done
}

ch_new() {
	# shellcheck disable=SC2046
	set -- "$1" $(ch_ports 3)
	CH_HTTP=$2 CH_TCP=$3
	ch_config "$1" "$2" "$3" "$4"
	ch_start "$1" "$2"
}

ch_stop() {
	kill -"${2:-TERM}" "$1" 2>/dev/null
	wait "$1" 2>/dev/null
	PIDS=$(for p in $PIDS; do [ "$p" = "$1" ] || echo "$p"; done)
}

ch_q() { curl -sS --fail --data-binary "$3" "http://127.0.0.1:$1/?database=$2"; }
