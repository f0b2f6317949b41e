"""RegionGraph: the connected regions of a label map, their adjacency and accumulators, under merging.

One structure serves every region step: merging by the learned cost
(:mod:`segment.merging`), small-region and hole merging
(:mod:`segment.postprocess`). The merge loops run in Numba
(:mod:`segment._region_kernels`); each merge costs time in proportion to the
smaller region's number of neighbours, so a picture of a million specks costs
about what a photo does.
"""

from __future__ import annotations

import numpy as np

BACKGROUND = 0


class RegionGraph:
    """The 4-connected regions of equal label of a label map, as a graph with union-find merging.

    Parameters
    ----------
    labels : (H, W) int ndarray
        Label map; pixels labelled ``background`` form regions that are never
        merged nor merged into.
    edge_maps : (H, W, S) float ndarray, optional
        Per-pixel strengths (e.g. image edges) summed along every shared
        border, as the mean of the two pixels of each 4-neighbour pair.
    background : int

    Attributes
    ----------
    regions : (H, W) int32 ndarray
        Region id 0..R-1 of every pixel, in raster order of first pixels.
    value_of : (R,) int32 ndarray
        The label of each region.
    movable : (R,) bool ndarray
        False for background regions.
    values : (R, M) float64 ndarray
        Additive per-region accumulators; column 0 is the pixel count.
    ends : (E, 2) int64 ndarray
        The two regions of every edge (roots, kept up to date by merges).
    edge_values : (E, 1 + S) float64 ndarray
        Shared border length, then the summed strengths along it.

    Examples
    --------
    >>> labels = np.array([[1, 1, 2], [1, 3, 2]])
    >>> graph = RegionGraph(labels)
    >>> graph.n_regions, int(graph.values[:, 0].sum())
    (3, 6)
    >>> graph.merge_small(min_size=2)
    >>> graph.labels().tolist()
    [[1, 1, 2], [1, 1, 2]]
    """

    def __init__(self, labels: np.ndarray, edge_maps: np.ndarray | None = None, *, background: int = BACKGROUND) -> None:
        from segment._region_kernels import adjacency_lists, boundary_pairs, boundary_strengths, connected_regions

        labels = np.ascontiguousarray(labels, dtype=np.int32)
        self.regions = connected_regions(labels, -1) - 1
        n = self.n_regions = int(self.regions.max()) + 1
        flat = self.regions.ravel()
        self.value_of = np.zeros(n, dtype=np.int32)
        self.value_of[flat] = labels.ravel()
        self.movable = self.value_of != background
        self.values = np.bincount(flat, minlength=n).astype(np.float64)[:, None]
        if edge_maps is None:
            low, high = boundary_pairs(self.regions)
            strengths = np.zeros((len(low), 0))
        else:
            maps = np.ascontiguousarray(np.asarray(edge_maps, dtype=np.float32).reshape(*labels.shape, -1))
            low, high, strengths = boundary_strengths(self.regions, maps)
        keys, inverse = np.unique(low * n + high, return_inverse=True)
        inverse = inverse.ravel()
        columns = [np.bincount(inverse, minlength=len(keys)).astype(np.float64)]
        columns += [np.bincount(inverse, strengths[:, s], len(keys)) for s in range(strengths.shape[1])]
        self.edge_values = np.stack(columns, axis=1)
        self.ends = np.stack(np.divmod(keys, n), axis=1).astype(np.int64)
        self.parent = np.arange(n, dtype=np.int64)
        self._alive = np.ones(len(keys), dtype=bool)
        self._stamp = np.zeros(len(keys), dtype=np.int64)
        self._lists = adjacency_lists(self.ends, n)

    def region_sums(self, image: np.ndarray) -> np.ndarray:
        """Per-region sums of the channels of ``image`` (H, W[, C]), (R, C) float64."""
        from segment._region_kernels import region_sums

        values = np.asarray(image).reshape(*self.regions.shape, -1)
        if values.dtype not in (np.float32, np.float64):
            values = values.astype(np.float64)
        return region_sums(self.regions, self.n_regions, np.ascontiguousarray(values))

    def add_values(self, columns: np.ndarray) -> None:
        """Append per-region accumulators (R, K) to :attr:`values`; only before any merge."""
        self.values = np.ascontiguousarray(np.hstack([self.values, np.asarray(columns, dtype=np.float64).reshape(self.n_regions, -1)]))

    @property
    def kernel_graph(self) -> tuple:
        """The arrays the Numba merge kernels work on (they are updated in place)."""
        head, tail, next_slot = self._lists
        return (self.parent, self.values, self.ends, self.edge_values, self._alive, self._stamp, head, tail, next_slot)

    def merge_small(
        self, min_size: int = 0, *, max_regions: int | None = None, colour_columns: np.ndarray | None = None
    ) -> None:
        """Merge regions below ``min_size`` pixels, smallest first, and the smallest while over ``max_regions``.

        A region joins the neighbour whose mean of the ``colour_columns`` of
        :attr:`values` is closest (ties: the longest shared border), or with
        no columns, the one it shares the longest border with; then the lower
        label and region id.
        """
        from segment._region_kernels import merge_small

        columns = np.asarray([] if colour_columns is None else colour_columns, dtype=np.int64)
        limit = self.n_regions if max_regions is None else max_regions
        merge_small(self.kernel_graph, self.movable, float(min_size), limit, columns, len(columns) > 0, self.value_of)

    def fill_holes(self, hole_size: int) -> None:
        """Merge every region below ``hole_size`` pixels that is enclosed by one other region into it."""
        from segment._region_kernels import fill_holes

        border = np.zeros(self.n_regions, dtype=bool)
        for edge in (self.regions[0], self.regions[-1], self.regions[:, 0], self.regions[:, -1]):
            border[edge] = True
        fill_holes(self.kernel_graph, self.movable, float(hole_size), border)

    def roots(self) -> np.ndarray:
        """The region each region has been merged into, (R,) int64."""
        from segment._region_kernels import region_roots

        return region_roots(self.parent)

    def labels(self) -> np.ndarray:
        """The label map after the merges: every region takes its root's label, (H, W) int32."""
        return self.value_of[self.roots()][self.regions]
