"""Pure DAG math over job dependencies: order, cycles, downstream sets."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def find_cycle(edges: Mapping[str, Sequence[str]]) -> list[str] | None:
    """One dependency cycle as a closed path (`[a, b, a]`), or None when the graph is acyclic.

    Edges point from a job to the jobs it depends on; unknown targets are ignored here
    because validation reports them separately.
    """
    white, grey, black = 0, 1, 2
    colour = dict.fromkeys(edges, white)
    for root in edges:
        if colour[root] != white:
            continue
        path: list[str] = [root]
        stack = [iter(edges[root])]
        colour[root] = grey
        while stack:
            target = next(stack[-1], None)
            if target is None:
                colour[path.pop()] = black
                stack.pop()
                continue
            if target not in colour:
                continue
            if colour[target] == grey:
                return [*path[path.index(target) :], target]
            if colour[target] == white:
                colour[target] = grey
                path.append(target)
                stack.append(iter(edges[target]))
    return None


def topological_order(edges: Mapping[str, Sequence[str]]) -> list[str]:
    """Jobs ordered so each comes after its dependencies, ties kept in declaration order."""
    remaining = {node: set(deps) & edges.keys() for node, deps in edges.items()}
    order: list[str] = []
    while remaining:
        ready = [node for node, deps in remaining.items() if not deps]
        if not ready:
            msg = f"dependency cycle: {find_cycle(edges)}"
            raise ValueError(msg)
        for node in ready:
            del remaining[node]
            order.append(node)
        for deps in remaining.values():
            deps.difference_update(ready)
    return order


def downstream_of(edges: Mapping[str, Sequence[str]], roots: set[str]) -> set[str]:
    """Every job that depends, directly or transitively, on one of `roots` (roots excluded)."""
    dependents: dict[str, set[str]] = {node: set() for node in edges}
    for node, deps in edges.items():
        for dep in deps:
            dependents.setdefault(dep, set()).add(node)
    found: set[str] = set()
    frontier = list(roots)
    while frontier:
        for child in dependents.get(frontier.pop(), ()):
            if child not in found:
                found.add(child)
                frontier.append(child)
    return found - roots
