#!/bin/sh
# moetrace merge: a shard given twice would have its counts added twice.
# The same file under the same name, a symbolic link or a hard link is
# refused (exit 2, both arguments named, nothing written); a copy of it is
# another file and adds up.
. "$(dirname "$0")/lib.sh"
command -v sqlite3 >/dev/null || skip "no sqlite3 shell"
expect_status 0 mt gen --model mixtral-8x7b --steps 4 --run a -q "$T/a.db"
ln -s a.db "$T/sym.db"
ln "$T/a.db" "$T/hard.db"
sum=$(cksum <"$T/a.db")
for two in "$T/a.db" "$T/sym.db" "$T/hard.db"; do
	expect_status 2 mt merge --sum "$T/o.db" "$T/a.db" "$two"
	expect_grep "$T/err" "^moetrace merge: shard 1 '$T/a.db' and shard 2 '$two' are the same file: its counts would be added twice$"
	[ ! -e "$T/o.db" ] || fail "a refused merge left o.db"
done
# a third shard between them: still found, by its position
cp "$T/a.db" "$T/copy.db"
expect_status 2 mt merge --sum "$T/o.db" "$T/sym.db" "$T/copy.db" "$T/hard.db"
expect_grep "$T/err" "shard 1 '$T/sym.db' and shard 3 '$T/hard.db' are the same file"
[ "$(cksum <"$T/a.db")" = "$sum" ] || fail "a refused merge changed a shard"

# a copy is another file: its tokens add to the original's
expect_status 0 mt merge --sum "$T/o.db" "$T/a.db" "$T/copy.db"
a=$(sqlite3 "$T/a.db" "SELECT sum(tokens) FROM steps")
b=$(sqlite3 "$T/o.db" "SELECT sum(tokens) FROM steps")
[ "$b" -eq $((2 * a)) ] || fail "--sum of a copy: tokens $b, expected $((2 * a))"
