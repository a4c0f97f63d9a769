"""Every limit the engine enforces, in one place (the UI and the CLI quote these)."""

MAX_FILE_BYTES = 20 * 1024 * 1024  # one uploaded forget/retain file
MAX_EXAMPLES = 20_000  # QA pairs or passages in one file
MAX_FIELD_CHARS = 20_000  # one question, answer or passage before chunking
MAX_LINE_CHARS = 200_000  # one JSONL line
MAX_TOKENS = 512  # tokens per training/eval example; longer passages are chunked
MAX_STEPS = 5_000  # unlearning or teaching steps in one run
MAX_RANK = 64  # LoRA rank
MAX_NEW_TOKENS = 256  # one generated reply
