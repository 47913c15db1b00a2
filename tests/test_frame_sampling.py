import numpy as np
import pytest

from ssvp_slt.corpus.frame_sampling import (
    grid_window,
    num_sampled_frames,
    resampled_length,
    sample_frame_indices,
    to_source_indices,
    window_span,
)


def test_resampling_halves_the_frame_rate():
    assert resampled_length(100, 50.0, 25.0) == 50
    assert list(to_source_indices(np.arange(5), 100, 50.0, 25.0)) == [0, 2, 4, 6, 8]


def test_resampling_30_to_25_fps_follows_time():
    idx = to_source_indices(np.arange(resampled_length(30, 30.0, 25.0)), 30, 30.0, 25.0)
    assert len(idx) == 25
    # grid frame j is shown at j/25 s; the source frame on screen then is floor(j*30/25)
    assert list(idx[:6]) == [0, 1, 2, 3, 4, 6]
    assert idx[-1] == 28


def test_upsampling_repeats_source_frames():
    idx = to_source_indices(np.arange(resampled_length(24, 24.0, 25.0)), 24, 24.0, 25.0)
    assert len(idx) == 25
    assert np.all(np.diff(idx) >= 0) and len(set(idx)) == 24  # one frame shown twice
    assert idx[-1] == 23


def test_ntsc_rate_does_not_lose_a_frame_to_rounding():
    # 29.97 -> 29.97: exact identity, not floor(2.9999999) = 2
    fps = 30000 / 1001
    assert list(to_source_indices(np.arange(10), 10, fps, fps)) == list(range(10))


def test_short_clip_takes_every_rate_th_frame_and_no_more():
    assert list(grid_window(7, num_frames=8, sampling_rate=2, mode="center")) == [0, 2, 4, 6]
    assert list(grid_window(7, num_frames=8, sampling_rate=2, mode="random", rng=np.random.default_rng(0))) == [0, 2, 4, 6]


def test_center_window_is_centred():
    m, n, r = 101, 10, 2
    idx = grid_window(m, n, r, "center")
    assert len(idx) == n and np.all(np.diff(idx) == r)
    left, right = idx[0], m - 1 - idx[-1]
    assert abs(left - right) <= 1


def test_random_windows_stay_inside_and_vary():
    rng = np.random.default_rng(0)
    starts = set()
    for _ in range(200):
        idx = grid_window(60, 8, 3, "random", rng)
        assert idx[0] >= 0 and idx[-1] <= 59 and np.all(np.diff(idx) == 3)
        starts.add(int(idx[0]))
    assert starts == set(range(0, 60 - window_span(8, 3) + 1))


def test_cover_spans_the_whole_clip():
    idx = grid_window(200, 10, 2, "cover")
    assert len(idx) == 10 and idx[0] == 0 and idx[-1] == 199


def test_random_mode_needs_rng_and_unknown_mode_fails():
    with pytest.raises(ValueError, match="rng"):
        grid_window(100, 8, 2, "random")
    with pytest.raises(ValueError, match="unknown window mode"):
        grid_window(100, 8, 2, "middle")


@pytest.mark.parametrize("n_frames,fps", [(1, 25.0), (9, 25.0), (64, 25.0), (65, 25.0), (300, 30.0), (41, 12.0)])
@pytest.mark.parametrize("mode", ["random", "center", "cover"])
def test_num_sampled_frames_matches_the_indices(n_frames, fps, mode):
    idx = sample_frame_indices(n_frames, fps, 25.0, 16, 2, mode, np.random.default_rng(1))
    assert len(idx) == num_sampled_frames(n_frames, fps, 25.0, 16, 2)
    assert idx.min() >= 0 and idx.max() < n_frames and np.all(np.diff(idx) >= 0)
