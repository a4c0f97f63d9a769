"""The LoRA methods' machinery: the training loop and its step strategies, the adapters and FILA's
initialisation, the losses, the stopping rule, and the blocks they add to a report."""
