"""FinePOSE itself: tokenizer and CLIP text tower, fine-grained prompts, the denoiser, the diffusion
process, the model configuration and the official checkpoints' conversion.

May import: common.core, common.data, common.synthetic and itself.
"""
