#!/usr/bin/env python3
"""The layer rule of runtime/src (stated atop runtime/src/lib.rs and in docs/design.md):

    stack  ->  task  ->  sched  ->  the public API (coroutine, time, runtime, net, chan, sync, ...)

A module may import only from its own layer or a lower one, and no two top-level modules may
import each other, directly or through a circle. A module is a top-level file `x.rs` or folder
`x/` of runtime/src (lib.rs, the crate root, only declares and re-exports). An import is any
`crate::x` path outside comments (also inside `use crate::{a, b}` groups), or `super::x` in a
top-level file.

Exit 1 with the offending imports listed if the rule is broken. Usage:
    scripts/check-layers.py [runtime/src]
"""
import os
import re
import sys

# Rank of each layer; every top-level module must appear here (a new module must be placed).
LAYERS = {
    "stack": 0,
    "task": 1,
    "sched": 2,
    # The public API. Its modules may use each other (sync uses coroutine), without circles.
    "coroutine": 3,
    "time": 3,
    "runtime": 3,
    "cancel": 3,
    "net": 3,
    "chan": 3,
    "sync": 3,
    "debug": 3,
    "blocking": 3,
    "fs": 3,
    "future": 3,
    "io": 3,
    "process": 3,
    "signal": 3,
}


def strip_comments(src):
    src = re.sub(r"/\*.*?\*/", "", src, flags=re.S)
    return "\n".join(line.split("//")[0] for line in src.splitlines())


def modules(root):
    mods = {}
    for name in sorted(os.listdir(root)):
        path = os.path.join(root, name)
        if name == "lib.rs":
            continue
        if name.endswith(".rs"):
            mods.setdefault(name[:-3], []).append(path)
        elif os.path.isdir(path):
            for d, _, files in os.walk(path):
                mods.setdefault(name, []).extend(os.path.join(d, f) for f in files if f.endswith(".rs"))
    return mods


def imports(root, mods):
    edges = {m: {} for m in mods}  # module -> {target: first file naming it}
    for m, files in mods.items():
        for f in files:
            code = strip_comments(open(f, encoding="utf-8").read())
            targets = re.findall(r"crate::(\w+)", code)
            for group in re.findall(r"crate::\{([^}]*)\}", code):
                targets += re.findall(r"(?:^|,)\s*(\w+)", group)
            if os.path.dirname(f) == root:
                targets += re.findall(r"super::(\w+)", code)
            for t in targets:
                if t in mods and t != m:
                    edges[m].setdefault(t, f)
    return edges


def circles(edges):
    index, low, on, stack, out, counter = {}, {}, set(), [], [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            scc = []
            while True:
                w = stack.pop()
                on.discard(w)
                scc.append(w)
                if w == v:
                    break
            if len(scc) > 1:
                out.append(sorted(scc))

    for v in edges:
        if v not in index:
            visit(v)
    return out


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "runtime/src"
    mods = modules(root)
    problems = []
    for m in mods:
        if m not in LAYERS:
            problems.append(f"{m}: not placed in a layer (add it to LAYERS in {sys.argv[0]})")
    edges = imports(root, mods)
    for m, targets in sorted(edges.items()):
        for t, f in sorted(targets.items()):
            if m in LAYERS and t in LAYERS and LAYERS[t] > LAYERS[m]:
                problems.append(f"{f}: `{m}` imports `{t}`, a layer above it")
    for scc in circles(edges):
        problems.append("import circle among: " + ", ".join(scc))
    if problems:
        print("layer check failed:")
        for p in problems:
            print("  " + p)
        sys.exit(1)
    print(f"layer check: {len(mods)} modules, imports only downward, no circles")


main()
