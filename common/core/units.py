"""Units. Inside the model and the data pipeline everything is in metres; millimetres only at the edges."""

MM_PER_M = 1000.0
