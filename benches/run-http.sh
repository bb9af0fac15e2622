#!/usr/bin/env bash
# run-http.sh: corio's HTTP server (examples/http.rs) against the servers a user would pick
# instead: Go net/http, hyper on tokio, may_minihttp, may running the same httparse loop, and a
# thread per connection (`corio_min`: corio running that same minimal loop, to tell what the
# runtime costs apart from the example's limits and timeouts). wrk drives GET /plaintext:
#   c100   100 connections
#   c1000  1,000 connections
#   p256   256 connections, 16 requests pipelined per write (benches/wrk/pipeline16.lua)
# For R rounds, each configuration, each server in turn (the order rotated every round): start
# it (2 workers), run wrk for a 1 s warm-up, then the measured wrk run under `srvcount`, which
# counts the server's context switches (/proc) over it, reading the server's CPU time from
# /proc before and after; then a counting run: wrk for --count-window (2 s) more, under
# `srvcount --perf`, which counts the server's system calls (perf stat on the system-call
# tracepoints: all, epoll_wait, reads, writes, futex; kept out of the measured run because
# perf slows every system call on the machine while attached); stop the server. `summarize` then prints medians and ratios against
# corio (--ref) into summary.md and draws http-rps.svg, http-cpu.svg and http-p99.svg; server
# CPU microseconds per request is the clean figure (wrk shares the two cores), and the
# counters per request say where it goes. Needs `apt-get install wrk golang-1.19-go` (Go is
# skipped if missing) and a quiet machine; perf (linux-perf) for the system-call counts: if it
# does not work they are null and a note says so once (tracefs is mounted if it is missing).
#
# Usage: benches/run-http.sh [--rounds R] [--duration D] [--configs "c100 c1000 p256"]
#                            [--only a,b] [--ref NAME[,NAME]] [--count-window C] [--no-perf]
#                            [--no-counters] [--no-build] [--out DIR]
# --no-perf skips the counting run (system calls null), --no-counters the context switches too.
# Time: each run takes about duration + count window + 2 s (server start, warm-up, perf start):
# with the defaults (3 rounds, 8 s, 3 configs, 7 servers) 63 runs x 12 s = ~13 minutes.
# Outputs in DIR (default docs/bench/http-DATE): results.jsonl, run.log, summary.md and the
# three charts.
set -euo pipefail
BENCHES="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCHES/.." && pwd)"
ROUNDS=3 DURATION=8s CONFIGS="c100 c1000 p256" ONLY="" BUILD=1 OUT="" PORT=7600 WORKERS=2
REF=corio COUNTERS=1 PERF=1 COUNT_WINDOW=2s
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) ROUNDS="$2"; shift 2 ;;
        --duration) DURATION="$2"; shift 2 ;;
        --configs) CONFIGS="$2"; shift 2 ;;
        --only) ONLY="$2"; shift 2 ;;
        --ref) REF="$2"; shift 2 ;;
        --no-counters) COUNTERS=0; PERF=0; shift ;;
        --no-perf) PERF=0; shift ;;
        --count-window) COUNT_WINDOW="$2"; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        --out) OUT="$2"; shift 2 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "usage: $0 [--rounds R] [--duration D] [--configs LIST] [--only a,b] [--ref NAME] [--no-counters] [--no-build] [--out DIR]" >&2; exit 2 ;;
    esac
done
OUT="${OUT:-$ROOT/docs/bench/http-$(date +%F)}"
mkdir -p "$OUT"
command -v wrk >/dev/null || { echo "run-http: wrk not found (apt-get install wrk)" >&2; exit 2; }
TARGET="$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
GO=/usr/lib/go-1.19/bin/go
if [ "$BUILD" = 1 ]; then
    (cd "$ROOT" && cargo build --release --example http >&2)
    (cd "$ROOT" && cargo build --release -p corio-benches --bin http_hyper --bin http_may --bin http_may_minihttp --bin http_threads --bin http_corio --bin srvcount --bin summarize >&2)
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
SRVCOUNT="$TARGET/release/srvcount"
SUMMARIZE="$TARGET/release/summarize"
for b in "$SRVCOUNT" "$SUMMARIZE"; do [ -x "$b" ] || { echo "run-http: missing $b (run without --no-build)" >&2; exit 2; }; done
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
echo "run-http: $(date -u +%FT%TZ) on $(hostname), $(nproc) cores; servers: ${SERVERS[*]}; configs: $CONFIGS; $ROUNDS rounds of $DURATION" | tee -a "$LOG"
# Counters: the system-call tracepoints need tracefs; check perf once, so a missing perf is one
# note rather than one per run.
if [ "$PERF" = 1 ]; then
    [ -d /sys/kernel/tracing/events ] || mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null || true
    if ! perf_err="$(perf stat -e raw_syscalls:sys_enter -o /dev/null true 2>&1)"; then
        echo "run-http: note: perf cannot count system calls here ($(tail -1 <<<"$perf_err")); system-call counts will be null" | tee -a "$LOG"
        PERF=0
    fi
