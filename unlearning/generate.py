"""Chat formatting and generation: batched greedy answers and a streaming reply.

One prompt format everywhere (teaching, unlearning, evaluation, chat, attacks): the
tokenizer's chat template when it has one (with the system prompt the template itself puts
in, e.g. Qwen's; never one of ours, which Gemma's template refuses), otherwise
`Question: …\nAnswer:`. `prompt_ids` and `answer_ids` are the two halves of every QA
sequence; `adopt_conventions` makes a loaded tokenizer end an answer where its template ends
the assistant's turn.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

import torch

from .limits import CHAT_NEW_TOKENS, MAX_NEW_TOKENS

PLAIN_FORMAT = "Question: {question}\nAnswer:"
TURN_MARKER = "STUDIOANSWERMARKER"
# Passed to every template; templates read the variables they know (Qwen3: answer, not think first).
TEMPLATE_KWARGS = {"enable_thinking": False}


def templated(tokenizer) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def format_prompt(tokenizer, question: str) -> str:
    """The text the model sees before its answer."""
    if templated(tokenizer):
        return tokenizer.apply_chat_template(
            [{"role": "user", "content": question}], tokenize=False, add_generation_prompt=True, **TEMPLATE_KWARGS
        )
    return PLAIN_FORMAT.format(question=question.strip())


def prompt_ids(tokenizer, question: str) -> list[int]:
    """Token ids of the formatted prompt (BOS included when the tokenizer has one)."""
    return text_ids(tokenizer, format_prompt(tokenizer, question))


def text_ids(tokenizer, text: str) -> list[int]:
    """Token ids of a prompt already in its final form, BOS first when the tokenizer has one
    (once: a template that writes its own BOS, Gemma's or Llama 3's, keeps just that one)."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    bos = tokenizer.bos_token_id
    return ([bos] if bos is not None and (not ids or ids[0] != bos) else []) + ids


def answer_ids(tokenizer, answer: str) -> list[int]:
    """The answer's tokens as they follow the prompt, then EOS (after `adopt_conventions`, the
    template's end of turn). After `Answer:` a space separates them; a template's assistant
    turn starts on its own line, so there the answer starts at once."""
    text = answer.strip() if templated(tokenizer) else " " + answer.strip()
    return tokenizer(text, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]


def end_of_turn(tokenizer) -> int | None:
    """The special token a chat template closes the assistant's turn with (ChatML's
    <|im_end|>, Gemma's <end_of_turn>, Phi-3's <|end|>), None without a template or when the
    template closes it with plain text."""
    if not templated(tokenizer):
        return None
    turns = [{"role": "user", "content": "Q"}, {"role": "assistant", "content": TURN_MARKER}]
    try:
        text = tokenizer.apply_chat_template(turns, tokenize=False, **TEMPLATE_KWARGS)
    except Exception:  # noqa: BLE001  jinja's TemplateError, or what a template raises: keep the tokenizer's EOS
        return None
    if TURN_MARKER not in text:
        return None
    ids = tokenizer(text.rpartition(TURN_MARKER)[2], add_special_tokens=False)["input_ids"]
    special = set(tokenizer.all_special_ids) | {i for i, t in tokenizer.added_tokens_decoder.items() if t.special}
    return ids[0] if ids and ids[0] in special else None


def adopt_conventions(tokenizer) -> None:
    """What the Studio assumes of a tokenizer, made true in place: EOS is the token that ends an
    answer (a template's end of turn, where that is not EOS: Gemma, Phi-3, a base model's ChatML),
    so training appends it and generation stops at it; and there is a pad token (EOS where the
    tokenizer has none, GPT-2's case). Padding side does not matter: the Studio pads its own
    batches (left for generation, right for training)."""
    turn = end_of_turn(tokenizer)
    if turn is not None and turn != tokenizer.eos_token_id:
        tokenizer.eos_token = tokenizer.convert_ids_to_tokens(turn)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token


def _left_padded(tokenizer, id_lists: list[list[int]], device) -> tuple[torch.Tensor, torch.Tensor]:
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    T = max(len(x) for x in id_lists)
    ids = torch.full((len(id_lists), T), pad, dtype=torch.long)
    mask = torch.zeros((len(id_lists), T), dtype=torch.long)
    for i, x in enumerate(id_lists):
        ids[i, T - len(x) :] = torch.tensor(x)
        mask[i, T - len(x) :] = 1
    return ids.to(device), mask.to(device)


@torch.no_grad()
def generate_ids(
    model, tokenizer, id_lists: list[list[int]], max_new_tokens: int = 32, batch_size: int = 32
) -> list[list[int]]:
    """Greedy continuations of token-id prompts, batched with left padding; EOS and what
    follows it are dropped."""
    out: list[list[int]] = []
    device = next(model.parameters()).device
    eos = tokenizer.eos_token_id
    for i in range(0, len(id_lists), batch_size):
        ids, mask = _left_padded(tokenizer, id_lists[i : i + batch_size], device)
        gen = model.generate(
            input_ids=ids,
            attention_mask=mask,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos,
            eos_token_id=eos,
        )[:, ids.shape[1] :]
        for row in gen.tolist():
            out.append(row[: row.index(eos)] if eos in row else row)
    return out


