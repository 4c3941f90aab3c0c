"""The device page's charts: one small pyqtgraph plot per figure, fed :class:`Sample` points.

Points are kept in bounded rings (:class:`console.models.device_charts.History`); the x axis is
seconds before now, so the newest point is at 0 and the chart scrolls as samples arrive. Gaps (no
figure from the edge, or the device unreachable) are NaN and drawn as breaks.
"""

from __future__ import annotations

import math

import pyqtgraph as pg  # type: ignore[import-untyped]  # pyqtgraph ships no type hints
from PySide6.QtWidgets import QVBoxLayout, QWidget

from console.models.device_charts import SERIES, History, Sample

# Plots, the series each draws (fps and latency draw two) and their place in a 2-column grid.
PLOTS: tuple[tuple[str, str, tuple[str, ...], int, int], ...] = (
    ("cpu", "CPU (%)", ("cpu",), 0, 0),
    ("temperature", "Temperature (°C)", ("temperature",), 0, 1),
    ("fps", "Frames per second: in / decoded", ("fps_in", "fps_decoded"), 1, 0),
    ("frame_age", "Frame age (s)", ("frame_age",), 1, 1),
    (
        "latency",
        "Snapshot latency (ms): edge / round trip",
        ("snapshot_latency", "round_trip"),
        2,
        0,
    ),
)
_PENS = ("#4fc3f7", "#ffb74d")


class ChartPanel(QWidget):
    """Five stacked plots of the device's recent figures."""

    def __init__(self, capacity: int = 300, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.history = History(capacity)
        self.graphics = pg.GraphicsLayoutWidget(self)
        self.graphics.setBackground(None)
        self.plots: dict[str, pg.PlotItem] = {}
        self.curves: dict[str, pg.PlotDataItem] = {}
        for plot_key, title, series, row, col in PLOTS:
            span = 2 if plot_key == "latency" else 1
            plot = self.graphics.addPlot(row=row, col=col, colspan=span, title=title)
            plot.showGrid(x=True, y=True, alpha=0.2)
            plot.setMenuEnabled(False)
            plot.setMouseEnabled(x=False, y=False)
            plot.hideButtons()
            plot.getAxis("bottom").setLabel("seconds ago")
            if len(series) > 1:
                plot.addLegend(offset=(-5, 5), labelTextSize="8pt")
            for i, key in enumerate(series):
                self.curves[key] = plot.plot(
                    [], [], name=SERIES[key][0], pen=pg.mkPen(_PENS[i], width=2),
                    connect="finite",
                )  # fmt: skip
            self.plots[plot_key] = plot
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.graphics)

    def add_sample(self, sample: Sample) -> None:
        self.history.add(sample)
        now = sample.t
        for key, curve in self.curves.items():
            ring = self.history.rings[key]
            xs = [t - now for t in ring.xs()]
            curve.setData(xs, ring.ys(), connect="finite")

    def clear(self) -> None:
        self.history.clear()
        for curve in self.curves.values():
            curve.setData([], [])

    def points(self, key: str) -> list[float]:
        """The finite values drawn for series ``key`` (what a test or a tooltip reads)."""
        _, ys = self.curves[key].getData()
        if ys is None:
            return []
        return [float(y) for y in ys if not math.isnan(float(y))]
