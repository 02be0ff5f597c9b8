"""What an entry point runs: flags, devices, the training loop, checkpoints, TensorBoard logging, the
experiment flow of main.py / main_3dhp.py, inference on one sequence, rendering and the demo.

May import: common.core, common.data, common.synthetic, common.model, common.evaluation and itself.
"""
