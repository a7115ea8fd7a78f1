"""Temporal smoothing for live sources: track boxes across frames and vote over the last K.

Each detection is associated with a track from the previous frames (greedy, highest
IoU first; a centroid-distance fallback catches small boxes that moved a little). A
track keeps the probability vectors of its last K frames; the smoothed output is
their mean (probability averaging), so a digit's label does not flicker when one
frame is ambiguous. Tracks not seen for ``max_missed`` frames are dropped.

Off for image folders and single images (each image is independent).
"""

from collections import deque

import numpy as np


def iou(a, b):
    """Intersection over union of two (x, y, w, h) boxes."""
    ax2, ay2 = a[0] + a[2], a[1] + a[3]
    bx2, by2 = b[0] + b[2], b[1] + b[3]
    iw = min(ax2, bx2) - max(a[0], b[0])
    ih = min(ay2, by2) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = float(iw) * float(ih)
    union = float(a[2]) * float(a[3]) + float(b[2]) * float(b[3]) - inter
    return inter / union if union > 0 else 0.0


def centroid_distance(a, b):
    """Distance of the box centres relative to the larger box's diagonal."""
    dx = (a[0] + a[2] / 2.0) - (b[0] + b[2] / 2.0)
    dy = (a[1] + a[3] / 2.0) - (b[1] + b[3] / 2.0)
    scale = max(np.hypot(a[2], a[3]), np.hypot(b[2], b[3]), 1.0)
    return float(np.hypot(dx, dy) / scale)


class Track(object):
    __slots__ = ("track_id", "box", "history", "missed")

    def __init__(self, track_id, box, probs, window):
        self.track_id = track_id
        self.box = tuple(box)
        self.history = deque([probs], maxlen=window)
        self.missed = 0

    def mean(self):
        return np.mean(np.stack(self.history), axis=0)


class TemporalSmoother(object):
    """update(boxes, probs) -> (smoothed probs [N, C], track ids [N]) in the input order."""

    def __init__(self, window=5, min_iou=0.3, max_centroid=0.5, max_missed=3):
        if window < 1:
            raise ValueError("window must be >= 1")
        self.window = int(window)
        self.min_iou = float(min_iou)
        self.max_centroid = float(max_centroid)
        self.max_missed = int(max_missed)
        self.tracks = []
        self._next_id = 0

    def reset(self):
        self.tracks = []

    def _associate(self, boxes):
        """Greedy matching: list of (det index, track index)."""
        pairs = []
        for di, box in enumerate(boxes):
            for ti, track in enumerate(self.tracks):
                overlap = iou(box, track.box)
                if overlap >= self.min_iou:
                    pairs.append((overlap, di, ti))
                else:
                    dist = centroid_distance(box, track.box)
                    if dist <= self.max_centroid:
                        # rank centroid matches below any IoU match
                        pairs.append((-dist, di, ti))
        pairs.sort(key=lambda p: p[0], reverse=True)
        used_d, used_t, matches = set(), set(), []
        for _, di, ti in pairs:
            if di in used_d or ti in used_t:
                continue
            used_d.add(di)
            used_t.add(ti)
            matches.append((di, ti))
        return matches

    def update(self, boxes, probs):
        probs = np.asarray(probs, dtype=np.float32)
        n = len(boxes)
        if n:
            out = np.array(probs, dtype=np.float32, copy=True).reshape(n, -1)
        else:
            out = np.zeros((0, probs.shape[-1] if probs.ndim == 2 else 0), np.float32)
        ids = [-1] * n
        matches = self._associate(boxes) if n else []
        matched_tracks = set()
        for di, ti in matches:
            track = self.tracks[ti]
            track.box = tuple(boxes[di])
            track.history.append(probs[di])
            track.missed = 0
            out[di] = track.mean()
            ids[di] = track.track_id
            matched_tracks.add(ti)
        for ti, track in enumerate(self.tracks):
            if ti not in matched_tracks:
                track.missed += 1
        self.tracks = [t for t in self.tracks if t.missed <= self.max_missed]
        matched_d = set(di for di, _ in matches)
        for di in range(n):
            if di not in matched_d:
                track = Track(self._next_id, boxes[di], probs[di], self.window)
                self._next_id += 1
                self.tracks.append(track)
                ids[di] = track.track_id
        return out, ids
