# stats.awk: bench/run's statistics. Reads "lib key value" samples sorted by lib, key and
# value (sort -k1,1 -k2,2 -k3,3g) and prints "lib key median min max count" for each
# (lib, key); numbers print as awk prints them, so the presenter's ratios see these values.
function flush() {
    if (n == 0)
        return
    med = (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
    print lib, key, med, v[1], v[n], n
}
$0 !~ /^[a-z]+ [a-z0-9_]+ [-+0-9.eE]+$/ { next }
$1 != lib || $2 != key { flush(); lib = $1; key = $2; n = 0 }
{ v[++n] = $3 }
END { flush() }