fi
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
            trap 'kill "$pid" 2>/dev/null || true' EXIT
            for _ in $(seq 1 200); do
                (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
                sleep 0.05
            done
            # A short warm-up, then the measured run.
            wrk -t1 -c "$conns" -d 1s $script "http://$addr/plaintext" >/dev/null 2>&1 || true
            before=$(cpu_ticks "$pid")
            rm -f "$OUT/.counts.json" "$OUT/.wrk.out" "$OUT/.syscalls.json" "$OUT/.wrk-count.out"
            (ulimit -n "$(ulimit -Hn)" 2>/dev/null || true; "$SRVCOUNT" --pid "$pid" --out "$OUT/.counts.json" -- \
                wrk -t1 -c "$conns" -d "$DURATION" --latency $script "http://$addr/plaintext" >"$OUT/.wrk.out" 2>&1 || true)
            after=$(cpu_ticks "$pid")
            if [ "$PERF" = 1 ]; then
                (ulimit -n "$(ulimit -Hn)" 2>/dev/null || true; "$SRVCOUNT" --pid "$pid" --perf --out "$OUT/.syscalls.json" -- \
                    wrk -t1 -c "$conns" -d "$COUNT_WINDOW" $script "http://$addr/plaintext" >"$OUT/.wrk-count.out" 2>&1 || true)
            fi
            [ "$COUNTERS" = 1 ] || rm -f "$OUT/.counts.json"
            kill "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
            echo "--- $server $config round $round" >>"$LOG"; cat "$OUT/.wrk.out" >>"$LOG"
            python3 - "$server" "$config" "$round" "$before" "$after" "$(getconf CLK_TCK)" "$OUT" >>"$RESULTS" <<'PY'
import json, os, re, sys
server, config, rnd, before, after, hz, out_dir = sys.argv[1:8]
out = open(os.path.join(out_dir, ".wrk.out")).read()
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
rec = {"server": server, "config": config, "round": int(rnd), "requests": n,
       "rps": float(rps.group(1)) if rps else 0.0, "cpu_us_per_req": cpu_us / n if n else None,
       "p99_us": p99_us, "non2xx": int(errors.group(1)) if errors else 0}
def load(name):
    p = os.path.join(out_dir, name)
    return json.load(open(p)) if os.path.exists(p) else {}
def per(counts, key, ops):
    v = counts.get(key)
    return round(v / ops, 4) if v is not None and ops else None
# Context switches over the measured run (srvcount), per request.
counts = load(".counts.json")
rec["ctx_switches_per_op"] = per(counts, "ctx_switches", n)
rec["vol_ctx_switches_per_op"] = per(counts, "vol_ctx_switches", n)
# System calls over the counting run (srvcount --perf), per request of that run; and the
# server's CPU per request in it (the cost of counting).
syscalls = load(".syscalls.json")
m = re.search(r"(\d+) requests in", open(os.path.join(out_dir, ".wrk-count.out")).read()) if syscalls else None
m = int(m.group(1)) if m else 0
for key in ["syscalls", "epoll_waits", "reads", "writes", "futex"]:
    rec[key + "_per_op"] = per(syscalls, key, m)
rec["perf_window_cpu_us_per_req"] = per(syscalls, "cpu_us", m) if rec["syscalls_per_op"] is not None else None
print(json.dumps(rec))
PY
            tail -1 "$RESULTS" | tee -a "$LOG"
        done
    done
done
rm -f "$OUT/.counts.json" "$OUT/.wrk.out" "$OUT/.syscalls.json" "$OUT/.wrk-count.out"
"$SUMMARIZE" --ref "$REF" --out "$OUT/summary.md" --svg-dir "$OUT" "$RESULTS" | tee -a "$LOG"
echo "run-http: summary in $OUT/summary.md, charts http-rps.svg, http-cpu.svg, http-p99.svg" | tee -a "$LOG"
