"""Device sources: one small Protocol per device kind, one class per measurement source.

The sampling loop only talks to these Protocols; vendor libraries (pynvml) are imported
inside the source class that needs them, lazily, so a host without them still collects.
"""
