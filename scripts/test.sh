#!/usr/bin/env bash
# The project's test command (README.md and .ci/run both call this).
# 1. Every crate's unit, integration and doc tests, in debug mode (the
#    race-window widening in runtime/src/chaos.rs is active there).
# 2. The million-coroutine test in release mode (in debug it parks 100,000).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace
cargo test --release --test million_parked -- --nocapture
