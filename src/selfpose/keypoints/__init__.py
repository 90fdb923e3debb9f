"""2D keypoints from real video: the optional offline detector, calibration files, multi-view triangulation.

Keypoint *files* (the format every 2D source writes and ``prepare videos
--keypoints`` reads) live in :mod:`selfpose.data.datasets.keypoints`.
"""
