#!/usr/bin/env bash
# run-echo.sh: corio's echo-server comparison harness.
#
# Builds everything in release, then for R rounds (default 4), for each configuration, starts
# each server in turn (a fresh process per measurement, the server order rotated every round so
# no server always goes first), runs `loadgen` against it with --server-pid, stops it, and appends
# loadgen's JSON line to a results file. loadgen also records the server's context switches per
# round trip over the measured window (/proc), and its system calls per round trip (perf stat on
# the system-call tracepoints: all, epoll_wait, reads, writes, futex) in a counting window of
# --count-window right after it under the same load (perf slows every system call on the
# machine while attached, so it is kept out of the measured window). Finally `summarize` prints markdown
# tables of medians with ratio columns against the reference servers (default mio and tokio:
# the hand-written mio callback loop and tokio, issue 14's yardsticks) and draws the charts.
#
# Usage:
#   benches/run-echo.sh [options] [NAME=COMMAND ...]
# Options:
#   --rounds R          rounds (default 4)
#   --duration D        measured window per run (default 10s)
#   --warmup W          warm-up before the window (default 2s)
#   --workers N         server worker threads (default 2)
#   --threads T         loadgen client threads (default 1)
#   --configs "LIST"    space-separated CONNSxSIZE or idle:CONNS
#                       (default "100x64 1000x64 10x16384 idle:10000")
#   --only a,b          run only these server names
#   --ref A,B           reference servers for the ratios, one ratio column each (default
#                       mio,tokio; those without results are left out)
#   --out DIR           output directory (default docs/bench/echo-DATE, beside the published run)
#   --port P            first TCP port (default 7400; each run takes the next port so TIME_WAIT
#                       sockets of one run never collide with the next)
#   --no-build          use the binaries already built
#   --count-window C    the counting window for system calls after each ping-pong window
#                       (default 2s)
#   --no-perf           no counting window, no system-call counts (context switches are still
#                       read from /proc)
#   --no-counters       neither system calls nor context switches
#   --quick             smoke run: 1 round, 3s window, 1s warm-up, 1s counting window,
#                       10 conns / 1,000 idle
# Servers: NAME=COMMAND, e.g. corio=target/release/examples/echo. In COMMAND, {addr} and
# {workers} are substituted; if neither appears, "{addr} --workers {workers}" is appended
# (positional address, as examples/echo.rs takes it; the anchors accept it too). Giving any
# NAME=COMMAND replaces the default list, which is:
#   corio     $ROOT_TARGET/release/examples/echo
#   callback  $ROOT_TARGET/release/examples/echo_callback
#   mio       $BENCH_TARGET/release/echo_mio    (the callback model at its leanest: mio, no framework)
#   go        $BENCH_TARGET/go/echo_go          (built if golang-1.19-go is installed)
#   tokio     $BENCH_TARGET/release/echo_tokio
#   may       $BENCH_TARGET/release/echo_may
#   threads   $BENCH_TARGET/release/echo_threads
# A server whose binary is missing is skipped with a note.
#
# Time: each ping-pong run takes about warm-up + window + counting window + 1.5 s (server start,
# connecting, perf start), each idle run 3-5 s, so with the defaults one round is about 51 s per
# server: ~6 minutes per round for the seven default servers and ~24 minutes for the default 4
# rounds. Issue 14's comparison alone (corio, callback, mio, tokio at 100 and 1,000 connections
# x 64 B, 6 rounds) takes ~13 minutes:
#   benches/run-echo.sh --only corio,callback,mio,tokio --configs "100x64 1000x64" --rounds 6
# Run it on a quiet machine: the client and the server share the cores, and other load moves
# the numbers by tens of percent.
#
# Outputs in the output directory: results.jsonl (one loadgen JSON line per run), run.log (all
# human output and server logs' tails on failure), summary.md (the tables: round trips/s, server
# CPU per round trip, system calls and context switches per round trip, latency), and the
# charts echo-throughput.svg, echo-p99.svg, echo-cpu.svg, echo-idle-rss.svg.
set -euo pipefail

