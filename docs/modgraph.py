#!/usr/bin/env python3
"""Print the crate's module import graph and its import circles.

    python3 docs/modgraph.py              # circles between source files (modules)
    python3 docs/modgraph.py --edges      # also every edge, `a -> b`
    python3 docs/modgraph.py --depth 1    # modules folded to their first segment (db, graphql, ...)
    python3 docs/modgraph.py --depth 2    # ... or to two (graphql::schema, service::ledger)

An edge `a -> b` means that a file of module `a` names an item of module `b`: a `use crate::…`,
`use super::…`, `use self::…` or `use child::…` line (use trees with braces included), or a path
`crate::…` / `super::…` written in code. Comments, doc links and `#[cfg(test)]` modules don't
count. A path is resolved to the longest module that exists as a file under src/, so an item
re-exported by `service/mod.rs` counts as an edge to `service`.

A circle is a strongly connected component of two or more modules: each of them reaches every
other through edges. For each circle the script prints its modules and the edges inside it, with
the file and line that make each edge, so the edge to cut is easy to find; before the circles it
lists the pairs of modules that import each other (the shortest circles). Exits 1 when there is
a circle. It reads text only and needs nothing but Python 3.
"""

import argparse
import os
import re
import sys
from collections import defaultdict

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")


def module_of(path):
    """src/graphql/schema/catalog.rs -> ('graphql', 'schema', 'catalog'); src/graphql/mod.rs -> ('graphql',)."""
    rel = os.path.relpath(path, ROOT)
    parts = rel[:-3].split(os.sep)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return tuple(parts)


