# shellcheck shell=bash
# bench 2: full TLS handshakes/s, openssl s_server + openssl s_time -new, and
# TPM commands per handshake counted at the simulator side (sourced).

# tls_server ID CERT -- ENV... -- S_SERVER_ARGS...: starts s_server on a free
# port, checks one verified handshake, records $W/tls/ID.{pid,port}.
tls_server() {
	local id=$1 cert=$2 envs=() port
	shift 3
	while [ "$1" != -- ]; do envs+=("$1"); shift; done
	shift
	port=$(kw_free_port) || return 1
	env "${envs[@]}" openssl s_server -accept "127.0.0.1:$port" -www -cert "$cert" "$@" \
		>"$W/tls/$id.out" 2>"$W/tls/$id.err" </dev/null &
	echo $! >"$W/tls/$id.pid"
	echo "$port" >"$W/tls/$id.port"
	for _ in $(seq 300); do
		grep -q '^ACCEPT' "$W/tls/$id.out" 2>/dev/null && break
		kill -0 "$(cat "$W/tls/$id.pid")" 2>/dev/null || break
		sleep 0.1
	done
	if ! echo | env -u OPENSSL_CONF -u OPENSSL_MODULES timeout 60 openssl s_client \
		-connect "127.0.0.1:$port" -verify_return_error -CAfile "$cert" \
		>"$W/tls/$id.check" 2>&1; then
		echo "bench: TLS server $id does not work:" >&2
		cat "$W/tls/$id.err" "$W/tls/$id.check" >&2
		tls_server_stop "$id"
		return 1
	fi
}

tls_server_stop() {
	local f="$W/tls/$1.pid" p
	[ -f "$f" ] || return 0
	p=$(cat "$f")
	kill "$p" 2>/dev/null
	for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
	kill -9 "$p" 2>/dev/null
	rm -f "$f"
}

# s_time against server ID with protocol flag; appends the rate and the
# handshake count; with pcap files, the TPM commands recorded meanwhile: the
# ones the server sent (CLIENT_PCAP, its own TCTI) and the ones that reached
# the simulator (SIM_PCAP, between tpm2-abrmd and swtpm).
tls_once() {
	local id=$1 proto=$2 cpcap=${3:-} spcap=${4:-} c0=0 s0=0 t0 t1 out n
	[ -f "$W/tls/$id.pid" ] || return 0
	[ -n "$cpcap" ] && c0=$(tpm_commands "$cpcap")
	[ -n "$spcap" ] && s0=$(tpm_commands "$spcap")
	t0=$(date +%s.%N)
	out=$(env -u OPENSSL_CONF -u OPENSSL_MODULES openssl s_time \
		-connect "127.0.0.1:$(cat "$W/tls/$id.port")" -new -time "$TLS_SECONDS" \
		"-$proto" 2>>"$W/tls/$id.stime.err")
	t1=$(date +%s.%N)
	n=$(echo "$out" | sed -n 's/^\([0-9][0-9]*\) connections in [0-9]* real seconds.*/\1/p')
	[ -n "$n" ] || { echo "s_time $id $proto: $out" >>"$W/tls/$id.stime.err"; return 0; }
	awk -v n="$n" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f\n", n / (b - a) }' \
		>>"$W/tls/$id-$proto.rate"
	echo "$n" >>"$W/tls/$id-$proto.count"
	[ -n "$cpcap" ] && cmds_delta "$c0" "$(tpm_commands "$cpcap")" >>"$W/tls/$id-$proto.cmds"
	[ -n "$spcap" ] && cmds_delta "$s0" "$(tpm_commands "$spcap")" >>"$W/tls/$id-$proto.simcmds"
	return 0
}

# the commands recorded between two counts, or "missing" when a recording
# was (the pcap file absent or unreadable): never a 0 that would read "met"
cmds_delta() {
	if [[ $1 =~ ^[0-9]+$ && $2 =~ ^[0-9]+$ ]]; then echo $(($2 - $1)); else echo missing; fi
}

