# shellcheck shell=bash
# bench/run's results: rows collected in $W/rows.tsv, printed as a markdown
# table and written with machine details to bench/RESULTS.md (sourced).

# row SECTION MEASUREMENT KEYWARD PEERS RATIO TARGET RESULT
row() {
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$W/rows.tsv"
}

# The median of the numbers on stdin ("failed" when there are none).
median() {
	grep -E '^[0-9.]+$' | sort -g | awk '{a[NR] = $1}
		END { if (NR == 0) print "failed"; else if (NR % 2) print a[(NR + 1) / 2];
		      else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

# median of the values in a file
med() {
	if [ -f "$1" ]; then median <"$1"; else echo failed; fi
}

# a / b with two decimals, n/a when either failed
ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN { if (a !~ /^[0-9.]+$/ || b !~ /^[0-9.]+$/ || b + 0 == 0)
		print "n/a"; else printf "%.2f", a / b }'
}

# verdict VALUE TARGET [max]: met when VALUE >= TARGET (<= with max)
verdict() {
	awk -v v="$1" -v t="$2" -v m="${3:-}" 'BEGIN {
		if (v !~ /^[0-9.]+$/) print "**missed** (failed)";
		else if (m == "max" ? v + 0 <= t + 0 : v + 0 >= t + 0) print "met";
		else print "**missed**" }'
}

# The verdict of a comparison whose peer failed to run: met only when
# keyward's own figure (arg 1) was measured; a failing peer proves nothing
# about a keyward that failed too.
peer_fails_verdict() {
	if [[ $1 =~ ^[0-9.]+$ ]]; then echo "met (the peer fails)"; else echo "**missed** (failed)"; fi
}

# a number for the table
fmt() {
	awk -v v="$1" 'BEGIN { if (v !~ /^[0-9.]+$/) print "failed";
		else if (v >= 100) printf "%.0f", v; else if (v >= 10) printf "%.1f", v;
		else printf "%.2f", v }'
}

table_print() {
	echo "| # | measurement | keyward | peers / baseline | ratio | target | result |"
	echo "|---|---|---|---|---|---|---|"
	awk -F'\t' '{ printf "| %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7 }' \
		"$W/rows.tsv"
}

pkg_version() {
	dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo "not installed"
}

machine_details() {
	echo "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ); keyward ${KW_REVISION:-?} (built at the start of the run)"
	echo "- CPU: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1); nproc $(nproc)"
	echo "- kernel: $(uname -srm)"
	echo "- load average at start: $LOAD_START (the machine is shared: compare ratios, not absolute numbers)"
	local p
	for p in openssl swtpm softhsm2 tpm2-openssl libengine-pkcs11-openssl tpm2-abrmd \
		libtss2-esys-3.0.2-0 nginx-light nginx-core sqlite3; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" &&
			echo "- $p $(pkg_version "$p")"
	done
	echo "- mode: $MODE ($RUNS runs per measurement, medians)"
}

results_write() {
	local out=$1
	{
		echo "# keyward benchmark results"
		echo
		echo "Written by \`bench/run$( [ "$MODE" = quick ] && echo ' --quick')\`: every number below was measured by that run."
		echo "How each number is measured: bench/README.md."
		echo
		machine_details
		echo
		table_print
		echo
		[ -f "$W/notes.md" ] && cat "$W/notes.md"
	} >"$out"
}
