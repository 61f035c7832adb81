#!/usr/bin/env python3
"""Where the app's WebAssembly goes: the size of each section, gzipped as served, and the code
of each crate (function bodies by their defining crate, from the module's name section), the
largest first. Generic code counts under the crate that defines it, wherever it is instantiated.

Read cargo's module, before wasm-bindgen and wasm-opt strip the names (app/build.sh builds it):
  python3 bench/wasm-size.py TARGET/wasm32-unknown-unknown/wasm-release/hafrm_app.wasm [--top 30] [--module 2]
`--module N` groups by the first N path segments (crate::module) instead of the crate alone.
A figure, not a test: CI does not run it.
"""
import argparse
import collections
import gzip
import re

SECTIONS = {1: "type", 2: "import", 3: "function", 7: "export", 9: "element", 10: "code", 11: "data"}


def leb128(data, at):
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, at


def sections(data):
    """(id, custom section's name or None, start, end) of each section."""
    at = 8
    while at < len(data):
        kind = data[at]
        size, at = leb128(data, at + 1)
        name = None
        if kind == 0:
            length, start = leb128(data, at)
            name = data[start:start + length].decode()
        yield kind, name, at, at + size
        at += size


def imported_functions(data, start):
    """How many functions the import section brings in (they come first in the index space)."""
    count, at = leb128(data, start)
    functions = 0
    for _ in range(count):
        for _ in range(2):  # module and field names
            length, at = leb128(data, at)
            at += length
        kind = data[at]
        at += 1
        if kind == 0:  # function: its type index
            _, at = leb128(data, at)
            functions += 1
        elif kind in (1, 2):  # table (element type first) or memory: limits
            at += kind == 1
            flags, at = leb128(data, at)
            _, at = leb128(data, at)
            if flags & 1:
                _, at = leb128(data, at)
        elif kind == 3:  # global: value type, mutability
            at += 2
        else:  # tag: attribute, type index
            at += 1
            _, at = leb128(data, at)
    return functions


def body_sizes(data, start):
    count, at = leb128(data, start)
    sizes = []
    for _ in range(count):
        size, body = leb128(data, at)
        sizes.append(body - at + size)
        at = body + size
    return sizes


def function_names(data, start, end):
    length, at = leb128(data, start)
    at += length
    names = {}
    while at < end:
        kind = data[at]
        size, at = leb128(data, at + 1)
        if kind == 1:
            count, entry = leb128(data, at)
            for _ in range(count):
                index, entry = leb128(data, entry)
                length, entry = leb128(data, entry)
                names[index] = data[entry:entry + length].decode("utf-8", "replace")
                entry += length
        at += size
    return names


def path_of(symbol, depth):
    """The first `depth` segments of a legacy-mangled Rust symbol's path; for an impl block
    (`<T as Trait>::f`), the path of the type (of what `&T` or `&mut T` refers to)."""
    segments, at = [], 3
    if not symbol.startswith("_ZN"):
        return symbol.split("::")[0][:40] or "?"
    while at < len(symbol) and symbol[at].isdigit() and len(segments) < depth:
        digits = re.match(r"\d+", symbol[at:]).group()
        at += len(digits)
        segments.append(symbol[at:at + int(digits)])
        at += int(digits)
    if segments and segments[0].startswith("_$LT$"):
        inner = segments[0].removeprefix("_$LT$").removeprefix("$RF$").removeprefix("mut$u20$")
        segments = inner.split("..")[:depth]
    return "::".join(segments)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("wasm")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--module", type=int, default=1)
    args = parser.parse_args()
    data = open(args.wasm, "rb").read()
    imports, bodies, names = 0, [], {}
    print("section      bytes     gzipped")
    for kind, name, start, end in sections(data):
        label = f"custom {name}" if kind == 0 else SECTIONS.get(kind, str(kind))
        if end - start > 10_000:
            print(f"{label:<24} {end - start:>10,} {len(gzip.compress(data[start:end], 9)):>10,}")
        if kind == 2:
            imports = imported_functions(data, start)
        elif kind == 10:
            bodies = body_sizes(data, start)
        elif name == "name":
            names = function_names(data, start, end)
    if not names:
        print("the module has no name section: read cargo's module, before wasm-opt")
        return
    by_path = collections.Counter()
    for index, size in enumerate(bodies):
        by_path[path_of(names.get(imports + index, "?"), args.module)] += size
    total = sum(bodies)
    print(f"\ncode: {total:,} bytes in {len(bodies):,} functions")
    for path, size in by_path.most_common(args.top):
        print(f"{size:>10,} {100 * size / total:5.1f}%  {path}")


if __name__ == "__main__":
    main()
