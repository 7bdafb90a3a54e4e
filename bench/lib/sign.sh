# shellcheck shell=bash
# bench 1: signatures/s, keyward's provider vs the raw device loop vs the
# peer (tpm2-openssl for TPM keys, libp11's engine for SoftHSM keys), for
# ec-p256 and rsa-2048, 1 and 2 threads (sourced by bench/run).

# sign_cmd WHO BACKEND KEYTYPE: the kwbench-sign command line (after --threads)
sign_cmd() {
	local who=$1 b=$2 t=$3 name="$2-$3" rsa=
	[ "$t" = rsa-2048 ] && rsa=--rsa
	local cert="$W/$name.pem"
	case "$who/$b" in
	keyward/*) echo "$SIGN --mode provider --key keyward:$name --cert $cert" ;;
	raw/tpm | raw/rm) echo "$SIGN --mode esys $rsa --store $KEYWARD_STORE --key $name --cert $cert" ;;
	raw/hsm) echo "$SIGN --mode p11 $rsa --key $(cat "$W/$name.uri") --module $P11_MODULE --pin-file $PIN_FILE --cert $cert" ;;
	peer/tpm) echo "env -u OPENSSL_MODULES TPM2OPENSSL_TCTI=$TPM_TCTI_PCAP $SIGN --mode tpm2 --key $W/$name.tss2 --cert $cert" ;;
	peer/hsm) echo "$SIGN --mode engine --key $(cat "$W/$name.uri") --module $P11_MODULE --pin-file $PIN_FILE --cert $cert" ;;
	esac
}

sign_once() {
	local who=$1 b=$2 t=$3 th=$4 out
	# shellcheck disable=SC2046
	out=$(TCTI_PCAP_FILE=/dev/null $(sign_cmd "$who" "$b" "$t") --threads "$th" \
		--seconds "$SIGN_SECONDS" 2>>"$W/sign.err")
	local rate=${out#rate=}
	rate=${rate%% *}
	if [[ "$rate" =~ ^[0-9.]+$ ]]; then
		echo "$rate" >>"$W/sig/$who-$b-$t-$th"
	else
		echo "failed: $who $b $t threads=$th" >>"$W/sign.err"
	fi
}

bench_sign() {
	local r b t th who
	mkdir -p "$W/sig"
	echo "bench: 1. signatures/s ($RUNS runs of ${SIGN_SECONDS}s each)" >&2
	for r in $(seq "$RUNS"); do
		for b in tpm hsm; do for t in ec-p256 rsa-2048; do for th in 1 2; do
			for who in keyward raw peer; do
				sign_once "$who" "$b" "$t" "$th"
			done
		done; done; done
	done
	sign_rows
	bench_sign_revocable
}

# bench 1b: a revocable TPM key (cert create --revocable: PolicyNV on an NV
# counter of its own) against an ordinary one, both through keyward's
# provider, 1 thread, side by side: signatures/s, and TPM commands per
# signature from a pcap of one extra short run of each (tpm_per_sign).
sign_rev_once() { # KEYTYPE ordinary|revocable [PCAP]
	local name="tpm-$1" out rate
	[ "$2" = revocable ] && name="tpm-$1-rev"
	out=$(TCTI_PCAP_FILE=${3:-/dev/null} $SIGN --mode provider --key "keyward:$name" \
		--cert "$W/$name.pem" --threads 1 --seconds "$SIGN_SECONDS" 2>>"$W/sign.err")
	rate=${out#rate=}
	rate=${rate%% *}
	if [ -n "${3:-}" ]; then
		return 0
	elif [[ "$rate" =~ ^[0-9.]+$ ]]; then
		echo "$rate" >>"$W/sig/rev-$1-$2"
	else
		echo "failed: keyward $name threads=1" >>"$W/sign.err"
	fi
}

bench_sign_revocable() {
	local r t k
	echo "bench: 1b. revocable TPM keys ($RUNS runs of ${SIGN_SECONDS}s each)" >&2
	for r in $(seq "$RUNS"); do
		for t in ec-p256 rsa-2048; do for k in ordinary revocable; do
			sign_rev_once "$t" "$k"
		done; done
	done
	for t in ec-p256 rsa-2048; do
		local c0 c1 n0 n1 o v
		for k in ordinary revocable; do
			rm -f "$W/sig/rev-$t-$k.pcap"
			sign_rev_once "$t" "$k" "$W/sig/rev-$t-$k.pcap"
		done
		read -r n0 c0 <<<"$(tpm_per_sign "$W/sig/rev-$t-ordinary.pcap")"
		read -r n1 c1 <<<"$(tpm_per_sign "$W/sig/rev-$t-revocable.pcap")"
		row 1 "TPM commands per signature, $t, keyward: revocable key vs ordinary key" \
			"$n1 (${c1:-?})" "ordinary $n0 (${c0:-?})" \
			"$(awk -v a="$n1" -v b="$n0" 'BEGIN { if (a !~ /^[0-9.]+$/ || b !~ /^[0-9.]+$/) print "n/a"; else printf "%+.2f", a - b }')" \
			"n/a" "measured"
		o=$(med "$W/sig/rev-$t-ordinary") v=$(med "$W/sig/rev-$t-revocable")
		row 1 "sig/s TPM $t, 1 thread: revocable key vs ordinary key (both keyward)" \
			"$(fmt "$v")" "ordinary $(fmt "$o")" "$(ratio "$v" "$o")" "n/a" "measured"
	done
}

# the first error line a failing peer printed
sign_peer_error() {
	local e
	e=$(grep -h -B3 "^failed: peer $1 $2 threads=$3\$" "$W/sign.err" | grep -v '^failed:' |
		grep -o 'Esys called in bad sequence\|[a-z ]*: the first signature[a-z ]*\|[0-9]* of [0-9]* threads failed' | head -1)
	echo "${e:-see notes}"
}

sign_rows() {
	local b t th kw raw peer pname
	for b in tpm hsm; do for t in ec-p256 rsa-2048; do for th in 1 2; do
		kw=$(med "$W/sig/keyward-$b-$t-$th")
		raw=$(med "$W/sig/raw-$b-$t-$th")
		peer=$(med "$W/sig/peer-$b-$t-$th")
		[ $b = tpm ] && pname=tpm2-openssl || pname="libp11 engine"
		local dev=TPM raw_name=Esys_Sign
		[ $b = hsm ] && dev=SoftHSM raw_name=C_Sign
		local what="sig/s $dev $t, $th thread$([ "$th" = 2 ] && echo s)"
		local rr rp
		rr=$(ratio "$kw" "$raw")
		rp=$(ratio "$kw" "$peer")
		row 1 "$what: keyward vs raw $raw_name" "$(fmt "$kw")" "raw $(fmt "$raw")" "$rr" "≥ 0.95" "$(verdict "$rr" 0.95)"
		if [ "$peer" = failed ] && [ "$kw" != failed ]; then
			row 1 "$what: keyward vs $pname" "$(fmt "$kw")" "$pname fails: $(sign_peer_error "$b" "$t" "$th")" "n/a" "≥ 1.00" "$(peer_fails_verdict "$kw")"
		else
			row 1 "$what: keyward vs $pname" "$(fmt "$kw")" "$pname $(fmt "$peer")" "$rp" "≥ 1.00" "$(verdict "$rp" 1.00)"
		fi
	done; done; done
	for t in ec-p256 rsa-2048; do
		# Scaling is judged against the device's own in the same run: on a
		# shared 2-core machine raw C_Sign itself scales anywhere from ×1.1
		# to ×1.9, so keyward's ×k2/k1 over raw's ×r2/r1 is what keyward adds.
		local k1 k2 r1 r2 sk sr rel
		k1=$(med "$W/sig/keyward-hsm-$t-1") k2=$(med "$W/sig/keyward-hsm-$t-2")
		r1=$(med "$W/sig/raw-hsm-$t-1") r2=$(med "$W/sig/raw-hsm-$t-2")
		sk=$(ratio "$k2" "$k1") sr=$(ratio "$r2" "$r1")
		rel=$(ratio "$sk" "$sr")
		row 1 "SoftHSM $t scaling 1 → 2 threads: keyward's (×$sk) vs raw C_Sign's" "$(fmt "$k1") → $(fmt "$k2")" "raw C_Sign: $(fmt "$r1") → $(fmt "$r2") (×$sr)" "$rel" "≥ 0.90" "$(verdict "$rel" 0.90)"
	done
}
