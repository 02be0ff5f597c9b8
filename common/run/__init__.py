"""What main.py and main_3dhp.py run: flags, devices, the training loop, checkpoints, TensorBoard logging, the
Human3.6M and MPI-INF-3DHP experiments and their shared flow, inference on one sequence, rendering and pose export.

May import: common.core, common.data, common.synthetic, common.model, common.evaluation and itself.
"""
