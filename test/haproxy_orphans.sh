#!/bin/sh
# haproxy_orphans.sh [ABORTS [LIB [GUARD]]]: Debian's haproxy with ssl-mode-async and the
# pausing test provider (test/pausing_provider.c) on 127.0.0.1, fed ABORTS (default 50000)
# aborted handshakes: a full TLS 1.3 ClientHello, then a reset. LIB is dropin (haproxy on
# libasyncjob-openssl.so, which reclaims the jobs libssl orphans) or libcrypto (OpenSSL's
# own jobs) or sync (libcrypto, without ssl-mode-async: the baseline); GUARD is auto or mprotect (ASYNCJOB_GUARD_MODE=mprotect: two mappings per
# stack, as on kernels before 6.13). Prints haproxy's RSS every 10,000 aborts and how many
# of 200 full handshakes succeed at the end; exits 1 if any failed, 77 if it cannot run.
# INJOB_HEAP=1 also preloads test/injob_heap.c (built here with ${CC:-cc}) and prints, with
# each RSS line, the heap bytes and blocks allocated inside jobs that are still live.
# Run from a build directory (make first); not part of make check (a minute or more per run).
aborts=${1:-50000}
lib=${2:-dropin}
guard=${3:-auto}
so=`pwd`/lib/.libs/libasyncjob-openssl.so
mod=`pwd`/test/.libs
command -v haproxy >/dev/null 2>&1 || { echo "SKIP: no haproxy (apt-get install haproxy)"; exit 77; }
command -v python3 >/dev/null 2>&1 || { echo "SKIP: no python3"; exit 77; }
[ -f "$so" ] && [ -f "$mod/pausing.so" ] || { echo "SKIP: build the drop-in and test/pausing.la first (make check builds both)"; exit 77; }
tmp=`mktemp -d` || exit 1
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; rm -rf "$tmp"' EXIT
(cd "$tmp" && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -keyout key.pem -out cert.pem -days 1 -subj /CN=localhost && cat cert.pem key.pem >both.pem) \
  >"$tmp/req.log" 2>&1 || { echo "FAIL: openssl req: `cat "$tmp/req.log"`"; exit 1; }
heap_out=
if [ "${INJOB_HEAP:-0}" = 1 ]; then
  ${CC:-cc} -O2 -shared -fPIC -o "$tmp/injob_heap.so" "`dirname "$0"`/injob_heap.c" -ldl -lpthread ||
    { echo "FAIL: could not build injob_heap.c"; exit 1; }
  heap_out=$tmp/injob_heap.out
fi
port=`python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'`
async=ssl-mode-async
case $lib in
  dropin) preload=$so ;;
  libcrypto) preload= ;;
  sync) preload= async= ;;
  *) echo "LIB is dropin, libcrypto or sync"; exit 2 ;;
esac
cat >"$tmp/haproxy.cfg" <<EOF
global
    nbthread 1
    maxconn 4000
    $async
    ssl-provider-path $mod
    ssl-provider pausing
    ssl-provider default
    ssl-propquery ?provider=pausing
defaults
    mode http
    timeout connect 5s
    timeout client 5s
    timeout server 5s
frontend fe
    bind 127.0.0.1:$port ssl crt $tmp/both.pem ssl-min-ver TLSv1.3
    http-request return status 200 content-type text/plain string ok
EOF
case $guard in
  auto) mode= ;;
  mprotect) mode=mprotect ;;
  *) echo "GUARD is auto or mprotect"; exit 2 ;;
esac
[ -n "$heap_out" ] && preload="$preload $tmp/injob_heap.so"
PAUSING_PROVIDER_COUNT=$tmp/count ASYNCJOB_GUARD_MODE=$mode INJOB_HEAP_OUT=$heap_out LD_PRELOAD=$preload \
  haproxy -db -f "$tmp/haproxy.cfg" >"$tmp/haproxy.log" 2>&1 &
pid=$!
python3 - "$port" "$aborts" "$pid" "$lib" "${mode:-auto}" "$heap_out" <<'EOF'
import socket, ssl, struct, sys, time
port, aborts, pid, lib, guard, heap_out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]
def heap():
    if not heap_out:
        return ""
    time.sleep(1.1)  # injob_heap.so writes its file every second
    try:
        return " " + open(heap_out).read().strip()
    except OSError:
        return " (no injob_heap output)"
def rss_kb():
    for line in open("/proc/%s/status" % pid):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
def maps():
    return sum(1 for _ in open("/proc/%s/maps" % pid))
for _ in range(100):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        break
    except OSError:
        time.sleep(0.1)
else:
    sys.exit("FAIL: haproxy did not listen")
# One full ClientHello, as the client's first flight.
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.minimum_version = ssl.TLSVersion.TLSv1_3
out = ssl.MemoryBIO()
obj = ctx.wrap_bio(ssl.MemoryBIO(), out, server_hostname="localhost")
try:
    obj.do_handshake()
except ssl.SSLWantReadError:
    pass
hello = out.read()
linger = struct.pack("ii", 1, 0)
def handshakes(n):
    ok = 0
    for _ in range(n):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                with ctx.wrap_socket(s, server_hostname="localhost") as t:
                    t.sendall(b"GET / HTTP/1.0\r\n\r\n")
                    if b" 200 " in t.recv(4096):
                        ok += 1
        except OSError:
            pass
    return ok
print("lib=%s guard=%s: %d of 20 handshakes before the aborts" % (lib, guard, handshakes(20)), flush=True)
start = time.time()
print("lib=%s guard=%s aborts=0 rss_kb=%d maps=%d%s" % (lib, guard, rss_kb(), maps(), heap()), flush=True)
for i in range(1, aborts + 1):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(hello)
    time.sleep(0.0002)  # let haproxy read it and start the handshake job
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
    s.close()
    if i % 10000 == 0 or i == aborts:
        time.sleep(0.5)
        print("lib=%s guard=%s aborts=%d rss_kb=%d maps=%d (%.0f s)%s" % (lib, guard, i, rss_kb(), maps(), time.time() - start, heap()), flush=True)
ok = handshakes(200)
print("lib=%s guard=%s: %d of 200 handshakes after %d aborts" % (lib, guard, ok, aborts), flush=True)
sys.exit(0 if ok == 200 else 1)
EOF
rc=$?
kill $pid 2>/dev/null
wait $pid 2>/dev/null
pid=
grep -q . "$tmp/count" 2>/dev/null && echo "pausing provider: `cat "$tmp/count"`"
[ $rc = 0 ] || { echo "haproxy's log:"; tail -5 "$tmp/haproxy.log"; }
exit $rc