def strip_comments(text):
    """Drop // and /* */ comments (keeping line breaks) and string literals' contents."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append("\n" * text.count("\n", i, j))
            i = j
        elif c == '"' and not (i and text[i - 1] == "'" and text[i + 1 : i + 2] == "'"):
            # raw strings r#"…"# and ordinary strings
            k = i - 1
            hashes = 0
            while k >= 0 and text[k] == "#":
                hashes, k = hashes + 1, k - 1
            raw = k >= 0 and text[k] == "r" and (k == 0 or not (text[k - 1].isalnum() or text[k - 1] == "_"))
            end = '"' + "#" * hashes if raw else '"'
            j = i + 1
            while j < n:
                if not raw and text[j] == "\\":
                    j += 2
                    continue
                if text.startswith(end, j):
                    break
                j += 1
            out.append('""' + "\n" * text.count("\n", i, j))
            i = j + len(end)
        else:
            out.append(c)
            i += 1
    return "".join(out)


def cut_test_modules(text):
    """Blank out `#[cfg(test)] mod … { … }` blocks (their imports are not the crate's)."""
    out = text
    for m in reversed(list(re.finditer(r"#\[cfg\(test\)\]\s*(pub(\([^)]*\))?\s+)?mod\s+\w+\s*\{", text))):
        depth, j = 0, m.end() - 1
        while j < len(text):
            if text[j] == "{":
                depth += 1
            elif text[j] == "}":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        out = out[: m.start()] + "\n" * text.count("\n", m.start(), j + 1) + out[j + 1 :]
    return out


def expand_use_tree(tree):
    """'a::{b, c::{d, e}}' -> [['a','b'], ['a','c','d'], ['a','c','e']]."""
    tree = re.sub(r"\s+as\s+\w+", "", tree)
    tree = re.sub(r"\s+", "", tree)

    def parse(s, i):
        prefix, paths = [], []
        seg = ""
        while i < len(s):
            c = s[i]
            if s.startswith("::", i):
                if seg:
                    prefix.append(seg)
                seg = ""
                i += 2
            elif c == "{":
                subs, i = parse_list(s, i + 1)
                paths.extend(prefix + p for p in subs)
                return paths, i
            elif c in ",}":
                break
            else:
                seg += c
                i += 1
        if seg:
            prefix.append(seg)
        paths.append(prefix)
        return paths, i

    def parse_list(s, i):
        paths = []
        while i < len(s) and s[i] != "}":
            sub, i = parse(s, i)
            paths.extend(sub)
            if i < len(s) and s[i] == ",":
                i += 1
        return paths, i + 1

    paths, _ = parse(tree, 0)
    return [p for p in paths if p]


class Crate:
    def __init__(self, root):
        self.files = {}
        for dirpath, _, names in os.walk(root):
            for name in names:
                if name.endswith(".rs"):
                    path = os.path.join(dirpath, name)
                    self.files[module_of(path)] = path
        self.modules = set(self.files)

    def resolve(self, here, segments):
        """The longest existing module that `segments` (written in module `here`) names."""
        segs = list(segments)
        if not segs:
            return None
        if segs[0] == "crate":
            base, segs = (), segs[1:]
        elif segs[0] in ("super", "self"):
            base = here
            while segs and segs[0] in ("super", "self"):
                if segs[0] == "super":
                    base = base[:-1]
                segs = segs[1:]
        elif here + (segs[0],) in self.modules:
            base = here  # `use child::Item` from the parent
        else:
            return None  # an external crate or a local name
        full = base + tuple(segs)
        for k in range(len(full), -1, -1):
            if full[:k] in self.modules:
                return full[:k]
        return None

    def edges(self):
        """{(from, to): [(file, line), …]} over every module file."""
        found = defaultdict(list)
        for mod, path in sorted(self.files.items()):
            with open(path, encoding="utf-8") as f:
                text = cut_test_modules(strip_comments(f.read()))
            rel = os.path.relpath(path, os.path.join(ROOT, ".."))
            taken = set()
            for m in re.finditer(r"\buse\s+([^;]+);", text):
                line = text.count("\n", 0, m.start()) + 1
                for segs in expand_use_tree(m.group(1)):
                    segs = [s for s in segs if s != "*"]
                    target = self.resolve(mod, segs)
                    if target is not None and target != mod:
                        found[(mod, target)].append((rel, line))
                taken.update(range(m.start(), m.end()))
            for m in re.finditer(r"(?<![\w:])((?:crate|super)(?:::\w+)+)", text):
                if m.start() in taken:
                    continue
                line = text.count("\n", 0, m.start()) + 1
                target = self.resolve(mod, m.group(1).split("::"))
                if target is not None and target != mod:
                    found[(mod, target)].append((rel, line))
        return found


def fold(mod, depth):
    return mod[:depth] if depth else mod


def name(mod):
    return "::".join(mod) if mod else "crate"


def circles(nodes, adj):
    """Tarjan's strongly connected components of two or more nodes."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]
    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(adj[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return sorted(out, key=lambda c: (-len(c), c))


def main():
    global ROOT
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--depth", type=int, default=0, help="fold modules to N path segments (0: files)")
    ap.add_argument("--edges", action="store_true", help="print every edge too")
    ap.add_argument("--src", default=ROOT, help="the crate's src/ folder")
    args = ap.parse_args()

    ROOT = os.path.abspath(args.src)
    crate = Crate(ROOT)
    raw = crate.edges()

    edges = defaultdict(list)
    for (a, b), where in raw.items():
        fa, fb = fold(a, args.depth), fold(b, args.depth)
        if fa != fb:
            edges[(fa, fb)].extend(where)
    nodes = {fold(m, args.depth) for m in crate.modules}
    adj = defaultdict(set)
    for a, b in edges:
        adj[a].add(b)

    print(f"{len(nodes)} modules, {len(edges)} edges (depth {args.depth or 'files'})")
    if args.edges:
        for (a, b) in sorted(edges):
            print(f"  {name(a)} -> {name(b)}")
    pairs = sorted((a, b) for (a, b) in edges if a < b and (b, a) in edges)
    print(f"{len(pairs)} pair(s) importing each other:")
    for a, b in pairs:
        family = " (parent and child)" if a == b[: len(a)] or b == a[: len(b)] else ""
        print(f"  {name(a)} <-> {name(b)}{family}")
        for x, y in ((a, b), (b, a)):
            file, line = edges[(x, y)][0]
            print(f"      {name(x)} -> {name(y)}    {file}:{line}")
    found = circles(nodes, adj)
    if not found:
        print("no import circles")
        return 0
    print(f"{len(found)} import circle(s):")
    for comp in found:
        members = set(comp)
        print(f"- {len(comp)} modules: {', '.join(name(m) for m in comp)}")
        for (a, b) in sorted(edges):
            if a in members and b in members:
                file, line = edges[(a, b)][0]
                more = len(edges[(a, b)]) - 1
                extra = f" (+{more})" if more else ""
                print(f"    {name(a)} -> {name(b)}    {file}:{line}{extra}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
