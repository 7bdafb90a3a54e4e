# shellcheck shell=bash
# bench 4: a store with many certificates; bench 5: renewal throughput
# (sourced by bench/run).

# scale_cmd LABEL TARGET_MS ARGS...: RUNS timed runs of keyward ARGS (fewer
# when they are slow: at most ~30 s of runs after the first)
scale_cmd() {
	local label=$1 target=$2 res t rss n
	shift 2
	res=$(python3 "$ROOT/bench/lib/runs.py" "$RUNS" "$W/scale.out" -- "$KW" --store "$W/scale" "$@" \
		2>>"$W/scale.err") || res="failed 0 0"
	read -r t rss n <<<"$res"
	echo "$label $t $rss" >>"$W/scale.times"
	local ms
	ms=$(awk -v t="$t" 'BEGIN { if (t ~ /^[0-9.]+$/) printf "%.1f", t * 1000; else print "failed" }')
	row 4 "$SCALE_COUNT certificates: \`keyward $*\` (median of $n runs; peak RSS $((rss / 1024)) MiB)" "$ms ms" "" "" "< $target ms" \
		"$(verdict "$ms" "$target" max)"
}

bench_store() {
	echo "bench: 4. store scale: $SCALE_COUNT certificates" >&2
	local S="$W/scale" t0 t1
	"$KW" --store "$S" init >/dev/null &&
		"$KW" --store "$S" backend add hsm pkcs11 --module "$P11_MODULE" --token "$P11_TOKEN" \
			--pin-source "file:$PIN_FILE" >/dev/null &&
		"$KW" --store "$S" cert create seed --backend hsm --subject CN=seed >/dev/null || return 1
	t0=$(date +%s.%N)
	"$BUILD/bench/kwbench-store" --store "$S" --seed seed --count "$SCALE_COUNT" || return 1
	t1=$(date +%s.%N)
	local n
	n=$("$KW" --store "$S" cert list --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
	row 4 "store fill: $SCALE_COUNT certificates (one shared SoftHSM key, each signed in the token), certificates listed afterwards: $n" \
		"$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f s", b - a }')" "" "" "$((SCALE_COUNT + 1)) listed" \
		"$([ "$n" = $((SCALE_COUNT + 1)) ] && echo met || echo '**missed**')"
	local mid
	mid=$(printf 'c%06d' $((SCALE_COUNT / 2)))
	scale_cmd list 1000 cert list --json
	scale_cmd renew-dry 1000 renew --due --dry-run
	scale_cmd metrics 1000 metrics
	scale_cmd show 20 cert show "$mid"
	du -sh "$S" | awk '{ print "store size on disk: " $1 }' >>"$W/notes.md.tmp"
}

# renew_store DIR COUNT: a store with COUNT certificates (30 days) on a token
# of its own. They start on one shared key (made the kwbench-store way, as in
# bench 4); their policy asks for a new key at renewal, so each renewal
# generates its own key in the token.
renew_store() {
	local S=$1 count=$2
	# a token directory of its own: SoftHSM loads every token of its directory
	mkdir -p "$S.softhsm/tokens"
	printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n' \
		"$S.softhsm/tokens" >"$S.softhsm/softhsm2.conf"
	local SOFTHSM2_CONF="$S.softhsm/softhsm2.conf"
	export SOFTHSM2_CONF
	softhsm2-util --init-token --free --label renew --so-pin 12345678 --pin "$P11_PIN" \
		>/dev/null &&
		"$KW" --store "$S" init >/dev/null &&
		"$KW" --store "$S" backend add hsm pkcs11 --module "$P11_MODULE" --token renew \
			--pin-source "file:$PIN_FILE" >/dev/null &&
		"$KW" --store "$S" cert create seed --backend hsm --subject CN=seed >/dev/null &&
		"${STORE_GEN:-$BUILD/bench/kwbench-store}" --store "$S" --seed seed --count "$count" \
			--prefix r --days 30 --spread 0
}

# renew_time DIR COUNT LABEL: times renew --due 29 days later, adds the row
renew_time() {
	local S=$1 count=$2 label=$3 later t0 t1 rc renewed secs per
	later=$(date -u -d '+29 days' +%Y-%m-%dT%H:%M:%SZ)
	t0=$(date +%s.%N)
	KEYWARD_NOW=$later SOFTHSM2_CONF="$S.softhsm/softhsm2.conf" "$KW" --store "$S" renew --due \
		--json >"$S.json" 2>"$S.err"
	rc=$?
	t1=$(date +%s.%N)
	renewed=$(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
items = d.get("results", d) if isinstance(d, dict) else d
print(sum(1 for r in items if isinstance(r, dict) and r.get("action") == "renewed"))' "$S.json" 2>/dev/null || echo 0)
	secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
	per=$(awk -v s="$secs" -v n="$renewed" 'BEGIN { if (n > 0) printf "%.0f", s * 1000 / n; else print "n/a" }')
	row 5 "\`renew --due\`: $label, exit $rc, $renewed renewed" "$secs s ($per ms each)" "" "" \
		"all $count renewed" "$([ "$renewed" = "$count" ] && [ $rc = 0 ] && echo met || echo '**missed**')"
	[ "$renewed" = "$count" ] && [ $rc = 0 ] && echo "$secs" >>"$S.secs"
}

# renew_compare: --compare's rounds; each runs this build and the other one
# on stores of their own (old first in odd rounds, this one first in even
# ones), then the medians and their ratio.
renew_compare() {
	local i b label
	for ((i = 1; i <= RENEW_ROUNDS; i++)); do
		for b in $([ $((i % 2)) = 1 ] && echo "old new" || echo "new old"); do
			if [ $b = old ]; then
				label="$RENEW_COUNT due SoftHSM-key certificates, a new key each, round $i, \`$COMPARE_LABEL\`"
				KW="$COMPARE/cli/keyward" STORE_GEN="$COMPARE/bench/kwbench-store" \
					renew_store "$W/renew-$b-$i" "$RENEW_COUNT" || return 1
				KW="$COMPARE/cli/keyward" renew_time "$W/renew-$b-$i" "$RENEW_COUNT" "$label"
			else
				label="$RENEW_COUNT due SoftHSM-key certificates, a new key each, round $i, this build"
				renew_store "$W/renew-$b-$i" "$RENEW_COUNT" || return 1
				renew_time "$W/renew-$b-$i" "$RENEW_COUNT" "$label"
			fi
			cat "$W/renew-$b-$i.secs" >>"$W/renew-$b.secs" 2>/dev/null
		done
	done
	local old new ratio
	old=$(median <"$W/renew-old.secs" 2>/dev/null) new=$(median <"$W/renew-new.secs" 2>/dev/null)
	ratio=$(awk -v o="$old" -v n="$new" 'BEGIN { if (o ~ /^[0-9.]+$/ && n + 0 > 0) printf "%.2f", o / n; else print "failed" }')
	row 5 "\`renew --due\` of $RENEW_COUNT, medians of $RENEW_ROUNDS rounds: this build / \`$COMPARE_LABEL\`" \
		"$new s" "$old s" "$ratio× faster" ">= 3×" "$(verdict "$ratio" 3)"
}

bench_renew() {
	echo "bench: 5. renewal throughput: $RENEW_COUNT SoftHSM-key certificates" >&2
	if [ -n "$COMPARE" ]; then
		renew_compare
		return
	fi
	renew_store "$W/renew" "$RENEW_COUNT" || return 1
	renew_time "$W/renew" "$RENEW_COUNT" "$RENEW_COUNT due SoftHSM-key certificates on one token, a new key each"
}
