"""`labelwise simulate`: does active learning through labelwise save labels on this data?

data.py loads and splits the data sets, loop.py runs one pool-based loop through
the service, runner.py runs every (data set, seed, strategy) loop, report.py
writes the curves, tables and plots.
"""
