"""FPP: fine-grained part-aware prompts.

A prompt is a fixed sequence of segments filling CLIP's 77-token context. Each segment is
``n`` learnable vectors followed by the first ``WORD_TOKENS_KEPT`` token embeddings of its
words (start-of-text, the words, end-of-text, padding). Human3.6M uses seven segments:
subject ("A person"), the clip's action label ("Walking"), speed, head, body, arm, leg with
3, 8, 6, 6, 6, 10, 10 learnable vectors; MPI-INF-3DHP has no action label and uses six segments
with 5, 8, 8, 8, 12, 12. The sequence runs through CLIP's frozen text transformer, a trainable
4-layer transformer encoder and a LayerNorm -> prompt tokens; one token, projected to the pose
width, is the pooled prompt embedding used by PTS.

By default, as in the reference, CLIP runs under ``no_grad``, so the learnable vectors never
receive a gradient and keep their initial values (the published models were trained so).
``learn_prompts=True`` (``--learn-prompts``) lets gradients flow through the frozen CLIP into
them (its weights stay frozen, its activations are not detached), so the prompts really train.

Which prompt FPC attends to (``EncodedPrompts.attended``): the reference's denoiser tiles the
prompt keys and values of a batch of B clips over its flattened (clip, joint) rows with
``repeat``, so row k * J + j (sample k, joint j; J joints) attends to the prompt of clip
(k * J + j) mod B, not necessarily its own (``batch_mixing_sources``). With H hypotheses per
clip (sampling) sample k is clip k // H's hypothesis k mod H. Its pooled embedding (PTS) and the
stylisation stay each clip's own. Evaluation batches hold windows of one sequence, so there the
mixing changes nothing; in training it does whenever a batch holds several actions.
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


def batch_mixing_sources(num_clips: int, num_joints: int, hypotheses: int = 1) -> torch.Tensor:
    """(B*H, J) long: the position in the batch of the clip whose prompt sample k's joint j attends
    to in FPC under the reference's batched mixing, (k * J + j) mod B, for B clips whose H
    hypotheses are consecutive samples (training: H = 1). E.g. B = 2, J = 3: [[0, 1, 0], [1, 0, 1]]."""
    rows = torch.arange(num_clips * hypotheses * num_joints).view(num_clips * hypotheses, num_joints)
    return rows % num_clips


def _unless_own(attended: torch.Tensor, index: torch.Tensor) -> Optional[torch.Tensor]:
    """``attended`` (N, J), or None when every row attends to its own sample's prompt."""
    return None if torch.equal(attended, index[:, None].expand_as(attended)) else attended


@dataclass
class EncodedPrompts:
    """Prompts of a batch, each distinct prompt encoded once.

    tokens: (U, L, D_text) prompt tokens of the U distinct prompts; pooled: (U, C) pooled
    embeddings at the pose width; index: (N,) long, row of each sample's own prompt (its pooled
    embedding drives PTS); attended: (N, J) long, the prompt row each (sample, joint) attends to
    in FPC, or None when each sample attends to its own (``index``).
    """
    tokens: torch.Tensor
    pooled: torch.Tensor
    index: torch.Tensor
    attended: Optional[torch.Tensor] = None

    def _with(self, index, attended) -> 'EncodedPrompts':
        return EncodedPrompts(self.tokens, self.pooled, index, attended)

    def repeat(self, times: int) -> 'EncodedPrompts':
        """Prompts for a batch made of ``times`` consecutive copies of the original batch."""
        return self._with(self.index.repeat(times), None if self.attended is None else self.attended.repeat(times, 1))

    def repeat_interleave(self, times: int) -> 'EncodedPrompts':
        """Prompts for a batch where every sample is repeated ``times`` times in a row, each copy
        attending where the sample did."""
        return self._with(self.index.repeat_interleave(times),
                          None if self.attended is None else self.attended.repeat_interleave(times, dim=0))

    def mixed_over_batch(self, num_joints: int, hypotheses: int = 1) -> 'EncodedPrompts':
        """The reference's batched mixing over this batch of B clips (own prompts, ``attended``
        None), each clip then repeated ``hypotheses`` times in a row (``batch_mixing_sources``)."""
        sources = batch_mixing_sources(len(self.index), num_joints, hypotheses).to(self.index.device)
        index = self.index.repeat_interleave(hypotheses)
        return self._with(index, _unless_own(self.index[sources], index))

    def rows(self, start: int, stop: int) -> 'EncodedPrompts':
        """Prompts for the samples start .. stop - 1 of the batch."""
        return self._with(self.index[start:stop], None if self.attended is None else self.attended[start:stop])


class FinePromptEncoder(nn.Module):
    """Action tokens (B, L) -> ``EncodedPrompts``."""

    def __init__(self, layout: PromptLayout, text_tower: CLIPTextTower, pose_width: int,
                 heads: int = 8, learn_prompts: bool = False):
        super().__init__()
        width = text_tower.config.width
        if layout.length != text_tower.config.context_length:
            raise ValueError(f'prompt layout {layout.name} has {layout.length} tokens, '
                             f'CLIP context is {text_tower.config.context_length}')
        self.layout = layout
        self.learn_prompts = learn_prompts
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

    def forward(self, action_tokens, attended_tokens=None) -> EncodedPrompts:
        """action_tokens: (B, L) long CLIP tokens of each clip's action label (``tokenize("")``
        when unknown; ignored by layouts without an action segment). attended_tokens: (B, J, L),
        the action tokens of the prompt each joint of each clip attends to in FPC (training's
        mixing, computed over the global batch: ``PoseDiffusion.fpc_prompt_tokens``), or None
        for its own prompt."""
        b = action_tokens.shape[0]
        if not self.layout.has_action:
            unique, index, attended = action_tokens[:1], torch.zeros_like(action_tokens[:, 0]), None
        elif attended_tokens is None:
            unique, index = torch.unique(action_tokens, dim=0, return_inverse=True)
            attended = None
        else:
            every = torch.cat([action_tokens, attended_tokens.flatten(0, 1)])
            unique, inverse = torch.unique(every, dim=0, return_inverse=True)
            index = inverse[:b]
            attended = _unless_own(inverse[b:].view(b, -1), index)
        x = self._clip_inputs(unique)
        with torch.set_grad_enabled(self.learn_prompts and torch.is_grad_enabled()):
            x = self.text_tower.encode_embeddings(x)
        x = self.norm(self.encoder(x))
        pooled = self.pooled_proj(x[torch.arange(x.shape[0], device=x.device), self._pooled_position(unique)])
        return EncodedPrompts(tokens=x, pooled=pooled, index=index, attended=attended)
