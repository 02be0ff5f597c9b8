"""Units. Inside the model and the data pipeline everything is in metres; millimetres (metrics) and
centimetres (BVH animations) only at the edges."""

MM_PER_M = 1000.0
CM_PER_M = 100.0
