"""carbonpipe's kernel: what every other part shares, depending on nothing else in the project.

``config`` (the one settings object), ``contracts`` (the JSON Schema files), ``timeutil`` (one
ISO parser/formatter, one duration parser), ``fsutil`` (atomic writes), ``units`` (unit
constants and provenance labels), ``layout`` (the home folder), ``errors`` (the error root).
``collector``, ``spark_jobs``, ``dashboard`` and the CLIs import from here; nothing here imports
them (``tests/test_layering.py`` keeps it so).
"""
