"""The ECO guard: the base model behind a prompt classifier and an embedding corruption
(Liu et al., NeurIPS 2024, arXiv 2406.07933). Nothing in the model's weights changes.

For each row of a batch the guard recovers the raw prompt, asks the classifier, and:
- unflagged rows take exactly the original path (`model(input_ids=…)` / `model.generate(
  input_ids=…)` with the caller's arguments), so their outputs are the original model's
  (in a batch that mixes both, the teacher-forced pass embeds every row by the same lookup
  the model does, and generation runs the caller's call unchanged for the unflagged rows);
- flagged rows have the input embeddings of every prompt position except the last
  corrupted, and run from `inputs_embeds`. In generation only the prompt (prefill) is
  corrupted; new tokens attend to it through the cache. A row scored teacher-forced (a
  prompt with an answer after it, or a passage) is corrupted as the guard's scoring protocol
  says (protocol.py: `prompt`, the same prompt positions, or `paper`, prompt and answer).

The guard behaves like a causal LM for the engine: `guard(input_ids=…, attention_mask=…,
labels=…)`, `guard.generate(…)` (left-padded batches, `streamer=`), `guard.parameters()`.
A caller's own decoding loop works too: the prefill call is guarded, and later calls that
carry a filled `past_key_values` pass straight through.
"""

from __future__ import annotations

import zlib

import torch

from ..base import Detached, frozen_copy
from ..batches import IGNORE
from .classifier import PromptClassifier
from .corruption import Corruption, corrupt_rows
from .prompts import PromptReader, ReadPrompt
from .protocol import PromptProtocol, ScoringProtocol


