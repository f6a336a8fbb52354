"""`alexnet reproduce`: the paper's measurable claims as experiments that write reports.

experiments.py defines each claim as two training configs differing in one factor and the
scales they run at; runner.py trains the runs (once each, shared and resumable) and measures an
experiment; stats.py holds the intervals and verdict rule; report.py writes report.md, the
pictures, results.json and the summary table (docs/paper.md).
"""
