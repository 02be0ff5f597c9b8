"""Units. Inside the model and the data pipeline everything is in metres; millimetres (metrics) and
centimetres (BVH animations) only at the edges. Frame rates are in frames per second (fps)."""

MM_PER_M = 1000.0
CM_PER_M = 100.0
# The fastest frame rate a video or keypoint file may state: faster than the high-speed cameras pose
# detectors are run on, and a BVH's Frame Time (written to 1e-8 s) still holds it to 4 digits.
MAX_FPS = 10_000.0
