"""Clusters of the same claim: checked matches joined strongest first, with ids that last.

Matches are applied in descending score. Two groups are joined only if

* they are *linkable* (the caller's rule; `match` asks that the claims across them match on
  average and that no two of them contradict: one says 38 bcm, the other 61 bcm), so a chain
  of near matches cannot grow a cluster into a topic; and
* they are not both clusters published last night: their ids stay, so they are never merged.

A cluster keeps the id it was published under; a new cluster's id is derived from its smallest
claim id, so a rebuild from scratch gives the same ids to the same clusters.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

from pipeline.ids import stable_id

__all__ = ["cluster_claims", "new_cluster_id"]


def new_cluster_id(claim_ids: Iterable[str]) -> str:
    """Id of a new cluster: derived from its smallest claim id."""
    return "cc_" + stable_id("claim_cluster", min(claim_ids))


class _Groups:
    """Union-find over claim positions, keeping each group's members and published id."""

    def __init__(self, n: int) -> None:
        self.parent = list(range(n))
        self.members: dict[int, list[int]] = {}
        self.label: dict[int, str] = {}

    def find(self, i: int) -> int:
        root = i
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[i] != root:
            self.parent[i], i = root, self.parent[i]
        return root

    def group(self, root: int) -> list[int]:
        return self.members.get(root, [root])

    def union(self, a: int, b: int) -> None:
        ga, gb = self.group(a), self.group(b)
        if len(ga) < len(gb):
            a, b, ga, gb = b, a, gb, ga
        self.parent[b] = a
        self.members[a] = ga + gb
        self.members.pop(b, None)
        if b in self.label:
            self.label[a] = self.label.pop(b)


def cluster_claims(
    claim_ids: Sequence[str],
    matches: Iterable[tuple[float, int, int]],
    linkable: Callable[[Sequence[int], Sequence[int]], bool],
    previous: Mapping[int, str],
) -> dict[int, str]:
    """Cluster id per claim position, for claims in a cluster of two or more.

    Args:
        claim_ids: Id of each claim position.
        matches: ``(score, i, j)`` checked matches.
        linkable: Whether two groups of positions may form one cluster.
        previous: Published cluster id of the claims that were in one last night.

    Returns:
        Position -> cluster id, only for claims whose cluster has at least two claims.
    """
    groups = _Groups(len(claim_ids))
    by_label: dict[str, int] = {}
    for i, label in sorted(previous.items()):
        root = by_label.get(label)
        if root is None:
            by_label[label] = i
            groups.label[i] = label
        else:
            groups.union(groups.find(root), i)
            by_label[label] = groups.find(i)
    ordered = sorted(matches, key=lambda m: (-m[0], claim_ids[m[1]], claim_ids[m[2]]))
    for _, i, j in ordered:
        a, b = groups.find(i), groups.find(j)
        if a == b or (a in groups.label and b in groups.label):
            continue
        if linkable(groups.group(a), groups.group(b)):
            groups.union(a, b)
    out: dict[int, str] = {}
    used = set(groups.label.values())
    for root, members in sorted(groups.members.items()):
        published = groups.label.get(root)
        if published is not None:
            label = published
        else:
            label = new_cluster_id(claim_ids[m] for m in members)
            while label in used:  # a returning claim's old id is taken: derive another
                label = "cc_" + stable_id("claim_cluster", label)
            used.add(label)
        for m in members:
            out[m] = label
    return out
