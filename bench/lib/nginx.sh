# shellcheck shell=bash
# bench 3: nginx, 2 workers, requests/s where every request is a new TLS
# connection (full handshake): two `openssl s_time -new -www /` clients in
# parallel, requests counted by s_time (sourced by bench/run).

# nginx_start ID CERT KEYFILE: keyward's provider from an openssl.cnf, the key
# from a file (a software key, or a keyward reference file).
nginx_start() {
	local id=$1 cert=$2 key=$3 d="$W/nginx/$1" port
	mkdir -p "$d/logs" "$d/tmp"
	port=$(kw_free_port) || return 1
	echo "$port" >"$d/port"
	cat >"$d/nginx.conf" <<CONF
$([ "$(id -u)" = 0 ] && echo "user root;")
worker_processes 2;
daemon off;
master_process on;
pid $d/nginx.pid;
error_log $d/logs/error.log warn;
env OPENSSL_CONF;
env KEYWARD_STORE;
env SOFTHSM2_CONF;
env DBUS_SESSION_BUS_ADDRESS;
env TCTI_PCAP_FILE;
events { worker_connections 512; }
http {
	access_log off;
	client_body_temp_path $d/tmp/body;
	proxy_temp_path $d/tmp/proxy;
	fastcgi_temp_path $d/tmp/fastcgi;
	uwsgi_temp_path $d/tmp/uwsgi;
	scgi_temp_path $d/tmp/scgi;
	server {
		listen 127.0.0.1:$port ssl reuseport;
		ssl_certificate $cert;
		ssl_certificate_key $key;
		ssl_protocols TLSv1.2 TLSv1.3;
		ssl_session_cache off;
		ssl_session_tickets off;
		location / { default_type text/plain; return 200 "ok \$ssl_protocol\\n"; }
	}
}
CONF
	TCTI_PCAP_FILE="$W/nginx-$id.pcap" OPENSSL_CONF="$W/keyward.cnf" nginx -p "$d" -c "$d/nginx.conf" >"$d/stdout" 2>&1 &
	echo $! >"$d/master.pid"
	for _ in $(seq 100); do
		kw_port_in_use "$port" && break
		sleep 0.1
	done
	local body
	body=$(curl -sS --max-time 30 --cacert "$cert" --resolve "localhost:$port:127.0.0.1" \
		"https://localhost:$port/" 2>&1)
	case "$body" in
	"ok TLSv1."*) return 0 ;;
	esac
	echo "bench: nginx $id does not serve: $body" >&2
	cat "$d/stdout" "$d/logs/error.log" >&2
	nginx_stop "$id"
	return 1
}

nginx_stop() {
	local d="$W/nginx/$1" p
	[ -f "$d/master.pid" ] || return 0
	p=$(cat "$d/master.pid")
	kill -QUIT "$p" 2>/dev/null
	for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$p" 2>/dev/null
	pkill -KILL -P "$p" 2>/dev/null
	rm -f "$d/master.pid"
}

# Two s_time clients for NGINX_SECONDS; requests/s = both counts / wall time.
nginx_once() {
	local id=$1 d="$W/nginx/$1" t0 t1 n1 n2 i
	[ -f "$d/master.pid" ] || return 0
	t0=$(date +%s.%N)
	for i in 1 2; do
		env -u OPENSSL_CONF -u OPENSSL_MODULES openssl s_time \
			-connect "127.0.0.1:$(cat "$d/port")" -new -www / -time "$NGINX_SECONDS" \
			>"$d/client$i.out" 2>>"$d/client.err" &
		echo $! >"$d/client$i.pid"
	done
	wait "$(cat "$d/client1.pid")" "$(cat "$d/client2.pid")"
	t1=$(date +%s.%N)
	n1=$(sed -n 's/^\([0-9][0-9]*\) connections in [0-9]* real seconds.*/\1/p' "$d/client1.out")
	n2=$(sed -n 's/^\([0-9][0-9]*\) connections in [0-9]* real seconds.*/\1/p' "$d/client2.out")
	[ -n "$n1" ] && [ -n "$n2" ] || return 0
	awk -v n=$((n1 + n2)) -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f\n", n / (b - a) }' \
		>>"$d/rate"
}

bench_nginx() {
	mkdir -p "$W/nginx"
	echo "bench: 3. nginx requests/s over new TLS connections ($RUNS runs of ${NGINX_SECONDS}s)" >&2
	nginx_start sw "$W/sw.pem" "$W/sw.key"
	nginx_start kwrm "$W/rmn-ec-p256.pem" "$W/rmn-ec-p256.ref"
	nginx_start kwhsm "$W/hsm-ec-p256.pem" "$W/hsm-ec-p256.ref"
	local r id
	for r in $(seq "$RUNS"); do
		for id in sw kwrm kwhsm; do nginx_once $id; done
	done
	for id in sw kwrm kwhsm; do nginx_stop $id; done
	local sw v
	sw=$(med "$W/nginx/sw/rate")
	row 3 "nginx (2 workers) requests/s, new TLS connection each: software key" "—" "$(fmt "$sw")" "" "" ""
	v=$(med "$W/nginx/kwrm/rate")
	row 3 "nginx requests/s: keyward TPM key via tpm2-abrmd vs software key" "$(fmt "$v")" "software $(fmt "$sw")" "$(ratio "$v" "$sw")" "(no target)" "—"
	v=$(med "$W/nginx/kwhsm/rate")
	row 3 "nginx requests/s: keyward SoftHSM key vs software key" "$(fmt "$v")" "software $(fmt "$sw")" "$(ratio "$v" "$sw")" "(no target)" "—"
}
