"""Spark Structured Streaming job: Kafka -> validate -> intensity join -> windows -> sinks."""