BENCHES="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCHES/.." && pwd)"

ROUNDS=4
DURATION=10s
WARMUP=2s
WORKERS=2
THREADS=1
CONFIGS="100x64 1000x64 10x16384 idle:10000"
ONLY=""
REF=mio,tokio
OUT=""
PORT=7400
BUILD=1
COUNT_ARGS=()
COUNT_WINDOW=2s
SERVERS=()

die() { echo "run-echo: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
    case "$1" in
        --rounds) ROUNDS="$2"; shift 2 ;;
        --duration) DURATION="$2"; shift 2 ;;
        --warmup) WARMUP="$2"; shift 2 ;;
        --workers) WORKERS="$2"; shift 2 ;;
        --threads) THREADS="$2"; shift 2 ;;
        --configs) CONFIGS="$2"; shift 2 ;;
        --only) ONLY="$2"; shift 2 ;;
        --ref) REF="$2"; shift 2 ;;
        --out) OUT="$2"; shift 2 ;;
        --port) PORT="$2"; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        --count-window) COUNT_WINDOW="$2"; shift 2 ;;
        --no-perf) COUNT_ARGS=(--no-perf); shift ;;
        --no-counters) COUNT_ARGS=(--no-counters); shift ;;
        --quick) ROUNDS=1; DURATION=3s; WARMUP=1s; COUNT_WINDOW=1s; CONFIGS="10x64 10x16384 idle:1000"; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *=*) SERVERS+=("$1"); shift ;;
        *) die "unknown argument: $1 (try --help)" ;;
    esac
done

target_dir() { # target directory cargo uses for a manifest (honours CARGO_TARGET_DIR)
    cargo metadata --manifest-path "$1" --format-version 1 --no-deps 2>/dev/null |
        grep -o '"target_directory":"[^"]*"' | head -1 | cut -d'"' -f4
}

BENCH_TARGET="$(target_dir "$BENCHES/Cargo.toml")"
[ -n "$BENCH_TARGET" ] || die "cargo metadata failed for $BENCHES/Cargo.toml"
ROOT_TARGET="$(target_dir "$ROOT/Cargo.toml" || true)"
[ -n "$ROOT_TARGET" ] || ROOT_TARGET="$ROOT/target"

GO=""
if command -v go >/dev/null 2>&1; then GO="$(command -v go)"
elif [ -x /usr/lib/go-1.19/bin/go ]; then GO=/usr/lib/go-1.19/bin/go; fi

if [ "$BUILD" = 1 ]; then
    echo "run-echo: building corio-benches (release) ..."
    cargo build --release --manifest-path "$BENCHES/Cargo.toml" --bins
    echo "run-echo: building the workspace's examples (release) ..."
    if ! (cd "$ROOT" && cargo build --release --examples); then
        echo "run-echo: note: building the workspace's examples failed; servers whose binary is missing are skipped"
    fi
    if [ -n "$GO" ]; then
        echo "run-echo: building the Go anchor with $GO ..."
        mkdir -p "$BENCH_TARGET/go"
        (cd "$BENCHES/go" && GOPROXY=off GOFLAGS=-mod=mod "$GO" build -o "$BENCH_TARGET/go/echo_go" ./echo)
    else
        echo "run-echo: note: Go is not installed (apt-get install golang-1.19-go); skipping the Go anchor"
    fi
fi

LOADGEN="$BENCH_TARGET/release/loadgen"
SUMMARIZE="$BENCH_TARGET/release/summarize"
[ -x "$LOADGEN" ] || die "missing $LOADGEN (run without --no-build)"

