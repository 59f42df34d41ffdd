"""Progress on stderr: a tqdm bar where tqdm is installed, else the book's ``\\r`` line.

A progress line and the lines a program prints share the terminal: print those with
``write``, which clears every progress line first and redraws it after, so the screen shows
each line once and whole (``tqdm.write`` does the same for tqdm's own bars).
"""
import shutil
import sys
import threading

__all__ = ["Progress", "EpochProgress", "write"]

_shown = []  # the progress lines on screen now, in creation order
_lock = threading.RLock()


def _tqdm():
    try:
        from tqdm.auto import tqdm  # type: ignore[import-untyped]
    except ImportError:
        return None
    return tqdm


def write(text, file=None):
    """Print text and a newline to file (default stdout) without garbling progress lines."""
    file = sys.stdout if file is None else file
    with _lock:
        for display in _shown:
            display.clear()
        file.write(text + "\n")
        file.flush()
        for display in _shown:
            display.redraw()


class Progress:
    """A progress line on stream (default stderr) counting up to total (None: unknown).

    description names what runs; status (``update``'s) follows the count. The line is
    removed by ``close``, leaving the screen as it was; it never writes to stdout.
    """

    def __init__(self, total, description, *, unit="it", unit_scale=False, stream=None):
        self.stream = sys.stderr if stream is None else stream
        self.total, self.description, self.unit, self.done = total, description, unit, 0
        self._status, self._drawn = "", ""
        tqdm = _tqdm()
        # no rate and no unit in the bar, so that the bar and the status fit 80 columns
        self._bar = None if tqdm is None else tqdm(
            total=total, desc=description, unit=unit, unit_scale=unit_scale, file=self.stream,
            leave=False, dynamic_ncols=True,
            bar_format="{desc}: {n_fmt}/{total_fmt} |{bar}| {elapsed}<{remaining}{postfix}")
        with _lock:
            _shown.append(self)

    def update(self, n=1, status=None):
        with _lock:
            self.done += n
            if status is not None:
                self._status = status
            if self._bar is not None:
                if status is not None:
                    self._bar.set_postfix_str(status, refresh=False)
                self._bar.update(n)
            else:
                self.redraw()

    def _line(self):
        if self.unit == "B":
            count = (f"{100 * self.done / self.total:5.1f}%" if self.total
                     else f"{self.done} B")
        else:
            count = f"{self.done}/{self.total}" if self.total else str(self.done)
        line = f"{self.description}: {count} {self._status}".rstrip()
        # one column short of the terminal: a full line would wrap in some terminals
        width = shutil.get_terminal_size((80, 24)).columns - 1
        return line[:width]

    def clear(self):
        """Remove the line from the screen (redraw brings it back)."""
        if self._bar is not None:
            self._bar.clear()
        elif self._drawn:
            self.stream.write("\r" + " " * len(self._drawn) + "\r")
            self.stream.flush()
            self._drawn = ""

    def redraw(self):
        if self._bar is not None:
            self._bar.refresh()
            return
        line = self._line()
        self.stream.write("\r" + line + " " * max(0, len(self._drawn) - len(line)))
        self.stream.flush()
        self._drawn = line

    def close(self):
        with _lock:
            if self in _shown:
                _shown.remove(self)
            if self._bar is not None:
                self._bar.close()
            else:
                self.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


class EpochProgress(Progress):
    """Training progress, epoch by epoch, with the book's Train-Err and Train-Acc."""

    def __init__(self, total, stream=None, description="train"):
        super().__init__(total, description, unit="epoch", stream=stream)

    def update(self, record):
        super().update(1, f"train err {str(record['error'])[0:5]} acc {record['accuracy']}")
