"""The health page's Kafka lag, from Spark's progress records (pure: no Spark started)."""

from __future__ import annotations

import json

from spark_jobs.stream import lag_of


def _progress(end: object, latest: object) -> dict[str, object]:
    return {"sources": [{"endOffset": end, "latestOffset": latest}]}


def test_lag_is_latest_minus_end_per_partition() -> None:
    end = {"t": {"0": 10, "1": 5}}
    latest = {"t": {"0": 14, "1": 5, "2": 3}}  # partition 2 unseen: nothing read behind it
    assert lag_of(_progress(json.dumps(end), json.dumps(latest))) == 4
    assert lag_of(_progress(end, latest)) == 4


def test_an_offset_that_is_not_per_partition_json_gives_no_lag_not_an_error() -> None:
    # An available-now trigger (`carbonpipe stream --once`) over a backlog larger than
    # max_offsets_per_trigger reports a latestOffset that is not JSON: it once failed the batch.
    assert lag_of(_progress('{"t":{"0":10}}', "{KafkaSourceOffset...}")) is None
    assert lag_of(_progress(None, '{"t":{"0":10}}')) is None
    assert lag_of({"sources": []}) == 0
