"""FinePOSE: fine-grained prompt-driven 3D human pose estimation with diffusion models."""
