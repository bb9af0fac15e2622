#!/usr/bin/env bash
# Scheduler and channel micro-benchmarks, corio beside Go (and crossbeam-channel
# between plain threads for the channel figures). corio's `handoff` is park/unpark
# through a one-value slot, `chan_handoff` is over unbuffered corio channels;
# both are compared with Go's `handoff`, over unbuffered channels.
# corio also runs with mimalloc as its global allocator (`corio + mimalloc`), which
# separates the runtime's cost from glibc malloc's cross-thread frees.
# All interleaved over R rounds;
# prints the median of each measurement and corio's ratio to Go (lower is
# better for every unit here: ns, s, ms, KiB).
#
#   benches/run-micro.sh [--rounds 5] [--scale 1] [--workers 2]
#
# Needs a quiet machine: nothing else should run meanwhile (2 cores).
# Go is skipped with a note if /usr/lib/go-1.19/bin/go is missing
# (apt-get install golang-1.19-go).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=5 scale=1 workers=2
while [[ $# -gt 0 ]]; do
  case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --scale) scale=$2; shift 2 ;;
    --workers) workers=$2; shift 2 ;;
    *) echo "usage: $0 [--rounds N] [--scale K] [--workers N]" >&2; exit 2 ;;
  esac
done
cargo build --release -p corio-benches --bin micro_corio --bin micro_corio_mimalloc --bin micro_crossbeam >&2
target=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
go=/usr/lib/go-1.19/bin/go
gobin=""
if [[ -x $go ]]; then
  gobin="$target/go-micro"
  (cd benches/go && GOFLAGS=-mod=mod "$go" build -o "$gobin" ./micro) >&2
else
  echo "note: Go not installed; corio figures only" >&2
fi
out=$(mktemp)
for r in $(seq 1 "$rounds"); do
  echo "round $r/$rounds" >&2
  "$target/release/micro_corio" --workers "$workers" --scale "$scale" >>"$out"
  "$target/release/micro_corio_mimalloc" --workers "$workers" --scale "$scale" >>"$out"
  [[ -n $gobin ]] && GOMAXPROCS=$workers "$gobin" -workers "$workers" -scale "$scale" >>"$out"
  "$target/release/micro_crossbeam" --scale "$scale" >>"$out"
done
python3 - "$out" <<'PY'
import sys, statistics, collections
vals = collections.defaultdict(list); units = {}
for line in open(sys.argv[1]):
    parts = line.split()
    if len(parts) < 4: continue
    who, name, value, unit = parts[0], parts[1], float(parts[2]), parts[3]
    vals[(who, name)].append(value); units[name] = unit
names = sorted({n for (_, n) in vals}, key=lambda n: list(units).index(n))
print("| measurement | unit | corio | Go | corio / Go | corio + mimalloc | crossbeam (threads) |")
print("|---|---|---|---|---|---|---|")
for n in names:
    med = lambda who: statistics.median(vals[(who, n)]) if (who, n) in vals else None
    c, g, x, m = med("corio"), med("go"), med("crossbeam"), med("corio-mimalloc")
    if n == "chan_handoff" and g is None and ("go", "handoff") in vals:
        g = statistics.median(vals[("go", "handoff")])  # Go's hand-off is over channels
    fmt = lambda v: "-" if v is None else f"{v:,.2f}"
    ratio = f"{c / g:.2f}" if c is not None and g else "-"
    print(f"| {n} | {units[n]} | {fmt(c)} | {fmt(g)} | {ratio} | {fmt(m)} | {fmt(x)} |")
print(f"\nmedians of {len(next(iter(vals.values())))} rounds")
PY
rm -f "$out"
