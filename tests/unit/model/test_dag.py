"""DAG math over job dependencies: topological order, cycle detection, downstream sets."""

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bunsui_core.model.dag import downstream_of, find_cycle, topological_order


@st.composite
def dags(draw: st.DrawFn) -> dict[str, list[str]]:
    """A random acyclic graph whose declaration order is shuffled away from any valid order.

    Nodes get a hidden rank; each may only depend on lower-ranked nodes, so the graph is
    acyclic, and the mapping is then declared in an unrelated (shuffled) order.
    """
    size = draw(st.integers(min_value=0, max_value=12))
    ranked = [f"j{i}" for i in range(size)]
    edges = {
        node: sorted(draw(st.sets(st.sampled_from(ranked[:rank]), max_size=rank))) if rank else []
        for rank, node in enumerate(ranked)
    }
    declared = draw(st.permutations(ranked))
    return {node: edges[node] for node in declared}


def levels(edges: dict[str, list[str]]) -> dict[str, int]:
    """Longest-path depth of each node: 0 for roots, 1 + deepest dependency otherwise."""
    depth: dict[str, int] = {}

    def visit(node: str) -> int:
        if node not in depth:
            depth[node] = 1 + max((visit(d) for d in edges[node]), default=-1)
        return depth[node]

    for node in edges:
        visit(node)
    return depth


def reachable_dependents(edges: dict[str, list[str]], roots: set[str]) -> set[str]:
    """Brute force: every node with a dependency path to a root (roots themselves excluded)."""
    found: set[str] = set()
    changed = True
    while changed:
        changed = False
        for node, deps in edges.items():
            if node not in found and any(d in roots or d in found for d in deps):
                found.add(node)
                changed = True
    return found - roots


class TestTopologicalOrder:
    def test_dependencies_come_before_dependents(self):
        """A chain declared backwards is returned in dependency order."""
        edges = {"load": ["transform"], "transform": ["extract"], "extract": []}
        assert topological_order(edges) == ["extract", "transform", "load"]

    def test_independent_jobs_keep_declaration_order(self):
        """Jobs without dependencies come out exactly in the order they were declared."""
        edges = {"c": [], "a": [], "b": []}
        assert topological_order(edges) == ["c", "a", "b"]

    def test_jobs_ready_together_keep_declaration_order(self):
        """Jobs released by the same dependency keep their declaration order among themselves."""
        edges = {"z": ["root"], "root": [], "y": ["root"], "x": ["root"]}
        assert topological_order(edges) == ["root", "z", "y", "x"]

    def test_diamond(self):
        """A diamond puts the fork first, the branches next (declared order) and the join last."""
        edges = {"join": ["left", "right"], "right": ["fork"], "left": ["fork"], "fork": []}
        assert topological_order(edges) == ["fork", "right", "left", "join"]

    def test_unknown_dependencies_are_ignored(self):
        """A dependency on a job that is not in the graph does not block ordering."""
        assert topological_order({"a": ["ghost"], "b": ["a"]}) == ["a", "b"]

    def test_empty_graph(self):
        """An empty graph has an empty order."""
        assert topological_order({}) == []

    def test_cycle_raises_value_error_naming_the_cycle(self):
        """A cyclic graph cannot be ordered and the error names the cycle."""
        with pytest.raises(ValueError, match="dependency cycle"):
            topological_order({"a": ["b"], "b": ["a"], "c": []})

    @given(dags())
    def test_every_job_follows_all_its_dependencies(self, edges):
        """For random DAGs the order is a permutation in which each job follows its dependencies."""
        order = topological_order(edges)
        assert sorted(order) == sorted(edges)
        position = {node: index for index, node in enumerate(order)}
        for node, deps in edges.items():
            for dep in deps:
                assert position[dep] < position[node]

    @given(dags())
    def test_ties_keep_declaration_order(self, edges):
        """For random DAGs, jobs at the same depth appear in declaration order."""
        order = topological_order(edges)
        depth = levels(edges)
        declared = list(edges)
        for level in set(depth.values()):
            same_level = [node for node in order if depth[node] == level]
            assert same_level == [node for node in declared if depth[node] == level]


class TestFindCycle:
    def test_acyclic_graph_has_no_cycle(self):
        """A DAG yields None."""
        assert find_cycle({"a": [], "b": ["a"], "c": ["a", "b"]}) is None

    def test_two_node_cycle_is_a_closed_path(self):
        """A two-job cycle is returned as a closed path a -> b -> a."""
        assert find_cycle({"a": ["b"], "b": ["a"]}) == ["a", "b", "a"]

    def test_self_loop(self):
        """A job depending on itself is a cycle of length one."""
        assert find_cycle({"a": ["a"]}) == ["a", "a"]

    def test_cycle_reached_through_a_tail(self):
        """Only the cycle is returned, not the acyclic path that led to it."""
        cycle = find_cycle({"start": ["x"], "x": ["y"], "y": ["z"], "z": ["x"]})
        assert cycle == ["x", "y", "z", "x"]

    def test_unknown_targets_are_ignored(self):
        """Dependencies on jobs outside the graph are not cycles (validation reports them)."""
        assert find_cycle({"a": ["missing"], "b": ["a", "missing"]}) is None

    def test_empty_graph(self):
        """An empty graph has no cycle."""
        assert find_cycle({}) is None

    @given(dags())
    def test_random_dags_have_no_cycle(self, edges):
        """find_cycle finds nothing in any random DAG."""
        assert find_cycle(edges) is None

    @given(dags().filter(lambda e: any(e.values())), st.data())
    def test_a_back_edge_makes_a_real_closed_cycle(self, edges, data):
        """Adding the reverse of an existing edge yields a cycle made of real edges."""
        node = data.draw(st.sampled_from([n for n, deps in edges.items() if deps]))
        dep = data.draw(st.sampled_from(edges[node]))
        cyclic = {**edges, dep: [*edges[dep], node]}
        cycle = find_cycle(cyclic)
        assert cycle is not None
        assert cycle[0] == cycle[-1]
        assert len(set(cycle[:-1])) == len(cycle) - 1
        for source, target in itertools.pairwise(cycle):
            assert target in cyclic[source]


class TestDownstreamOf:
    def test_transitive_dependents_without_the_root(self):
        """Everything that depends on the root, directly or not, is returned; the root is not."""
        edges = {"a": [], "b": ["a"], "c": ["b"], "d": [], "e": ["d", "c"]}
        assert downstream_of(edges, {"a"}) == {"b", "c", "e"}

    def test_leaf_has_no_downstream(self):
        """A job nothing depends on has an empty downstream set."""
        assert downstream_of({"a": [], "b": ["a"]}, {"b"}) == set()

    def test_several_roots_exclude_each_other(self):
        """With several roots, roots are excluded even when one depends on another."""
        edges = {"a": [], "b": ["a"], "c": ["b"]}
        assert downstream_of(edges, {"a", "b"}) == {"c"}

    def test_unknown_root(self):
        """A root that is not in the graph has no downstream."""
        assert downstream_of({"a": []}, {"nope"}) == set()

    @given(dags(), st.data())
    def test_matches_brute_force_reachability(self, edges, data):
        """For random DAGs and roots, the result equals brute-force reachability."""
        roots = data.draw(st.sets(st.sampled_from(sorted(edges)))) if edges else set()
        assert downstream_of(edges, roots) == reachable_dependents(edges, roots)
