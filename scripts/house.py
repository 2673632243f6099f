"""Draw the package's house from its imports: rooms (first-level packages), floors, back-arrows.

A room is a first-level package or module of ``em_assets``. An arrow is an import between two
modules of the package (at any depth of the file, type-checking imports excepted). Floors are
the longest chain of module imports (cycles collapsed). A back-arrow is a room-level import
inside a circle of rooms: some import runs back up. Prints a table; ``--check`` exits 1 unless
the house meets the targets of the redesign (no circle, no back-arrow, <= 9 floors, no room
over 25 % of the lines, no Python file over 600 lines).
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections import defaultdict
from pathlib import Path

import networkx as nx

PACKAGE = "em_assets"
ROOT = Path(__file__).resolve().parents[1]
MAX_FLOORS, MAX_ROOM_SHARE, MAX_FILE_LINES = 9, 0.25, 600


def modules(root: Path = ROOT) -> dict[str, Path]:
    found = {}
    for path in sorted((root / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _type_checking_lines(tree)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.Import):
            candidates = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            candidates = [f"{base}.{a.name}" for a in node.names] + [base]
        else:
            continue
        for candidate in candidates:
            while candidate and candidate not in known:
                candidate = candidate.rpartition(".")[0]
            if candidate and candidate != name:
                targets.add(candidate)
                break
    return targets


def room(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else parts[0]


def survey(root: Path = ROOT) -> dict:
    found = modules(root)
    graph = nx.DiGraph()
    graph.add_nodes_from(found)
    for name, path in found.items():
        for target in imports(name, path, set(found)):
            # A package importing its own submodules (re-exports) is not an arrow between rooms.
            if not target.startswith(name + "."):
                graph.add_edge(name, target)
    cycles = [sorted(c) for c in nx.strongly_connected_components(graph) if len(c) > 1]
    condensed = nx.condensation(graph)
    floors = nx.dag_longest_path_length(condensed) + 1
    rooms = nx.DiGraph()
    for a, b in graph.edges:
        if room(a) != room(b):
            rooms.add_edge(room(a), room(b))
    room_cycles = [sorted(c) for c in nx.strongly_connected_components(rooms) if len(c) > 1]
    in_cycle = {r for c in room_cycles for r in c}
    back_arrows = sorted(
        (a, b)
        for a, b in graph.edges
        if room(a) != room(b) and room(a) in in_cycle and room(b) in in_cycle and nx.has_path(rooms, room(b), room(a))
    )
    lines = {name: len(path.read_text(encoding="utf-8").splitlines()) for name, path in found.items()}
    by_room: dict[str, int] = defaultdict(int)
    for name, n in lines.items():
        by_room[room(name)] += n
    total = sum(lines.values())
    return {
        "modules": len(found),
        "lines": total,
        "floors": floors,
        "module_cycles": cycles,
        "room_cycles": room_cycles,
        "back_arrows": back_arrows,
        "rooms": sorted(((r, n, n / total) for r, n in by_room.items()), key=lambda x: -x[1]),
        "long_files": sorted(
            ((str(found[m].relative_to(root)), n) for m, n in lines.items() if n > MAX_FILE_LINES), key=lambda x: -x[1]
        ),
        "longest_chain": [next(iter(condensed.nodes[n]["members"])) for n in nx.dag_longest_path(condensed)],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 unless the targets are met")
    args = parser.parse_args(argv)
    house = survey()
    print(f"{house['modules']} modules, {house['lines']} lines, {house['floors']} floors (target <= {MAX_FLOORS})")
    print("longest chain: " + " -> ".join(house["longest_chain"]))
    print(
        f"circles of modules: {len(house['module_cycles'])}  circles of rooms: {len(house['room_cycles'])}  "
        f"back-arrows: {len(house['back_arrows'])}"
    )
    for cycle in house["module_cycles"] + house["room_cycles"]:
        print("  circle: " + ", ".join(cycle))
    for a, b in house["back_arrows"]:
        print(f"  back-arrow: {a} -> {b}")
    print("\n| room | lines | share |\n|---|---|---|")
    for name, n, share in house["rooms"]:
        flag = "  <- over 25 %" if share > MAX_ROOM_SHARE else ""
        print(f"| {name} | {n} | {share:.0%}{flag} |")
    if house["long_files"]:
        print(f"\nfiles over {MAX_FILE_LINES} lines: " + ", ".join(f"{p} ({n})" for p, n in house["long_files"]))
    ok = (
        not house["module_cycles"]
        and not house["room_cycles"]
        and house["floors"] <= MAX_FLOORS
        and all(share <= MAX_ROOM_SHARE for _, _, share in house["rooms"])
        and not house["long_files"]
    )
    return 0 if ok or not args.check else 1


if __name__ == "__main__":
    sys.exit(main())
