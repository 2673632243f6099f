"""``TrainingError``, in a module of its own so that every training module can raise it without
importing another one."""


class TrainingError(RuntimeError):
    """Training cannot start or finish; the message names the cause."""
