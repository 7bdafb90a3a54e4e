# shellcheck shell=bash
# bench/run's devices: its own swtpm, tpm2-abrmd on a private session D-Bus,
# a SoftHSM2 token with a private SOFTHSM2_CONF, all under $W (sourced).
#
# Every TPM command is recorded at the simulator side by tpm2-tss's pcap TCTI
# wrapped around the swtpm TCTI: the direct clients write $W/tpm-<what>.pcap
# (TCTI_PCAP_FILE, set per measurement), tpm2-abrmd writes $W/abrmd.pcap.
# swtpm serves one connection at a time, so abrmd runs only in the phases
# that use it (abrmd_start / abrmd_stop).

# shellcheck source=../../tests/harness/swtpm-ctl
. "$ROOT/tests/harness/swtpm-ctl"

P11_MODULE=/usr/lib/softhsm/libsofthsm2.so
P11_TOKEN=kw-bench
P11_PIN=1234

devices_start() {
	export KW_TEST_TMP="$W" KW_TEST_SWTPM_STATE="$W/swtpm"
	mkdir -p "$KW_TEST_SWTPM_STATE"
	local attempt
	for attempt in 1 2 3 4 5; do
		KW_TEST_SWTPM_PORT=$(kw_free_port) || return 1
		KW_TEST_SWTPM_CTRL=$((KW_TEST_SWTPM_PORT + 1))
		export KW_TEST_SWTPM_PORT KW_TEST_SWTPM_CTRL
		kw_swtpm_start 2>"$W/swtpm.err" && break
		kw_swtpm_stop
		[ $attempt = 5 ] && { cat "$W/swtpm.err" >&2; return 1; }
	done
	TPM_TCTI="swtpm:host=127.0.0.1,port=$KW_TEST_SWTPM_PORT"
	TPM_TCTI_PCAP="pcap:$TPM_TCTI"
	export TCTI_PCAP_FILE="$W/tpm-setup.pcap"

	mkdir -p "$W/softhsm/tokens"
	export SOFTHSM2_CONF="$W/softhsm/softhsm2.conf"
	cat >"$SOFTHSM2_CONF" <<CONF
directories.tokendir = $W/softhsm/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
CONF
	PIN_FILE="$W/user.pin"
	(umask 077 && printf '%s\n' "$P11_PIN" >"$PIN_FILE")
	softhsm2-util --init-token --free --label "$P11_TOKEN" --so-pin 12345678 \
		--pin "$P11_PIN" >/dev/null || { echo "bench: SoftHSM token init failed" >&2; return 1; }
}

# The swtpm stops the orderly way (swtpm_ioctl -s), else by SIGKILL.
devices_stop() {
	abrmd_stop
	if [ -f "$W/swtpm.pid" ]; then
		swtpm_ioctl --tcp "127.0.0.1:$KW_TEST_SWTPM_CTRL" -s >/dev/null 2>&1
		local p
		p=$(cat "$W/swtpm.pid")
		for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
		kw_swtpm_stop
	fi
}

abrmd_start() {
	mkdir -p "$W/dbus"
	local addr
	addr=$(dbus-daemon --session --address="unix:path=$W/dbus/bus" --fork \
		--print-address=1 --print-pid=3 3>"$W/dbus.pid") || {
		echo "bench: dbus-daemon failed" >&2; return 1; }
	export DBUS_SESSION_BUS_ADDRESS="$addr"
	TCTI_PCAP_FILE="$W/abrmd.pcap" tpm2-abrmd --session --allow-root --flush-all \
		--tcti="$TPM_TCTI_PCAP" >"$W/abrmd.log" 2>&1 &
	echo $! >"$W/abrmd.pid"
	disown $! 2>/dev/null || true
	for _ in $(seq 100); do
		tpm2_getrandom -T tabrmd:bus_type=session 4 >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	echo "bench: tpm2-abrmd did not come up:" >&2
	cat "$W/abrmd.log" >&2
	return 1
}

abrmd_stop() {
	local f p
	for f in "$W/abrmd.pid" "$W/dbus.pid"; do
		[ -f "$f" ] || continue
		p=$(cat "$f")
		kill "$p" 2>/dev/null
		for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.05; done
		kill -9 "$p" 2>/dev/null
		rm -f "$f"
	done
}

# TPM commands recorded in a pcapng file (one enhanced packet block per
# command and one per response); "missing" when there is no such file.
tpm_commands() {
	python3 - "$1" <<'PY'
import struct, sys
try:
    data = open(sys.argv[1], "rb").read()
except OSError:
    print("missing"); sys.exit()
off = n = 0
while off + 8 <= len(data):
    t, size = struct.unpack_from("<II", data, off)
    if size < 12 or off + size > len(data):
        break
    n += t == 6
    off += size
print(n // 2)
PY
}

# TPM commands per signature in a pcapng file, steady state: the commands
# after the first TPM2_Sign up to and including the last one, divided by the
# signatures among them; then the commands of the last signature's share by
# name, e.g. "3.00 StartAuthSession+PolicyNV+Sign" ("failed" without 3 signatures).
tpm_per_sign() {
	python3 - "$1" <<'PY'
import struct, sys
names = {0x15D: "Sign", 0x176: "StartAuthSession", 0x149: "PolicyNV", 0x165: "FlushContext",
         0x169: "NV_ReadPublic", 0x173: "ReadPublic", 0x157: "Load", 0x17A: "GetCapability",
         0x14E: "NV_Read", 0x131: "CreatePrimary", 0x153: "Create", 0x178: "TestParms"}
try:
    data = open(sys.argv[1], "rb").read()
except OSError:
    print("failed"); sys.exit()
seq, off = [], 0
while off + 8 <= len(data):
    t, size = struct.unpack_from("<II", data, off)
    if size < 12 or off + size > len(data):
        break
    if t == 6:  # enhanced packet block: IPv4 (20) + TCP (20) + the TPM bytes
        caplen = struct.unpack_from("<I", data, off + 20)[0]
        pkt = data[off + 28:off + 28 + caplen]
        # the pcap TCTI writes commands to port 2321 and responses from it
        if len(pkt) >= 50 and struct.unpack_from(">H", pkt, 22)[0] == 2321:
            seq.append(struct.unpack_from(">I", pkt, 46)[0])
    off += size
signs = [i for i, c in enumerate(seq) if c == 0x15D]
if len(signs) < 3:
    print("failed"); sys.exit()
per = (signs[-1] - signs[0]) / (len(signs) - 1)
print("%.2f %s" % (per, "+".join(names.get(c, hex(c)) for c in seq[signs[-2] + 1:signs[-1] + 1])))
PY
}
