"""FPP: fine-grained part-aware prompts.

A prompt is a fixed sequence of segments filling CLIP's 77-token context. Each segment is
``n`` learnable vectors followed by the first ``WORD_TOKENS_KEPT`` token embeddings of its
words (start-of-text, the words, end-of-text, padding). Human3.6M uses seven segments:
subject ("A person"), the clip's action label ("Walking"), speed, head, body, arm, leg with
3, 8, 6, 6, 6, 10, 10 learnable vectors; MPI-INF-3DHP has no action label and uses six segments
with 5, 8, 8, 8, 12, 12. The sequence runs through CLIP's frozen text transformer, a trainable
4-layer transformer encoder and a LayerNorm -> prompt tokens; one token, projected to the pose
width, is the pooled prompt embedding used by PTS.

Unlike the reference, gradients flow through the frozen CLIP into the learnable vectors (its
weights are frozen, its activations are not detached), so the prompts really train;
``frozen_prompts=True`` reproduces the reference, where they never receive a gradient.
"""
from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn

from common.model.clip_text import CLIPTextTower
from common.model.tokenizer import get_tokenizer

WORD_TOKENS_KEPT = 4
PROMPT_VECTOR_INIT_STD = 0.02
ENCODER_LAYERS = 4
ENCODER_FF_RATIO = 4


@dataclass(frozen=True)
class PromptSegment:
    name: str
    text: Optional[str]     # fixed words, or None for the clip's action label
    num_learnable: int


@dataclass(frozen=True)
class PromptLayout:
    """Segments of a prompt and the token whose encoding is pooled.

    pooled_token: 'action_end' takes the position of the end-of-text token in the action
    label's own tokenisation (2 for a one-token word), as the reference does; note that this
    indexes the concatenated prompt, where that position lies in the subject segment.
    'last' takes the final token (76).
    """
    name: str
    segments: tuple
    pooled_token: str

    @property
    def has_action(self) -> bool:
        return any(s.text is None for s in self.segments)

    @property
    def length(self) -> int:
        return sum(s.num_learnable + WORD_TOKENS_KEPT for s in self.segments)


H36M_LAYOUT = PromptLayout('h36m', (
    PromptSegment('subject', 'A person', 3),
    PromptSegment('action', None, 8),
    PromptSegment('speed', 'speed', 6),
    PromptSegment('head', 'head', 6),
    PromptSegment('body', 'body', 6),
    PromptSegment('arm', 'arm', 10),
    PromptSegment('leg', 'leg', 10),
), pooled_token='action_end')

MPI_INF_3DHP_LAYOUT = PromptLayout('mpi_inf_3dhp', (
    PromptSegment('subject', 'A person', 5),
    PromptSegment('speed', 'speed', 8),
    PromptSegment('head', 'head', 8),
    PromptSegment('body', 'body', 8),
    PromptSegment('arm', 'arm', 12),
    PromptSegment('leg', 'leg', 12),
), pooled_token='last')

LAYOUTS = {'h36m': H36M_LAYOUT, 'mpi_inf_3dhp': MPI_INF_3DHP_LAYOUT}


@dataclass
class EncodedPrompts:
    """Prompts of a batch, each distinct prompt encoded once.

    tokens: (U, L, D_text) prompt tokens of the U distinct prompts; pooled: (U, C) pooled
    embeddings at the pose width; index: (B,) long, row of each clip's prompt.
    """
    tokens: torch.Tensor
    pooled: torch.Tensor
    index: torch.Tensor

    def repeat(self, times: int) -> 'EncodedPrompts':
        """Prompts for a batch made of ``times`` consecutive copies of the original batch."""
        return EncodedPrompts(self.tokens, self.pooled, self.index.repeat(times))

    def repeat_interleave(self, times: int) -> 'EncodedPrompts':
        """Prompts for a batch where every clip is repeated ``times`` times in a row (hypotheses)."""
        return EncodedPrompts(self.tokens, self.pooled, self.index.repeat_interleave(times))

    def rows(self, start: int, stop: int) -> 'EncodedPrompts':
        """Prompts for the clips start .. stop - 1 of the batch."""
        return EncodedPrompts(self.tokens, self.pooled, self.index[start:stop])


class FinePromptEncoder(nn.Module):
    """Action tokens (B, L) -> ``EncodedPrompts``."""

    def __init__(self, layout: PromptLayout, text_tower: CLIPTextTower, pose_width: int,
                 heads: int = 8, frozen_prompts: bool = False):
        super().__init__()
        width = text_tower.config.width
        if layout.length != text_tower.config.context_length:
            raise ValueError(f'prompt layout {layout.name} has {layout.length} tokens, '
                             f'CLIP context is {text_tower.config.context_length}')
        self.layout = layout
        self.frozen_prompts = frozen_prompts
        self.text_tower = text_tower
        self.learnable = nn.ParameterDict({
            s.name: nn.Parameter(torch.randn(s.num_learnable, width) * PROMPT_VECTOR_INIT_STD)
            for s in layout.segments})
        layer = nn.TransformerEncoderLayer(width, heads, dim_feedforward=ENCODER_FF_RATIO * width, dropout=0.0,
                                           activation='gelu', batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, ENCODER_LAYERS, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        self.pooled_proj = nn.Linear(width, pose_width)
        fixed = [s.text for s in layout.segments if s.text is not None]
        self.register_buffer('word_tokens', get_tokenizer().tokenize(fixed)[:, :WORD_TOKENS_KEPT], persistent=False)

    def _clip_inputs(self, action_tokens):
        """(U, L) action tokens -> (U, L_prompt, D) embeddings fed to CLIP."""
        u = action_tokens.shape[0]
        embed = self.text_tower.token_embedding
        words = embed(self.word_tokens)                                  # (S_fixed, 4, D)
        action_words = embed(action_tokens[:, :WORD_TOKENS_KEPT])        # (U, 4, D)
        parts, fixed_i = [], 0
        for segment in self.layout.segments:
            parts.append(self.learnable[segment.name].expand(u, -1, -1))
            if segment.text is None:
                parts.append(action_words)
            else:
                parts.append(words[fixed_i].expand(u, -1, -1))
                fixed_i += 1
        return torch.cat(parts, dim=1)

    def _pooled_position(self, action_tokens):
        if self.layout.pooled_token == 'action_end':
            return action_tokens.argmax(dim=-1)
        return torch.full_like(action_tokens[:, 0], self.layout.length - 1)

    def forward(self, action_tokens) -> EncodedPrompts:
        """action_tokens: (B, L) long CLIP tokens of each clip's action label (``tokenize("")``
        when unknown; ignored by layouts without an action segment)."""
        if self.layout.has_action:
            unique, index = torch.unique(action_tokens, dim=0, return_inverse=True)
        else:
            unique, index = action_tokens[:1], torch.zeros_like(action_tokens[:, 0])
        x = self._clip_inputs(unique)
        if self.frozen_prompts:
            with torch.no_grad():
                x = self.text_tower.encode_embeddings(x)
        else:
            x = self.text_tower.encode_embeddings(x)
        x = self.norm(self.encoder(x))
        pooled = self.pooled_proj(x[torch.arange(x.shape[0], device=x.device), self._pooled_position(unique)])
        return EncodedPrompts(tokens=x, pooled=pooled, index=index)
