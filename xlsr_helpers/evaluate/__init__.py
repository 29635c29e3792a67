"""Scores and numbers: metrics, score files, calibration, scoring, reports, plots, seeds."""
