"""The latency split reads histogram means from Prometheus text, summed over label sets."""

from bench.latency_split import client_ms, histogram_totals, mean_ms

TEXT = """# TYPE vllm:time_to_first_token_seconds histogram
vllm:time_to_first_token_seconds_bucket{replica="a",le="+Inf"} 3.0
vllm:time_to_first_token_seconds_sum{replica="a"} 0.3
vllm:time_to_first_token_seconds_count{replica="a"} 3.0
vllm:time_to_first_token_seconds_sum{replica="b"} 0.5
vllm:time_to_first_token_seconds_count{replica="b"} 1.0
# TYPE other_seconds histogram
other_seconds_sum 9.0
other_seconds_count 9.0
"""


def test_histogram_totals_sum_every_label_set_of_one_name() -> None:
    total, count = histogram_totals(TEXT, "vllm:time_to_first_token_seconds")
    assert (round(total, 6), count) == (0.8, 4.0)


def test_mean_ms_is_the_mean_of_what_came_between() -> None:
    assert mean_ms((0.8, 4.0), (1.4, 6.0)) == 300.0
    assert mean_ms((0.8, 4.0), (0.8, 4.0)) is None


def test_client_ms_gives_mean_median_and_the_99th_percentile_in_ms() -> None:
    assert client_ms([0.001 * i for i in range(1, 102)]) == {"mean": 51.0, "p50": 51.0, "p99": 100.0}
    assert client_ms([0.02]) == {"mean": 20.0, "p50": 20.0, "p99": 20.0}
