"""The carbonpipe collector: per-host energy measurement of one training run.

Layout: ``devices/`` reads counters (one small interface per device kind, one class per
source); ``energy`` and ``events`` are pure computation; ``sampler`` turns readings into
contract events; ``spool`` + ``publish`` make sure no event is lost; ``cli``/``track``/
``callbacks`` are the ways to attach.
"""
