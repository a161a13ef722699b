"""experiments/chain_calibration.py: where a series of local slopes becomes asymptotic, from
hand-made octaves (no chain run)."""

from experiments.chain_calibration import asymptotic_from, known_slope


def _octaves(*intervals, s=3):
    d = [64 * 2**i for i in range(len(intervals) + 1)]
    return [dict(d1=d[i], d2=d[i + 1], slope=(lo + hi) / 2, lo=lo, hi=hi, known=known_slope(s, d[i], d[i + 1]))
            for i, (lo, hi) in enumerate(intervals)]


def test_asymptotic_from_the_first_octave_after_the_last_miss():
    assert asymptotic_from(_octaves((1.5, 1.8), (1.9, 2.2), (1.7, 2.4))) == 128  # 2 first held from 128 on
    assert asymptotic_from(_octaves((1.9, 2.1), (1.5, 1.8), (1.9, 2.3))) == 256  # a miss resets the start
    assert asymptotic_from(_octaves((1.9, 2.1), (2.1, 2.5))) is None  # the last octave misses 2
    assert asymptotic_from(_octaves((1.9, float("inf")))) == 64  # an interval open at the top holds 2


def test_known_slope_of_d_log_d_falls_toward_one():
    first, later = known_slope(2, 64, 256), known_slope(2, 2**18, 2**20)
    assert 1.2 < first < 1.22 and 1.06 < later < first  # 1 + log(log 256 / log 64) / log 4 = 1.2075
    assert known_slope(4, 16, 32) == 3.0
