"""Writing files whole: a temporary file beside the target, renamed into place when complete.

A crash, a full disk or an interrupt never leaves a half-written model or cache file under the
name a later run would trust. The file gets the permissions the user's umask gives a new file
(a temporary file is created 0600, which would hide a shared model or cache from others).
"""
from contextlib import contextmanager
import os
import tempfile

__all__ = ["atomic_write"]


def _umask():
    try:  # Linux: read it without changing it (os.umask sets it, racing other threads)
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def atomic_write(path):
    """Open path for writing in binary; it appears only when the block ends without error."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"cannot write {path}: the folder {directory} does not exist")
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.",
                                         suffix=".part")
    try:
        with os.fdopen(handle, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
