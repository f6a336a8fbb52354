"""The errors a user can cause (one line, exit 2) and the ways a run stops early.

The CLI prints each of them on one line: UsageError exits 2; RunFailed 1 (the input was valid,
but the run could not go on: TrainingDiverged, OutOfMemory); Interrupted 128 + the signal's
number (130 for SIGINT, 143 for SIGTERM), as shells report a process killed by that signal.
"""


class UsageError(Exception):
    """Bad input from the user (an unknown name, an invalid option value, a missing file)."""


def printable(text: str) -> str:
    """`text` as a terminal should show it: control and format characters (escape sequences, a
    newline that would forge a line, bidi overrides) written as Python writes them (`\\x1b`,
    `\\n`), everything else as is. For every name that comes from a file, a folder or a checkpoint."""
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


def brief(value: object) -> str:
    """A value as a message shows it, in at most 60 characters: repr for a scalar, the kind and
    size for a container or tensor (whose repr could expand shared references without bound)."""
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return f"a {value.dtype} tensor of shape {tuple(value.shape)}"
    if isinstance(value, (list, tuple, dict, set)):
        return f"a {type(value).__name__} of {len(value)}"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class DataError(UsageError):
    """Data that cannot be used: a missing or empty folder, a malformed dataset file."""


class RunFailed(UsageError):
    """Valid input, but the run could not go on (exit 1, not 2)."""


class TrainingDiverged(RunFailed):
    """The training loss became NaN or infinite; the last good checkpoint was kept."""


class OutOfMemory(RunFailed):
    """A batch did not fit in the device's memory; the message names the batch size and what to try."""


class Interrupted(Exception):
    """SIGINT or SIGTERM stopped a training run after its state was saved (exit 128 + signal)."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def reraise_signal(error: BaseException) -> None:
    """Raise the signal an ImportError carries, if it carries one. A pybind11 module (onnxruntime,
    onnx, torchvision's codecs) turns any exception raised while it initialises into
    ImportError('initialization failed'), a SIGTERM's `Terminated` or a Ctrl-C included: an
    `except ImportError` would take the signal for a missing package."""
    cause = error.__cause__ or error.__context__
    if isinstance(cause, BaseException) and not isinstance(cause, Exception):
        raise cause
