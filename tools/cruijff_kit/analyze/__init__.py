"""analyze-experiment: inspect-ai logs + torchtune loss logs -> results table, plots, report.

    from cruijff_kit.analyze.pipeline import analyze_experiment
"""
