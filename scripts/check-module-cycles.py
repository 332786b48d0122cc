#!/usr/bin/env python3
"""No import circles between a crate's top-level modules (issue #19).

Rust allows modules to use each other in a ring; a reader cannot then tell
which one is the foundation. This reads every crate's `src/`, records which
top-level module names another through `crate::<module>` outside comments
and test code, and fails on any cycle, printing it.

Usage: scripts/check-module-cycles.py [CRATE_DIR ...]  (default: every
workspace member with a src/ folder)
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
USE = re.compile(r"\bcrate::([a-z_][a-z0-9_]*)")


def code_lines(path):
    """The file's lines before its test module, without comments."""
    for line in open(path, encoding="utf-8"):
        stripped = line.strip()
        if stripped.startswith("#[cfg(test)]"):
            return
        if stripped.startswith("//"):
            continue
        yield line.split("//", 1)[0]


def graph(src):
    """Top-level module -> the top-level modules it names."""
    edges = {}
    for folder, _, files in os.walk(src):
        for name in files:
            if not name.endswith(".rs"):
                continue
            path = os.path.join(folder, name)
            parts = os.path.relpath(path, src)[:-3].split(os.sep)
            if parts[-1] in ("mod", "lib", "main"):
                parts = parts[:-1]
            if not parts or parts[-1] == "tests":
                continue
            module = parts[0]
            uses = edges.setdefault(module, set())
            for line in code_lines(path):
                uses.update(USE.findall(line))
    return {m: {u for u in uses if u in edges and u != m} for m, uses in edges.items()}


def cycle(edges):
    """One cycle as a list of modules, or None (depth-first search)."""
    state = {}
    stack = []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(edges):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def main(crates):
    if not crates:
        crates = sorted(
            d for d in os.listdir(ROOT) if os.path.isfile(os.path.join(ROOT, d, "Cargo.toml"))
            and os.path.isdir(os.path.join(ROOT, d, "src"))
        )
    failed = False
    for crate in crates:
        found = cycle(graph(os.path.join(ROOT, crate, "src")))
        if found:
            failed = True
            print(f"{crate}: import circle {' -> '.join(found)}", file=sys.stderr)
    if failed:
        return 1
    print(f"module graph: no import circles in {len(crates)} crates")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
