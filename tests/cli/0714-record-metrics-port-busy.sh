# record --metrics on a port another process holds fails before it creates
# anything: no database, no empty run that the same command, run again,
# would refuse as an existing name.
. "$(dirname "$0")/lib.sh"
python3 -c '
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
open(sys.argv[1], "w").write(str(s.getsockname()[1]))
time.sleep(60)' "$T/port" &
holder=$!
trap 'kill $holder 2>/dev/null; rm -rf "$T"' EXIT
wait_until 20 test -s "$T/port" || fail "no port held"
port=$(cat "$T/port")
expect_status 1 mt record --model mixtral-8x7b --steps 10 --run fixed --metrics "127.0.0.1:$port" "$T/m.db"
expect_grep "$T/err" "^moetrace record: --metrics cannot listen on '127.0.0.1:$port': Address already in use$"
[ ! -e "$T/m.db" ] || fail "a record that could not serve its metrics left a database"
# an existing trace is left as it was: no run added
expect_status 0 mt gen --model mixtral-8x7b --steps 5 --run g -q "$T/g.db"
cp "$T/g.db" "$T/g.orig"
expect_status 1 mt record --model mixtral-8x7b --steps 10 --run fixed --metrics "127.0.0.1:$port" "$T/g.db"
same_file "$T/g.db" "$T/g.orig"
