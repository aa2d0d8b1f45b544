"""The benchmark harness (bench/common.py): what makes its figures trustworthy is tested here without a database:
sizes alternate with the order flipping every round, the warm-up is discarded, before/after hooks stay out of
the timing, the spread and ratios are computed from the right samples, and a baseline that does not fetch what
the page shows stops the bench."""

import re

import pytest

from bench.common import Results, check_same, interleave, machine_load, percentile, spread


def test_it_interpolates_percentiles_between_ranks():
    assert percentile([1, 2, 3, 4, 5], 0.5) == 3
    assert percentile([10, 20], 0.9) == pytest.approx(19)
    assert percentile([7], 0.1) == 7


def test_it_prints_a_median_with_its_min_max_across_rounds():
    assert spread([1.0, 3.0, 2.0]) == "2.00 [1.00-3.00]"


def test_it_alternates_sizes_flipping_the_order_every_round_and_discards_the_warm_up():
    switched, ran = [], []

    def use(size):
        switched.append(size)

    def make(size):
        return (lambda: ran.append(("ours", switched[-1])), lambda: ran.append(("raw", switched[-1])))

    results = interleave({"case": make}, sizes=["small", "large"], use=use, rounds=4, repeat=3)

    # set-up (one use per size), the warm-up round (reversed), then rounds 0..3 flipping.
    assert switched == ["small", "large", "large", "small", "small", "large", "large", "small", "small", "large",
                        "large", "small"]
    for size in ("small", "large"):
        assert len(results.samples[("case", size, "ours")]) == 4 * 3
        assert len(results.samples[("case", size, "raw")]) == 4 * 3
        assert len(results.medians[("case", size, "ours")]) == 4
    # Each switch runs every callable once unrecorded (twice in the warm-up round): 2 + 4 x 1 warm calls and
    # 4 x 3 recorded ones per size and kind.
    assert ran.count(("ours", "small")) == 2 + 4 + 12
    assert ran.count(("raw", "large")) == 2 + 4 + 12


def test_it_keeps_before_and_after_out_of_the_sample():
    import time

    def make(size):
        return (lambda: None, None, lambda: time.sleep(0.02), lambda: time.sleep(0.02))

    results = interleave({"case": make}, sizes=[1], use=lambda size: None, rounds=1, repeat=3)
    assert max(results.samples[("case", 1, "ours")]) < 15  # ms: the 40 ms of hooks are not in it
    assert results.samples[("case", 1, "raw")] == []


def test_it_takes_the_size_ratio_round_by_round():
    results = Results(["s", "l"], ["case"], rounds=3)
    results.medians[("case", "s", "ours")] = [1.0, 2.0, 4.0]
    results.medians[("case", "l", "ours")] = [2.0, 2.0, 2.0]
    assert results.ratio_rounds("case", "s", "l") == [2.0, 1.0, 0.5]


def test_it_stops_when_a_baseline_fetches_other_rows_or_another_count():
    check_same("same", (["INC1", "INC2"], 10), (["INC1", "INC2"], 10))
    with pytest.raises(SystemExit, match="first difference at row 0"):
        check_same("order", (["INC1", "INC2"], 10), (["INC2", "INC1"], 10))
    with pytest.raises(SystemExit, match=r"count 10\) against 2 \(count None"):
        check_same("count", (["INC1", "INC2"], 10), (["INC1", "INC2"], None))
    with pytest.raises(SystemExit, match="2 rows"):
        check_same("rows", (["INC1", "INC2"], None), (["INC1"], None))


def test_it_states_the_machine_load():
    line = machine_load(0.2)
    assert re.match(r"\d+ CPUs, load average [\d.]+ / [\d.]+ / [\d.]+; other processes used \d+% of one CPU", line)
