"""Work processes: where every request's work runs, under OS limits, killable at its deadline.

pool.py is the worker's side (WorkPool), child.py the process's main loop, protocol.py the
frames between them.
"""
