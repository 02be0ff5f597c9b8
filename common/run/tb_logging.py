"""Training logs: TensorBoard scalars and, on request, PNG training curves.

Only the main process logs; ``--nolog`` (or another rank) gets a logger that does nothing.
"""
import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)

from common.core.atomic import atomic_output  # noqa: E402

TAG_TRAIN_LOSS = 'train/loss_mm'
TAG_VAL_MPJPE = 'val/mpjpe_mm'
TAG_LR = 'train/lr'
TAG_EPOCH_TIME = 'train/epoch_time_s'


class ScalarLogger:
    """``log(tag, value, step)`` to TensorBoard event files in ``log_dir``; inert when disabled."""

    def __init__(self, log_dir, enabled: bool):
        self.writer = None
        if enabled:
            from torch.utils.tensorboard import SummaryWriter   # imported only when logging is on
            self.writer = SummaryWriter(str(log_dir))

    def text(self, tag: str, value: str):
        if self.writer is not None:
            self.writer.add_text(tag, value)

    def log(self, tag: str, value: float, step: int):
        if self.writer is not None:
            self.writer.add_scalar(tag, value, step)

    def close(self):
        if self.writer is not None:
            self.writer.close()


def export_training_curves(history: dict, path) -> None:
    """Plot training loss and validation MPJPE (mm) per epoch into a PNG."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for key, label in (('train_loss_mm', 'train (MPJPE of x0 prediction)'), ('val_mpjpe_mm', 'validation (P-Agg, H=1, K=1)')):
        values = history.get(key, [])
        if values:
            ax.plot(range(1, len(values) + 1), values, marker='o', label=label)
    ax.set_xlabel('epoch')
    ax.set_ylabel('MPJPE (mm)')
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with atomic_output(path) as f:
        fig.savefig(f, format='png')
    plt.close(fig)
