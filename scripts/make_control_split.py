#!/usr/bin/env python
"""Write a control split whose captions are paired with the wrong videos.

    python scripts/make_control_split.py --data DATA_ROOT --split test --out-split test_swapped [--seed 0]

Every row of DATA_ROOT/<split>.tsv keeps its id and caption but gets the
video (and n_frames, fps) of another row: a derangement in which no row keeps
its own video, gets the same video file under another id, or gets the video
of a row with the same caption (compared after whitespace collapsing and
lower-casing). A model that reads the video should score far worse on this
split than on the real one; one that scores about the same is ignoring the
video and translating from its language model alone.

The extra column ``video_from`` names the row each video was taken from.
With ``--features STORE`` (a feature store of the data root: video features or keypoints), the
store gets the control split too: each row's sequence is its donor row's.
"""

import argparse
import os
import random
import sys
from collections import Counter
from pathlib import Path
from typing import List, Sequence

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from ssvp_slt.corpus.manifest import PREPARED_COLUMNS, VIDEO_INFO_COLUMNS, ManifestError, read_manifest, write_manifest  # noqa: E402
from ssvp_slt.corpus.text import normalize_caption  # noqa: E402

SOURCE_COLUMN = "video_from"


class ControlSplitError(ValueError):
    pass


def conflict_groups(captions: Sequence[str], videos: Sequence[str]) -> List[int]:
    """Group label per row: rows sharing a caption or a video file are (transitively) in one group.

    A row may only get the video of a row from another group.
    """
    parent = list(range(len(captions)))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for keys in (
        [normalize_caption(c, lowercase=True) for c in captions],
        [os.path.normpath(v) for v in videos],
    ):
        first = {}
        for i, k in enumerate(keys):
            if k in first:
                parent[find(i)] = find(first[k])
            else:
                first[k] = i
    return [find(i) for i in range(len(captions))]


def control_permutation(captions: Sequence[str], videos: Sequence[str], seed: int = 0) -> List[int]:
    """perm[i] = the row whose video row i gets; perm[i] is never in row i's conflict group."""
    n = len(captions)
    if n < 2:
        raise ControlSplitError(f"need at least 2 rows to swap videos, got {n}")
    group = conflict_groups(captions, videos)
    sizes = Counter(group)
    largest = max(sizes.values())
    if 2 * largest > n:
        raise ControlSplitError(
            f"{largest} of {n} rows share a caption or video (directly or through each other), so they cannot all "
            f"get a video from a row with a different caption"
        )
    rng = random.Random(seed)
    # Lay the groups out contiguously (random group order, random order inside each) and give
    # every position the video `largest` positions further on: since no group is longer than
    # `largest` and largest <= n - largest, no position lands in its own group.
    members = {}
    for i, g in enumerate(group):
        members.setdefault(g, []).append(i)
    groups = list(members.values())
    rng.shuffle(groups)
    order = []
    for g in groups:
        rng.shuffle(g)
        order.extend(g)
    perm = [0] * n
    for k, i in enumerate(order):
        perm[i] = order[(k + largest) % n]
    # then mix with random swaps that keep the constraint, so the pairing is not a fixed shift
    for _ in range(10 * n):
        i, j = rng.randrange(n), rng.randrange(n)
        if i != j and group[i] != group[perm[j]] and group[j] != group[perm[i]]:
            perm[i], perm[j] = perm[j], perm[i]
    assert all(group[i] != group[perm[i]] for i in range(n))
    assert sorted(perm) == list(range(n))
    return perm


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, type=Path, help="data root")
    parser.add_argument("--split", default="test", help="split to take captions and videos from (default: test)")
    parser.add_argument("--out-split", required=True, help="name of the control split to write")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--features", type=Path, help="feature store: also write the control split there (donors' sequences)")
    args = parser.parse_args(argv)

    if args.out_split == args.split:
        print(f"error: --out-split must differ from --split ({args.split})", file=sys.stderr)
        return 1
    try:
        manifest = read_manifest(args.data / f"{args.split}.tsv", need_text=True)
        rows = manifest.rows
        perm = control_permutation([r.tgt_text for r in rows], [r.video for r in rows], seed=args.seed)
    except (ManifestError, ControlSplitError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    out_rows = []
    for row, j in zip(rows, perm):
        donor = rows[j]
        out_rows.append(
            {
                "id": row.id,
                "video": donor.video,
                "n_frames": donor.n_frames,
                "fps": donor.fps,
                # the video's recorded facts travel with it (loading checks file_size against the file)
                **{c: getattr(donor, c) or "" for c in VIDEO_INFO_COLUMNS},
                "tgt_text": row.tgt_text,
                SOURCE_COLUMN: donor.id,
            }
        )
    out_path = write_manifest(args.data / f"{args.out_split}.tsv", out_rows, columns=PREPARED_COLUMNS + (SOURCE_COLUMN,))
    print(f"{out_path}: {len(out_rows)} rows of {manifest.path} with captions paired to other rows' videos (seed {args.seed})")
    if args.features:
        from ssvp_slt.features.store import FeatureStoreError, copy_clips

        try:
            n = copy_clips(args.features, args.split, args.out_split, [(r["id"], r[SOURCE_COLUMN]) for r in out_rows], tag="control")
        except FeatureStoreError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        print(f"{args.features / args.out_split}: {n} clips, each with its donor row's features")
    return 0


if __name__ == "__main__":
    sys.exit(main())