# total commands / total handshakes over all runs; "failed" when a run's
# recording was missing
tls_cmds_per() {
	local c="$W/tls/$1-$2.${3:-cmds}" n="$W/tls/$1-$2.count"
	[ -f "$c" ] && [ -f "$n" ] || { echo "failed"; return; }
	grep -qv '^[0-9][0-9]*$' "$c" && { echo "failed"; return; }
	awk -v c="$(awk '{ s += $1 } END { print s + 0 }' "$c")" \
		-v n="$(awk '{ s += $1 } END { print s + 0 }' "$n")" \
		'BEGIN { if (n > 0) printf "%.2f", c / n; else print "n/a" }'
}

# Phase A: no resource manager (TPM direct), SoftHSM, the engine.
bench_tls_direct() {
	mkdir -p "$W/tls" "$W/sig"
	echo "bench: 2. TLS handshakes/s, TPM direct ($RUNS runs of ${TLS_SECONDS}s)" >&2
	local ossl_kw=(-provider keyward -provider default)
	tls_server sw "$W/sw.pem" -- -u OPENSSL_MODULES -- -key "$W/sw.key"
	tls_server kwtpm "$W/tpm-ec-p256.pem" -- "TCTI_PCAP_FILE=$W/kwtpm.pcap" -- \
		"${ossl_kw[@]}" -key keyward:tpm-ec-p256
	tls_server kwhsm "$W/hsm-ec-p256.pem" -- X=1 -- "${ossl_kw[@]}" -key keyward:hsm-ec-p256
	tls_server engine "$W/hsm-ec-p256.pem" -- "OPENSSL_CONF=$W/engine.cnf" -- \
		-engine pkcs11 -keyform engine -key "$(cat "$W/hsm-ec-p256.uri")"
	local r p
	for r in $(seq "$RUNS"); do
		for p in tls1_3 tls1_2; do
			tls_once sw $p
			tls_once kwtpm $p "$W/kwtpm.pcap"
			want sign || [ $p = tls1_2 ] || sign_once raw tpm ec-p256 1
			tls_once kwhsm $p
			tls_once engine $p
		done
	done
	for p in sw kwtpm kwhsm engine; do tls_server_stop $p; done
}

# Phase B: through tpm2-abrmd (commands counted between abrmd and swtpm).
bench_tls_abrmd() {
	echo "bench: 2. TLS handshakes/s through tpm2-abrmd" >&2
	mkdir -p "$W/sig"
	tls_server swb "$W/sw.pem" -- -u OPENSSL_MODULES -- -key "$W/sw.key"
	tls_server kwrm "$W/rm-ec-p256.pem" -- "TCTI_PCAP_FILE=$W/kwrm.pcap" -- \
		-provider keyward -provider default -key keyward:rm-ec-p256
	# tpm2-openssl as its documentation runs s_server: with the default
	# provider preferred, TLS fetches the default ECDSA for the TPM key and fails
	tls_server tpm2 "$W/tpm-ec-p256.pem" -- -u OPENSSL_MODULES "TCTI_PCAP_FILE=$W/tpm2.pcap" \
		"TPM2OPENSSL_TCTI=pcap:tabrmd:bus_type=session" -- -provider tpm2 -provider default \
		-propquery '?provider=tpm2' -key "$W/tpm-ec-p256.tss2"
	local r p id
	for r in $(seq "$RUNS"); do
		for p in tls1_3 tls1_2; do
			tls_once swb $p
			for id in kwrm tpm2; do
				tls_once $id $p "$W/$id.pcap" "$W/abrmd.pcap"
			done
		done
		# the raw TPM limit through abrmd, for the target
		sign_once raw rm ec-p256 1
	done
	for p in swb kwrm tpm2; do tls_server_stop $p; done
}

