"""Presentation: the HTML report and its figures, drawn from a ranked results table.

``write_report(table, outdir, title, objectives)`` (html.py) writes ``index.html`` with the figures of
hull.py (formation energy and convex hull) and plots.py (Pareto front of the ranking objectives, rare
earth vs μ0Ms); columns.py reads and labels the table's columns. This layer may import screening and
results; nothing below imports it.
"""

from tansaku.report.html import objectives_used, ranking_warnings, write_report

__all__ = ["objectives_used", "ranking_warnings", "write_report"]
