"""Grid carbon intensity: providers, traces, zones, the provider chain and the feeder."""
