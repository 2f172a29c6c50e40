"""`labelwise-simulate`: does active learning through labelwise save labels on this data?

A client of the service, beside the server rather than in it: it reaches labelwise only
through the `labelwise` client package, and starts `labelwise serve` as a child process
when it is not given the address of a running one.

data.py loads and splits the data sets, loop.py runs one pool-based loop through
the service, runner.py runs every (data set, seed, strategy) loop, report.py
writes the curves, tables and plots, service.py starts the service.
"""