class Guard(torch.nn.Module):
    def __init__(self, model, tokenizer, classifier: PromptClassifier, corruption: Corruption,
                 strength: float, seed: int, protocol: ScoringProtocol | None = None):
        super().__init__()
        self.model = model  # the shared base model: a submodule, so parameters() and eval() reach it
        self.tokenizer = tokenizer
        self.reader = PromptReader(tokenizer)
        self.classifier = classifier
        self.corruption = corruption
        self.strength = strength
        self.seed = seed
        self.protocol = protocol or PromptProtocol()

    # --- what callers read off a causal LM
    @property
    def config(self):
        return self.model.config

    @property
    def generation_config(self):
        return self.model.generation_config

    @property
    def device(self) -> torch.device:
        return self.model.device

    @property
    def dtype(self) -> torch.dtype:
        return self.model.dtype

    # --- classification of a batch
    def _read(self, input_ids: torch.Tensor, mask: torch.Tensor) -> tuple[list[ReadPrompt], list[tuple[int, int]]]:
        """Each row's prompt and its (start, real length): padding is wherever mask is 0,
        on the left (generation) or the right (teacher forcing)."""
        reads, rows = [], []
        for ids, m in zip(input_ids.tolist(), mask.tolist()):
            start = m.index(1) if 1 in m else len(m)
            n = sum(m)
            reads.append(self.reader.read(ids[start : start + n]))
            rows.append((start, n))
        return reads, rows

    def _seeds(self, reads: list[ReadPrompt]) -> list[int]:
        # Per request, from the guard's seed and the prompt: a prompt is corrupted the same way
        # in chat, in evaluation and after save → load, whatever else is in its batch.
        return [(self.seed * 1_000_003 + zlib.crc32(r.text.encode("utf-8"))) % 2**62 for r in reads]

    def flag(self, prompt: str) -> dict:
        return self.classifier.flag(prompt)

    def flag_rate(self, prompts: list[list[int]]) -> float:
        """Share of token-id prompts the classifier flags, read the way the guard reads them."""
        flags = self.classifier.flags([self.reader.read(ids).text for ids in prompts])
        return sum(map(bool, flags)) / len(flags)

    def detached(self) -> Detached:
        """This guard around a private frozen copy of its model (base.Detached): an attack may
        change the copy's weights while the guard stays on (what ECO is judged with)."""
        plain = frozen_copy(self.model)
        guard = Guard(plain, self.tokenizer, self.classifier, self.corruption, self.strength, self.seed, self.protocol)
        return Detached(guard.eval(), plain)

    # --- teacher-forced forward (metrics)
    def forward(self, input_ids: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None, **kwargs):
        if input_ids is None or _decoding(kwargs.get("past_key_values")):
            # Own embeddings (nothing to classify), or a decode step of a caller's own loop:
            # only the prompt is corrupted, and it already sits in the cache.
            return self.model(input_ids=input_ids, attention_mask=attention_mask, labels=labels, **kwargs)
        embeds = self.corrupted_embeds(input_ids, attention_mask, labels)
        if embeds is None:
            return self.model(input_ids=input_ids, attention_mask=attention_mask, labels=labels, **kwargs)
        return self.model(inputs_embeds=embeds, attention_mask=attention_mask, labels=labels, **kwargs)

    def corrupted_embeds(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                         labels: torch.Tensor | None = None) -> torch.Tensor | None:
        """The input embeddings (B, T, d) a teacher-forced pass or a prefill runs from, every
        flagged row corrupted; None when no row is flagged (the rows then run from input_ids)."""
        mask = attention_mask if attention_mask is not None else torch.ones_like(input_ids)
        reads, rows = self._read(input_ids, mask)
        flags = self.classifier.flags([r.text for r in reads])
        if not any(flags):
            return None
        positions: list[list[int] | None] = []
        for b, (flagged, r, (start, n)) in enumerate(zip(flags, reads, rows)):
            positions.append([start + i for i in self._positions(input_ids, labels, b, start, n, r)] if flagged else None)
        embeds = self.model.get_input_embeddings()(input_ids)  # (B, T, d)
        return corrupt_rows(embeds, positions, self.corruption, self.strength, self._seeds(reads))

    @torch.no_grad()
    def prefill(self, ids: list[int]) -> torch.Tensor:
        """(T, d): the embeddings a chat prompt's prefill runs from behind the guard, as
        `forward` computes them for the prompt alone (a row of a shared batch: service/batcher.py)."""
        x = torch.tensor([ids], device=self.device)
        embeds = self.corrupted_embeds(x)
        return (self.model.get_input_embeddings()(x) if embeds is None else embeds)[0]

    def _positions(self, input_ids, labels, b: int, start: int, n: int, r: ReadPrompt) -> list[int]:
        """Positions (from the row's first real token) to corrupt in flagged row b. A row that
        is a prompt alone (a caller's own prefill) is corrupted as generation corrupts it; a
        scored row (an answer after the prompt, or a passage) as the scoring protocol says."""
        ids = input_ids[b, start : start + n].tolist()
        prompt_len, scored = self._prompt_length(ids, labels, b, start, n, r)
        return self.protocol.positions(ids, prompt_len) if scored else PromptProtocol().positions(ids, n)

    def _prompt_length(self, ids: list[int], labels, b: int, start: int, n: int, r: ReadPrompt) -> tuple[int, bool]:
        """(prompt tokens of row b, whether any of the row is scored). The prompt ends at the
        first label; a row labelled from its first token is a passage, all scored text (and
        all prompt: nothing in it is an answer to keep clean). Without labels the prompt's
        end is read from the chat template, and a row without one is a passage too."""
        if labels is not None:
            labelled = (labels[b, start : start + n] != IGNORE).nonzero()
            if len(labelled):
                first = int(labelled[0, 0])
                return (first, True) if first > 0 else (n, True)
        length = self.reader.length(ids, r)
        if not length:
            return n, True
        return min(length, n), length < n

    # --- generation (chat and metrics)
    @torch.no_grad()
    def generate(self, input_ids: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None, **kwargs):
        if input_ids is None or kwargs.get("inputs_embeds") is not None:
            return self.model.generate(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
        mask = attention_mask if attention_mask is not None else torch.ones_like(input_ids)
        reads, rows = self._read(input_ids, mask)
        flags = torch.tensor(self.classifier.flags([r.text for r in reads]))
        if not flags.any():
            return self.model.generate(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
        if flags.all():
            return self._corrupted_generate(input_ids, mask, reads, rows, **kwargs)
        # A mixed batch: the caller's exact call, then the flagged rows again from corrupted
        # embeddings. Generating those rows twice keeps the unflagged ones bit-identical to the
        # original (same batch, same shapes); batches mix only when a user mixes them.
        plain = self.model.generate(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
        hit = flags.nonzero()[:, 0]
        corrupted = self._corrupted_generate(input_ids[hit], mask[hit], [reads[i] for i in hit],
                                             [rows[i] for i in hit], **kwargs)
        return self._overwrite(plain, hit, corrupted, self._pad_id(kwargs))

    def _corrupted_generate(self, input_ids, mask, reads, rows, **kwargs):
        """Generate from corrupted prompt embeddings. input_ids are passed too, so the output
        starts with the prompt like a plain call's and a streamer skips it as usual."""
        positions = [list(range(start, start + n - 1)) for start, n in rows]  # every real position but the last
        embeds = self.model.get_input_embeddings()(input_ids)  # (B, T, d)
        embeds = corrupt_rows(embeds, positions, self.corruption, self.strength, self._seeds(reads))
        return self.model.generate(input_ids=input_ids, inputs_embeds=embeds, attention_mask=mask, **kwargs)

    def _pad_id(self, kwargs: dict) -> int:
        for pad in (kwargs.get("pad_token_id"), self.model.generation_config.pad_token_id,
                    self.tokenizer.pad_token_id, self.tokenizer.eos_token_id):
            if pad is not None:
                return int(pad)
        return 0

    @staticmethod
    def _overwrite(plain: torch.Tensor, rows: torch.Tensor, corrupted: torch.Tensor, pad: int) -> torch.Tensor:
        """plain (B, L1) with `rows` replaced by corrupted (len(rows), L2), right-padded to max(L1, L2)."""
        width = max(plain.shape[1], corrupted.shape[1])
        merged = torch.full((plain.shape[0], width), pad, dtype=plain.dtype, device=plain.device)
        merged[:, : plain.shape[1]] = plain
        merged[rows.to(merged.device)] = pad
        merged[rows.to(merged.device), : corrupted.shape[1]] = corrupted
        return merged


def _decoding(cache) -> bool:
    """True when a KV cache already holds tokens: a decode step, not a prompt."""
    if cache is None:
        return False
    length = getattr(cache, "get_seq_length", None)
    return bool(length()) if callable(length) else len(cache) > 0
