"""Grid carbon intensity: providers, traces, zones, the provider chain and the feeder.

Entry points for other parts of carbonpipe:

* ``trace.load_trace(path, column=None, zone=None) -> TraceSeries`` and
  ``trace.shared_traces_dir()`` / ``trace.find_trace(zone)``: offline traces on a regular grid.
* ``static.load_zone_averages(path) -> dict[zone, ZoneAverage]``: the annual-average fallback
  table ``data/zone_averages.csv`` (columns zone,carbon_intensity_g_per_kwh,year,source).
* ``chain.build_chain(settings, names=None, clock=...) -> ProviderChain``: providers in
  ``settings.provider_chain`` order; ``.current/.history/.forecast`` return ``IntensityPoint``.
* ``zones.resolve_zone(settings, zone=None)``: zone from settings.zone / settings.cloud_region.
* ``feeder.replay_records`` / ``feeder.live_records``: the grid.intensity records to publish.
"""
