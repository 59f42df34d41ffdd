"""Progress display on stderr: a tqdm bar where tqdm is installed, else the book's ``\\r`` line."""
import sys

__all__ = ["EpochProgress"]


class EpochProgress:
    """Shows training progress epoch by epoch; never writes to stdout."""

    def __init__(self, total, stream=None, description="train"):
        self.stream = sys.stderr if stream is None else stream
        try:
            from tqdm.auto import tqdm  # type: ignore[import-untyped]
        except ImportError:
            self._bar = None
        else:
            self._bar = tqdm(total=total, desc=description, unit="epoch", file=self.stream, leave=False)

    def update(self, record):
        error, accuracy = str(record["error"])[0:5], record["accuracy"]
        if self._bar is not None:
            self._bar.set_postfix_str(f"Train-Err:{error} Train-Acc:{accuracy}", refresh=False)
            self._bar.update(1)
        else:
            # the book's own progress line, rewritten in place
            self.stream.write(f"\r I:{record['epoch']} Train-Err:{error} Train-Acc:{accuracy}")
            self.stream.flush()

    def close(self):
        if self._bar is not None:
            self._bar.close()
        else:
            self.stream.write("\n")
            self.stream.flush()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
