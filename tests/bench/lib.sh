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