if [ ${#SERVERS[@]} -eq 0 ]; then
    SERVERS=(
        "corio=$ROOT_TARGET/release/examples/echo"
        "callback=$ROOT_TARGET/release/examples/echo_callback"
        "mio=$BENCH_TARGET/release/echo_mio"
        "go=$BENCH_TARGET/go/echo_go"
        "tokio=$BENCH_TARGET/release/echo_tokio"
        "may=$BENCH_TARGET/release/echo_may"
        "threads=$BENCH_TARGET/release/echo_threads"
    )
fi

# Keep the servers that exist (and are selected by --only).
NOTES=()
NAMES=()
CMDS=()
for spec in "${SERVERS[@]}"; do
    name="${spec%%=*}"
    cmd="${spec#*=}"
    if [ -n "$ONLY" ] && [[ ",$ONLY," != *",$name,"* ]]; then continue; fi
    bin="${cmd%% *}"
    if [ "$name" = go ] && [ -z "$GO" ] && [ ! -x "$bin" ]; then
        NOTES+=("run-echo: note: skipping go: Go is not installed (apt-get install golang-1.19-go)")
        continue
    fi
    if [ ! -x "$bin" ] && ! command -v "$bin" >/dev/null 2>&1; then
        NOTES+=("run-echo: note: skipping $name: $bin not found")
        continue
    fi
    case "$cmd" in *"{addr}"*|*"{workers}"*) ;; *) cmd="$cmd {addr} --workers {workers}" ;; esac
    NAMES+=("$name")
    CMDS+=("$cmd")
