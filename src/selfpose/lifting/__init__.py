"""Lifting 2D keypoints to 3D: data, noise models, lifters."""
