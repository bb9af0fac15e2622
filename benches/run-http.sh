#!/usr/bin/env bash
# run-http.sh: corio's HTTP server (examples/http.rs) against the servers a user would pick
# instead: Go net/http, hyper on tokio, may_minihttp, may running the same httparse loop, and a
# thread per connection (`corio_min`: corio running that same minimal loop, to tell what the
# runtime costs apart from the example's limits and timeouts). wrk drives GET /plaintext:
#   c100   100 connections
#   c1000  1,000 connections
#   p256   256 connections, 16 requests pipelined per write (benches/wrk/pipeline16.lua)
# For R rounds, each configuration, each server in turn (the order rotated every round): start
# it (2 workers), run wrk, read the server's CPU time from /proc before and after, stop it.
# Prints medians and ratios against corio; server CPU microseconds per request is the clean
# figure (wrk shares the two cores). Needs `apt-get install wrk golang-1.19-go` (Go is skipped
# if missing) and a quiet machine.
#
# Usage: benches/run-http.sh [--rounds R] [--duration D] [--configs "c100 c1000 p256"]
#                            [--only a,b] [--no-build] [--out DIR]
set -euo pipefail
BENCHES="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCHES/.." && pwd)"
ROUNDS=3 DURATION=8s CONFIGS="c100 c1000 p256" ONLY="" BUILD=1 OUT="" PORT=7600 WORKERS=2
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) ROUNDS="$2"; shift 2 ;;
        --duration) DURATION="$2"; shift 2 ;;
        --configs) CONFIGS="$2"; shift 2 ;;
        --only) ONLY="$2"; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        --out) OUT="$2"; shift 2 ;;
        *) echo "usage: $0 [--rounds R] [--duration D] [--configs LIST] [--only a,b] [--no-build] [--out DIR]" >&2; exit 2 ;;
    esac
done
OUT="${OUT:-$ROOT/docs/bench/http-$(date +%F)}"
mkdir -p "$OUT"
command -v wrk >/dev/null || { echo "run-http: wrk not found (apt-get install wrk)" >&2; exit 2; }
TARGET="$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
GO=/usr/lib/go-1.19/bin/go
if [ "$BUILD" = 1 ]; then
    (cd "$ROOT" && cargo build --release --example http >&2)
    (cd "$ROOT" && cargo build --release -p corio-benches --bin http_hyper --bin http_may --bin http_may_minihttp --bin http_threads --bin http_corio >&2)
    if [ -x "$GO" ]; then
        mkdir -p "$TARGET/go"
        (cd "$BENCHES/go" && GOPROXY=off GOFLAGS=-mod=mod "$GO" build -o "$TARGET/go/http_go" ./http)
    fi
fi
declare -A CMD=(
    [corio]="$TARGET/release/examples/http"
    [corio_min]="$TARGET/release/http_corio"
    [go]="$TARGET/go/http_go"
    [hyper]="$TARGET/release/http_hyper"
    [may_minihttp]="$TARGET/release/http_may_minihttp"
    [may]="$TARGET/release/http_may"
    [threads]="$TARGET/release/http_threads"
)
SERVERS=()
for s in corio corio_min go hyper may_minihttp may threads; do
    [ -n "$ONLY" ] && [[ ",$ONLY," != *",$s,"* ]] && continue
    [ -x "${CMD[$s]}" ] || { echo "run-http: skipping $s (${CMD[$s]} missing)" >&2; continue; }
    SERVERS+=("$s")
