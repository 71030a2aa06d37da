"""Pure decision logic: no I/O, no sleeping, time injected.

Each module here decides; the transports in ``buttress.transports`` act.
"""
