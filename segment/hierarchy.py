"""A region hierarchy from the merge sequence, as an ultrametric contour map (BSDS ucm2).

Merging adjacent regions cheapest first (:func:`segment.merging.merge_similar_regions`)
builds a tree: leaves are the regions the merging started from, and each merge
joins two of them at a level. Levels are the merge costs made monotone
(a running maximum), mapped to [0, 1) by ``cost / (1 + cost)`` — the odds
against "one object" turned into a probability — so that the default
segmentation (``merge_cost`` 1) is the cut at 0.5.

The ultrametric contour map (ucm2) puts on every boundary between two pixels
the level at which its two sides join, on a grid of doubled resolution
``(2H + 1, 2W + 1)``: pixel ``(i, j)`` sits at ``(2i + 1, 2j + 1)``, the boundary
between it and its right / lower neighbour at ``(2i + 1, 2j + 2)`` /
``(2i + 2, 2j + 1)``, junctions take the largest of their four boundaries and
the frame repeats the row / column inside it. The regions at a scale ``t``
are the connected components of ``ucm2 <= t`` read at the pixels
(:func:`cut`), the BSDS benchmark's own reading of a ucm2.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

UCM_PNG_MAX = 65535  # a ucm2 level v in [0, 1] is stored in a 16-bit PNG as ceil(v * 65535)


def cost_to_scale(cost):
    """The scale (ucm2 level) of a merge cost: ``cost / (1 + cost)``, in [0, 1]."""
    cost = np.asarray(cost, dtype=np.float64)
    return np.where(np.isinf(cost), 1.0, cost / (1.0 + np.where(np.isinf(cost), 0.0, cost)))


@dataclass(frozen=True)
class Hierarchy:
    """Leaf regions and the merges that join them, in order.

    Attributes
    ----------
    regions : (H, W) int32 ndarray
        Leaf ids 0..R-1.
    sources, targets : (M,) int64 ndarray
        Merge ``k`` joined the tree containing leaf ``sources[k]`` to the one
        containing ``targets[k]`` (each the representative leaf of its tree).
    levels : (M,) float64 ndarray
        Non-decreasing scales in [0, 1] of the merges.
    """

    regions: np.ndarray
    sources: np.ndarray
    targets: np.ndarray
    levels: np.ndarray

    @classmethod
    def from_merges(cls, regions: np.ndarray, sources, targets, costs) -> "Hierarchy":
        """The hierarchy of a merge sequence with its merge costs (in merge order)."""
        costs = np.maximum.accumulate(np.asarray(costs, dtype=np.float64)) if len(costs) else np.zeros(0)
        return cls(
            np.asarray(regions, dtype=np.int32),
            np.asarray(sources, dtype=np.int64),
            np.asarray(targets, dtype=np.int64),
            cost_to_scale(costs),
        )

    def leaf_roots(self, scale: float) -> np.ndarray:
        """The region (representative leaf) of each leaf after the merges at levels ``<= scale``, (R,) int64."""
        n_leaves = int(self.regions.max()) + 1 if self.regions.size else 0
        parent = np.arange(n_leaves)
        for source, target in zip(self.sources[: np.searchsorted(self.levels, scale, side="right")], self.targets):
            parent[source] = target  # sources and targets are roots when they merge
        while True:  # path halving until every leaf points at its root
            grand = parent[parent]
            if np.array_equal(grand, parent):
                return parent
            parent = grand

    def cut(self, scale: float) -> np.ndarray:
        """Regions 1..N of the hierarchy at ``scale`` (merges at levels ``<= scale`` applied), (H, W) int32."""
        roots = self.leaf_roots(scale)
        _, dense = np.unique(roots, return_inverse=True)
        return (dense.astype(np.int32) + 1)[self.regions]

    def ucm2(self) -> np.ndarray:
        """The ultrametric contour map, (2H + 1, 2W + 1) float64; boundaries never merged get 1."""
        height, width = self.regions.shape
        horizontal = self.regions[:, :-1] != self.regions[:, 1:]
        vertical = self.regions[:-1, :] != self.regions[1:, :]
        pairs_a = np.concatenate([self.regions[:, :-1][horizontal], self.regions[:-1, :][vertical]])
        pairs_b = np.concatenate([self.regions[:, 1:][horizontal], self.regions[1:, :][vertical]])
        strength = self.join_levels(pairs_a, pairs_b)
        ucm = np.zeros((2 * height + 1, 2 * width + 1))
        n_horizontal = int(horizontal.sum())
        ucm[1:-1:2, 2:-1:2][horizontal] = strength[:n_horizontal]
        ucm[2:-1:2, 1:-1:2][vertical] = strength[n_horizontal:]
        ucm[2:-1:2, 2:-1:2] = np.maximum.reduce(
            [ucm[1:-2:2, 2:-1:2], ucm[3::2, 2:-1:2], ucm[2:-1:2, 1:-2:2], ucm[2:-1:2, 3::2]]
        )
        ucm[0], ucm[-1] = ucm[1], ucm[-2]
        ucm[:, 0], ucm[:, -1] = ucm[:, 1], ucm[:, -2]
        return ucm

    def join_levels(self, leaves_a: np.ndarray, leaves_b: np.ndarray) -> np.ndarray:
        """The level at which leaves ``a[k]`` and ``b[k]`` join (1 if they never do), (P,) float64."""
        keys = np.minimum(leaves_a, leaves_b).astype(np.int64) * (int(self.regions.max()) + 1) + np.maximum(
            leaves_a, leaves_b
        )
        unique_keys, back = np.unique(keys, return_inverse=True)
        n_leaves = int(self.regions.max()) + 1
        first, second = unique_keys // n_leaves, unique_keys % n_leaves
        levels = np.ones(len(unique_keys))
        # Replay the merges; each tree keeps its leaves and its pairs not yet joined (a
        # pair sits in the lists of both its trees), the smaller lists moving (small to large).
        tree = np.arange(n_leaves)  # an id shared by the leaves of each tree
        members = {leaf: [leaf] for leaf in range(n_leaves)}
        pending: dict[int, list[int]] = {leaf: [] for leaf in range(n_leaves)}
        for k, (a, b) in enumerate(zip(first.tolist(), second.tolist())):
            pending[a].append(k)
            pending[b].append(k)
        joined = np.zeros(len(unique_keys), dtype=bool)
        for source, target, level in zip(self.sources.tolist(), self.targets.tolist(), self.levels.tolist()):
            small, large = sorted((members.pop(source), members.pop(target)), key=len)
            tree[small] = tree[large[0]]
            members[target] = large + small
            small, large = sorted((pending.pop(source), pending.pop(target)), key=len)
            for k in small:
                if joined[k]:
                    continue
                if tree[first[k]] == tree[second[k]]:
                    levels[k], joined[k] = level, True
                else:
                    large.append(k)
            pending[target] = large
        return levels[back]


def cut_ucm2(ucm2: np.ndarray, scale: float) -> np.ndarray:
    """Regions 1..N of a ucm2 map at ``scale``: components of ``ucm2 <= scale`` (8-connected), read at the pixels.

    Parameters
    ----------
    ucm2 : (2H + 1, 2W + 1) ndarray
    scale : float

    Returns
    -------
    (H, W) int32 ndarray

    Examples
    --------
    >>> ucm2 = np.zeros((3, 5)); ucm2[:, 2] = 0.7
    >>> cut_ucm2(ucm2, 0.5).tolist(), cut_ucm2(ucm2, 0.7).tolist()
    ([[1, 2]], [[1, 1]])
    """
    from scipy import ndimage

    ucm2 = np.asarray(ucm2)
    if ucm2.ndim != 2 or ucm2.shape[0] % 2 == 0 or ucm2.shape[1] % 2 == 0:
        raise ValueError(f"a ucm2 map has odd sides (2H + 1, 2W + 1); got shape {ucm2.shape}")
    components, _ = ndimage.label(ucm2 <= scale, structure=np.ones((3, 3), dtype=bool))
    labels = components[1::2, 1::2]
    _, dense = np.unique(labels, return_inverse=True)
    return dense.reshape(labels.shape).astype(np.int32) + 1


def merge_hierarchy(labels: np.ndarray, colours: np.ndarray) -> Hierarchy:
    """The hierarchy of merging the regions of ``labels`` until one is left (or nothing can merge).

    Parameters
    ----------
    labels : (H, W) int ndarray
        The regions before merging (4-connected regions of equal label are the leaves).
    colours : (H, W, C) ndarray
        Per-pixel colour features, as for :func:`segment.merging.merge_similar_regions`.

    Returns
    -------
    Hierarchy
        Its cut at ``cost_to_scale(merge_cost)`` gives the regions that
        ``merge_similar_regions(labels, colours, merge_cost)`` leaves, up to ties
        (this cut also merges a pair that costs exactly ``merge_cost``).
    """
    from segment.merging import merge_similar_regions

    _, record = merge_similar_regions(labels, colours, np.inf, record=True)
    return Hierarchy.from_merges(record.regions, record.sources, record.targets, record.costs)


def ucm2_to_png_values(ucm2: np.ndarray) -> np.ndarray:
    """A [0, 1] ucm2 as 16-bit integers, ``ceil(v * 65535)``: a boundary above 0 stays above 0."""
    return np.ceil(np.clip(np.asarray(ucm2, dtype=np.float64), 0.0, 1.0) * UCM_PNG_MAX).astype(np.uint16)


def ucm2_from_png_values(values: np.ndarray) -> np.ndarray:
    """The inverse of :func:`ucm2_to_png_values` (to within 1 / 65535), float64."""
    return np.asarray(values, dtype=np.float64) / UCM_PNG_MAX


def merge_tree_dict(hierarchy: Hierarchy) -> dict:
    """The merge tree as JSON-ready data: merges ``[source, target, level]`` over the leaves."""
    return {
        "leaves": "regions of the ucm2 at level 0, numbered 0.. in raster order of their first pixel",
        "n_leaves": int(hierarchy.regions.max()) + 1 if hierarchy.regions.size else 0,
        "level": "merge cost c as c / (1 + c), made non-decreasing; the default segmentation is the cut at 0.5",
        "merges": [[int(s), int(t), float(v)] for s, t, v in zip(hierarchy.sources, hierarchy.targets, hierarchy.levels)],
    }