def generate_answers(model, tokenizer, questions: list[str], max_new_tokens: int = 32, batch_size: int = 32) -> list[str]:
    """Greedy answers to questions, in the project's prompt format."""
    rows = generate_ids(model, tokenizer, [prompt_ids(tokenizer, q) for q in questions], max_new_tokens, batch_size)
    return [tokenizer.decode(r, skip_special_tokens=True).strip() for r in rows]


def reply_tokens(asked: int | None) -> int:
    """New tokens for one chat reply: what was asked, else the chat default; never past the limit."""
    return min(CHAT_NEW_TOKENS if asked is None else asked, MAX_NEW_TOKENS)


@torch.no_grad()
def greedy_tokens(forward, prompt: list[int], eos: int, max_new_tokens: int | None = None, device: str = "cpu") -> Iterator[int]:
    """Greedy decoding one token at a time with a KV cache, calling `forward(**kwargs)` for
    each step. `forward` is looked up per step, so a caller can switch the view (adapters, an
    ECO guard) between steps and decode two views of one base model side by side. The
    first call is the prefill (no cache); later calls carry `past_key_values`."""
    ids = torch.tensor([prompt], device=device)
    kwargs = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "use_cache": True}
    length = len(prompt)
    for _ in range(reply_tokens(max_new_tokens)):
        out = forward(**kwargs)
        token = int(out.logits[0, -1].argmax())
        if token == eos:
            return
        yield token
        length += 1
        kwargs = {"input_ids": torch.tensor([[token]], device=device),
                  "attention_mask": torch.ones((1, length), dtype=torch.long, device=device),
                  "past_key_values": out.past_key_values, "use_cache": True}


@torch.no_grad()
def batched_greedy(step: Callable[[], AbstractContextManager], embeds: list[torch.Tensor], eos: int, pad: int,
                   max_new: list[int], alive: list[bool]) -> Iterator[list[int | None]]:
    """Greedy decoding of several prompts at once, each from its own input embeddings
    (T_i, d), left-padded into one batch with one KV cache; each row has its own positions
    and its padding is masked, so it decodes as `greedy_tokens` decodes it alone (to float
    rounding). `step()` is entered around each forward and yields the model (the chat
    batcher takes the base's lock there and puts each row's adapters on). After each step,
    yields every row's new token, None for a row that has ended: EOS, `max_new[i]` tokens,
    or `alive[i]` set False by the caller between steps."""
    b, t = len(embeds), max(e.shape[0] for e in embeds)
    x = embeds[0].new_zeros((b, t, embeds[0].shape[-1]))  # (B, T, d)
    mask = torch.zeros((b, t), dtype=torch.long, device=x.device)
    for i, e in enumerate(embeds):
        x[i, t - e.shape[0] :], mask[i, t - e.shape[0] :] = e, 1
    kwargs = {"inputs_embeds": x, "attention_mask": mask, "position_ids": (mask.cumsum(-1) - 1).clamp(min=0), "use_cache": True}
    position, produced = mask.sum(-1), [0] * b  # (B,): the next token's position in each row
    for i, n in enumerate(max_new):
        alive[i] = alive[i] and n > 0
    while any(alive):
        with step() as model:
            out = model(**kwargs)
        new: list[int | None] = []
        for i, token in enumerate(out.logits[:, -1].argmax(-1).tolist()):
            alive[i] = alive[i] and token != eos
            new.append(token if alive[i] else None)
            produced[i] += alive[i]
            alive[i] = alive[i] and produced[i] < max_new[i]
        yield new
        mask = torch.cat([mask, mask.new_ones((b, 1))], dim=1)
        feed = torch.tensor([[pad if token is None else token] for token in new], device=x.device)
        kwargs = {"input_ids": feed, "attention_mask": mask, "position_ids": position[:, None],
                  "past_key_values": out.past_key_values, "use_cache": True}
        position = position + 1


def reply_texts(forward, tokenizer, ids: list[int], max_new_tokens: int | None = None, device: str = "cpu") -> Iterator[str]:
    """The reply to prompt token ids `ids` as it grows: after each greedy token (see
    `greedy_tokens`), the text of every token so far, special tokens dropped, stripped.
    Decoding the whole list each time, not piece by piece, keeps characters that span
    tokens whole. The CLI's chat and the app's chat both stream through this."""
    tokens: list[int] = []
    for token in greedy_tokens(forward, ids, tokenizer.eos_token_id, max_new_tokens, device):
        tokens.append(token)
        yield tokenizer.decode(tokens, skip_special_tokens=True).strip()