tls_rows() {
	local p sw swb rawtpm rawrm lim limrm v cmds r
	rawtpm=$(med "$W/sig/raw-tpm-ec-p256-1")
	rawrm=$(med "$W/sig/raw-rm-ec-p256-1")
	for p in tls1_3 tls1_2; do
		local P="TLS 1.${p#tls1_}"
		sw=$(med "$W/tls/sw-$p.rate")
		swb=$(med "$W/tls/swb-$p.rate")
		lim=$(awk -v a="$sw" -v b="$rawtpm" 'BEGIN { if (a !~ /^[0-9.]+$/ || b !~ /^[0-9.]+$/) print "failed"; else print (a < b ? a : b) }')
		limrm=$(awk -v a="$swb" -v b="$rawrm" 'BEGIN { if (a !~ /^[0-9.]+$/ || b !~ /^[0-9.]+$/) print "failed"; else print (a < b ? a : b) }')
		row 2 "$P handshakes/s: software key (s_server baseline)" "—" "$(fmt "$sw")" "" "" ""
		v=$(med "$W/tls/kwtpm-$p.rate"); r=$(ratio "$v" "$lim"); cmds=$(tls_cmds_per kwtpm $p)
		row 2 "$P handshakes/s: keyward TPM key, direct" "$(fmt "$v")" "min(software $(fmt "$sw"), raw TPM $(fmt "$rawtpm"))" "$r" "≥ 0.90" "$(verdict "$r" 0.90)"
		row 2 "$P TPM commands per handshake: keyward, direct" "$cmds" "" "" "1" "$(verdict "$cmds" 1 max)"
		v=$(med "$W/tls/kwrm-$p.rate"); r=$(ratio "$v" "$limrm"); cmds=$(tls_cmds_per kwrm $p)
		row 2 "$P handshakes/s: keyward TPM key via tpm2-abrmd" "$(fmt "$v")" "min(software $(fmt "$swb"), raw TPM via abrmd $(fmt "$rawrm"))" "$r" "≥ 0.90" "$(verdict "$r" 0.90)"
		row 2 "$P TPM commands per handshake: keyward via abrmd (at the simulator: $(tls_cmds_per kwrm $p simcmds), abrmd adds its context load/save/flush)" "$cmds" "" "" "1" "$(verdict "$cmds" 1 max)"
		local t2 c2 id pn
		for id in tpm2; do
			pn="tpm2-openssl (-propquery ?provider=tpm2, as documented)"
			t2=$(med "$W/tls/$id-$p.rate"); c2=$(tls_cmds_per $id $p)
			r=$(ratio "$v" "$t2")
			if [ "$t2" = failed ]; then
				row 2 "$P handshakes/s: keyward via abrmd vs $pn" "$(fmt "$v")" "fails: $(grep -o 'no shared cipher\|alert [a-z ]*' "$W/tls/$id.err" "$W/tls/$id.stime.err" 2>/dev/null | head -1 | cut -d: -f2)" "n/a" "≥ 1.00" "$(peer_fails_verdict "$v")"
			else
				row 2 "$P handshakes/s: keyward via abrmd vs $pn, $c2 TPM commands/handshake (simulator: $(tls_cmds_per $id $p simcmds))" "$(fmt "$v")" "$(fmt "$t2")" "$r" "≥ 1.00" "$(verdict "$r" 1.00)"
			fi
		done
		v=$(med "$W/tls/kwhsm-$p.rate"); r=$(ratio "$v" "$sw")
		row 2 "$P handshakes/s: keyward SoftHSM key vs software key" "$(fmt "$v")" "software $(fmt "$sw")" "$r" "≥ 0.95" "$(verdict "$r" 0.95)"
		local e
		e=$(med "$W/tls/engine-$p.rate"); r=$(ratio "$v" "$e")
		row 2 "$P handshakes/s: keyward SoftHSM key vs libp11 engine" "$(fmt "$v")" "libp11 engine $(fmt "$e")" "$r" "≥ 1.00" "$(verdict "$r" 1.00)"
	done
}
