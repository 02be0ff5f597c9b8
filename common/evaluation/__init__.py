"""Sampling hypotheses for whole sequences, their aggregation (P/J-Best, P/J-Agg), metrics,
optional smoothing, result tables and the MPI-INF-3DHP scoring.

May import: common.core, common.data, common.synthetic, common.model and itself.
"""
