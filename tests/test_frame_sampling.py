import numpy as np
import pytest

from ssvp_slt.corpus.frame_sampling import (
    WindowSettings,
    clip_layout,
    encoder_frames,
    plan_windows,
    resampled_length,
    to_source_indices,
    window_span,
    windows_needed,
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


def settings(num_frames=8, rate=2, stride=4, max_windows=3, long_clips="stretch", fps=25.0):
    return WindowSettings(fps, num_frames, rate, stride, max_windows, long_clips)


def windows_of(plan, num_frames):
    return [plan.source_indices[s : s + num_frames] for s in plan.starts]


def test_short_clip_takes_every_rate_th_frame_and_no_more():
    for train in (False, True):
        plan = plan_windows(7, 25.0, settings(), train, np.random.default_rng(0) if train else None)
        assert list(plan.starts) == [0] and np.all(np.diff(plan.source_indices) == 2)
        assert len(plan.source_indices) == (4 if plan.source_indices[0] == 0 else 3)  # a training phase of 1 sees 1, 3, 5


@pytest.mark.parametrize("n_frames", [17, 18, 25, 31, 40, 47])
def test_windows_cover_every_sampled_frame_of_a_long_clip(n_frames):
    s = settings(max_windows=5)
    plan = plan_windows(n_frames, 25.0, s, train=False)
    covered = np.concatenate(windows_of(plan, s.num_frames))
    # every sampled frame (every 2nd of the clip) is in some window, nothing else is
    assert set(covered) == set(range(0, n_frames, 2))
    assert all(len(w) == s.num_frames for w in windows_of(plan, s.num_frames))
    assert np.all(np.diff(plan.starts) > 0) and np.all(np.diff(plan.starts) <= s.window_stride)
    assert plan.starts[-1] + s.num_frames == len(plan.source_indices)  # the last window ends on the last frame
    assert not plan.stretched and plan.num_windows == clip_layout(n_frames, 25.0, s).windows


def test_windows_needed_and_encoder_frames():
    assert windows_needed(8, 8, 4) == 1
    assert windows_needed(9, 8, 4) == 2
    assert windows_needed(12, 8, 4) == 2
    assert windows_needed(13, 8, 4) == 3
    assert encoder_frames(5, 1, 8) == 5 and encoder_frames(13, 3, 8) == 24


def test_clips_beyond_max_windows_are_stretched_over_the_whole_clip():
    s = settings(max_windows=2)
    plan = plan_windows(200, 25.0, s, train=False)
    assert plan.stretched and plan.num_windows == 2
    assert plan.source_indices[0] == 0 and plan.source_indices[-1] == 199
    assert len(plan.source_indices) == s.num_frames + s.window_stride
    # one window, stretched, is the old "cover" mode: num_frames frames spread over the clip
    one = plan_windows(200, 25.0, settings(max_windows=1), train=False)
    assert len(one.source_indices) == 8 and one.source_indices[-1] == 199 and list(one.starts) == [0]


def test_truncate_reads_one_window_centred_or_random():
    s = settings(long_clips="truncate")
    centre = plan_windows(101, 25.0, s, train=False)
    assert centre.truncated and list(centre.starts) == [0] and len(centre.source_indices) == 8
    left, right = centre.source_indices[0], 100 - centre.source_indices[-1]
    assert abs(left - right) <= 2
    rng = np.random.default_rng(0)
    firsts = {int(plan_windows(60, 25.0, s, True, rng).source_indices[0]) for _ in range(200)}
    assert min(firsts) == 0 and max(firsts) >= 60 - window_span(8, 2) - 1 and len(firsts) > 10


def test_training_phase_varies_and_keeps_the_rate():
    rng = np.random.default_rng(0)
    firsts = set()
    for _ in range(50):
        plan = plan_windows(40, 25.0, settings(rate=3), True, rng)
        assert np.all(np.diff(plan.source_indices) == 3)
        firsts.add(int(plan.source_indices[0]))
    assert firsts == {0, 1, 2}


def test_a_training_plan_needs_an_rng_and_policies_are_checked():
    with pytest.raises(ValueError, match="rng"):
        plan_windows(100, 25.0, settings(), train=True)
    with pytest.raises(ValueError, match="long_clips"):
        settings(long_clips="middle")


@pytest.mark.parametrize("n_frames,fps", [(1, 25.0), (9, 25.0), (64, 25.0), (65, 25.0), (300, 30.0), (41, 12.0)])
@pytest.mark.parametrize("policy", ["stretch", "truncate"])
@pytest.mark.parametrize("train", [False, True])
def test_plans_stay_inside_the_clip(n_frames, fps, policy, train):
    s = settings(num_frames=16, stride=8, long_clips=policy)
    plan = plan_windows(n_frames, fps, s, train, np.random.default_rng(1) if train else None)
    idx = plan.source_indices
    assert idx.min() >= 0 and idx.max() < n_frames and np.all(np.diff(idx) >= 0)
    assert plan.starts[0] == 0 and plan.starts[-1] + min(16, len(idx)) <= len(idx)