done
RESULTS="$OUT/results.jsonl"; : >"$RESULTS"
LOG="$OUT/run.log"; : >"$LOG"
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
echo "run-http: $(date -u +%FT%TZ) on $(hostname), $(nproc) cores; servers: ${SERVERS[*]}; configs: $CONFIGS; $ROUNDS rounds of $DURATION" | tee -a "$LOG"
for round in $(seq 1 "$ROUNDS"); do
    n=${#SERVERS[@]}
    for config in $CONFIGS; do
        case "$config" in
            c100) conns=100; script="" ;;
            c1000) conns=1000; script="" ;;
            p256) conns=256; script="-s $BENCHES/wrk/pipeline16.lua" ;;
            *) echo "run-http: unknown config $config" >&2; exit 2 ;;
        esac
        for i in $(seq 0 $((n - 1))); do
            server=${SERVERS[$(( (i + round) % n ))]}
            PORT=$((PORT + 1)); addr="127.0.0.1:$PORT"
            GOMAXPROCS=$WORKERS ${CMD[$server]} "$addr" --workers "$WORKERS" >>"$LOG" 2>&1 &
            pid=$!
            for _ in $(seq 1 200); do
                (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
                sleep 0.05
            done
            # A short warm-up, then the measured run.
            wrk -t1 -c "$conns" -d 1s $script "http://$addr/plaintext" >/dev/null 2>&1 || true
            before=$(cpu_ticks "$pid")
            outp=$(ulimit -n 65536 2>/dev/null; wrk -t1 -c "$conns" -d "$DURATION" --latency $script "http://$addr/plaintext" 2>&1 || true)
            after=$(cpu_ticks "$pid")
            kill "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
            echo "--- $server $config round $round" >>"$LOG"; echo "$outp" >>"$LOG"
            python3 - "$server" "$config" "$round" "$before" "$after" "$(getconf CLK_TCK)" >>"$RESULTS" <<PY
import json, re, sys
server, config, rnd, before, after, hz = sys.argv[1:7]
out = """$outp"""
reqs = re.search(r"(\d+) requests in", out)
rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
p99 = re.search(r"\s99%\s+([\d.]+)(us|ms|s)", out)
errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
n = int(reqs.group(1)) if reqs else 0
cpu_us = (int(after) - int(before)) / int(hz) * 1e6
p99_us = None
if p99:
    v, u = float(p99.group(1)), p99.group(2)
    p99_us = v * {"us": 1, "ms": 1e3, "s": 1e6}[u]
print(json.dumps({"server": server, "config": config, "round": int(rnd), "requests": n,
                  "rps": float(rps.group(1)) if rps else 0.0, "cpu_us_per_req": cpu_us / n if n else None,
                  "p99_us": p99_us, "non2xx": int(errors.group(1)) if errors else 0}))
PY
            tail -1 "$RESULTS" | tee -a "$LOG"
        done
    done
done
python3 - "$RESULTS" >"$OUT/summary.md" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
servers = list(dict.fromkeys(r["server"] for r in rows))
configs = list(dict.fromkeys(r["config"] for r in rows))
def med(s, c, k):
    v = [r[k] for r in rows if r["server"] == s and r["config"] == c and r[k] is not None]
    return statistics.median(v) if v else None
names = {"c100": "100 conns", "c1000": "1,000 conns", "p256": "256 conns, 16 pipelined"}
print(f"Medians over {max(r['round'] for r in rows)} rounds; ratios in parentheses are server / corio.\n")
for key, title, fmt in [("cpu_us_per_req", "Server CPU time per request, us (lower is better)", "{:.2f}"),
                        ("rps", "Requests per second (higher is better)", "{:,.0f}"),
                        ("p99_us", "p99 latency, us (lower is better)", "{:,.0f}")]:
    print(f"### {title}\n")
    print("| server | " + " | ".join(names.get(c, c) for c in configs) + " |")
    print("|---|" + "---|" * len(configs))
    for s in servers:
        cells = []
        for c in configs:
            v, ref = med(s, c, key), med("corio", c, key)
            cells.append("-" if v is None else fmt.format(v) + (f" ({v / ref:.2f})" if ref else ""))
        print(f"| {s} | " + " | ".join(cells) + " |")
    print()
bad = [r for r in rows if r["non2xx"]]
if bad:
    print(f"Non-2xx responses in {len(bad)} runs (see run.log).")
PY
cat "$OUT/summary.md"