done
for note in "${NOTES[@]}"; do echo "$note"; done
[ ${#NAMES[@]} -gt 0 ] || die "no server to run"

[ -n "$OUT" ] || OUT="$ROOT/docs/bench/echo-$(date +%Y-%m-%d)"
mkdir -p "$OUT"
RESULTS="$OUT/results.jsonl"
LOG="$OUT/run.log"
: >"$RESULTS"
: >"$LOG"
log() { echo "$*" | tee -a "$LOG"; }

# Servers that do not raise it themselves need the soft fd limit at the hard one for 10,000
# connections.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

secs() { # "10s" / "500ms" / "2" -> seconds (integer, rounded up)
    case "$1" in *ms) echo $(( (${1%ms} + 999) / 1000 )) ;; *s) echo "${1%s}" | cut -d. -f1 ;; *) echo "$1" | cut -d. -f1 ;; esac
}
per_round=0
for c in $CONFIGS; do
    case "$c" in
        idle:*) per_round=$((per_round + 4)) ;;
        *) per_round=$((per_round + $(secs "$WARMUP") + $(secs "$DURATION") + 2))
           [ ${#COUNT_ARGS[@]} -gt 0 ] || per_round=$((per_round + $(secs "$COUNT_WINDOW"))) ;;
    esac
done
total=$((per_round * ${#NAMES[@]} * ROUNDS))
log "run-echo: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -n), $(nproc) cores; servers: ${NAMES[*]}"
log "run-echo: $ROUNDS round(s) x configs [$CONFIGS], window $DURATION after $WARMUP warm-up, $WORKERS server workers, $THREADS client thread(s)"
for note in "${NOTES[@]}"; do echo "$note" >>"$LOG"; done
log "run-echo: estimated time: ~$((total / 60)) min $((total % 60)) s; results in $OUT"

# Counters: the system-call tracepoints need tracefs (mounted here if it is missing; root only).
# perf is checked once, so a missing or refused perf is one note, not one per run.
if [ ${#COUNT_ARGS[@]} -eq 0 ]; then
    [ -d /sys/kernel/tracing/events ] || mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null || true
    if ! perf_err="$(perf stat -e raw_syscalls:sys_enter -o /dev/null true 2>&1)"; then
        log "run-echo: note: perf cannot count system calls here ($(tail -1 <<<"$perf_err")); system-call counts will be null"
        COUNT_ARGS=(--no-perf)
    fi
fi

is_listening() { # is anything listening on 127.0.0.1/0.0.0.0/:: port $1 ?
    local hex
    hex="$(printf ':%04X' "$1")"
    awk -v p="$hex" '$4 == "0A" && substr($2, length($2) - 4) == p { found = 1 } END { exit !found }' \
        /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

next_port() { # a port nobody listens on, advancing $PORT
    while is_listening "$PORT"; do PORT=$((PORT + 1)); done
    CUR_PORT=$PORT
    PORT=$((PORT + 1))
    [ "$PORT" -lt 7999 ] || PORT=7400
}

SERVER_PID=""
stop_server() {
    [ -n "$SERVER_PID" ] || return 0
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 30); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}
trap stop_server EXIT
trap 'stop_server; exit 130' INT TERM

FAILURES=()
start_server() { # name cmd -> sets SERVER_PID, CUR_PORT; returns 1 if it did not come up
    local name="$1" cmd="$2" argv
    next_port
    cmd="${cmd//\{addr\}/127.0.0.1:$CUR_PORT}"
    cmd="${cmd//\{workers\}/$WORKERS}"
    read -ra argv <<<"$cmd"
    SERVER_LOG="$OUT/server-$name.log"
    echo "--- $(date +%T) $cmd" >>"$SERVER_LOG"
    GOMAXPROCS="$WORKERS" "${argv[@]}" >>"$SERVER_LOG" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 100); do
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            wait "$SERVER_PID" 2>/dev/null || true
            SERVER_PID=""
            log "run-echo: FAILED: $name exited at start-up; its log:"
            tail -5 "$SERVER_LOG" | tee -a "$LOG"
            return 1
        fi
        if is_listening "$CUR_PORT"; then sleep 0.2; return 0; fi
        sleep 0.1
    done
    log "run-echo: FAILED: $name is not listening on port $CUR_PORT after 10 s"
    stop_server
    return 1
}

for round in $(seq 1 "$ROUNDS"); do
    for config in $CONFIGS; do
        n=${#NAMES[@]}
        for k in $(seq 0 $((n - 1))); do
            i=$(( (k + round - 1) % n ))
            name="${NAMES[$i]}"
            if ! start_server "$name" "${CMDS[$i]}"; then
                FAILURES+=("$name/$config/round $round: start-up")
                continue
            fi
            args=(--addr "127.0.0.1:$CUR_PORT" --server-pid "$SERVER_PID" --json --label "$name" --round "$round" "${COUNT_ARGS[@]}")
            case "$config" in
                idle:*) args+=(--idle --conns "${config#idle:}") ;;
                *x*) args+=(--conns "${config%x*}" --size "${config#*x}" --duration "$DURATION" --warmup "$WARMUP" --threads "$THREADS" --count-window "$COUNT_WINDOW") ;;
                *) die "bad config $config (CONNSxSIZE or idle:CONNS)" ;;
            esac
            if out="$("$LOADGEN" "${args[@]}" 2> >(tee -a "$LOG" >&2))"; then
                grep -v '^{' <<<"$out" | tee -a "$LOG" || true
                grep '^{' <<<"$out" >>"$RESULTS" || true
            else
                grep -v '^{' <<<"$out" | tee -a "$LOG" || true
                log "run-echo: FAILED: loadgen against $name ($config, round $round); server log tail:"
                tail -5 "$SERVER_LOG" | tee -a "$LOG"
                FAILURES+=("$name/$config/round $round: loadgen")
            fi
            stop_server
        done
    done
done

log ""
if [ -x "$SUMMARIZE" ] && [ -s "$RESULTS" ]; then
    "$SUMMARIZE" --ref "$REF" --out "$OUT/summary.md" --svg-dir "$OUT" "$RESULTS" | tee -a "$LOG"
    log ""
    log "run-echo: summary in $OUT/summary.md, raw results in $RESULTS"
fi
if [ ${#FAILURES[@]} -gt 0 ]; then
    log "run-echo: ${#FAILURES[@]} run(s) FAILED:"
    for f in "${FAILURES[@]}"; do log "  $f"; done
    exit 1
fi
