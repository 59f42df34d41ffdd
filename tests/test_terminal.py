"""What a person sees: the command line run in a pseudo-terminal, its bytes rendered by a
terminal emulator (pyte), at 80 and 120 columns, with tqdm's bar and with the book's line."""
import os
import struct
import subprocess
import sys

import pytest

if sys.platform == "win32":  # before the POSIX-only imports, which fail to import there
    pytest.skip("pseudo-terminals (pty, termios) are POSIX-only", allow_module_level=True)
import fcntl  # noqa: E402
import pty  # noqa: E402
import termios  # noqa: E402

pyte = pytest.importorskip("pyte")

ROWS = 60
NO_TQDM = "import sys; sys.modules['tqdm'] = None; "


def in_terminal(code, columns):
    """Run python -c code on a pseudo-terminal of columns x ROWS; returns (screen, bytes)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env["TERM"] = "xterm"
    process = subprocess.Popen([sys.executable, "-P", "-c", code], stdin=slave, stdout=slave,
                               stderr=slave, env=env, close_fds=True)
    os.close(slave)
    output = b""
    while True:
        try:
            chunk = os.read(master, 1 << 16)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        output += chunk
    os.close(master)
    assert process.wait(timeout=120) == 0, output.decode(errors="replace")
    screen = pyte.Screen(columns, ROWS)
    pyte.ByteStream(screen).feed(output)
    lines = [line.rstrip() for line in screen.display]
    while lines and not lines[-1]:
        lines.pop()
    return lines, output


def table(arguments):
    """What the command prints on stdout, run without a terminal."""
    return subprocess.run([sys.executable, "-P", "-m", "grokreg", *arguments],
                          capture_output=True, text=True, check=True).stdout.splitlines()


def command(arguments, tqdm):
    return (("" if tqdm else NO_TQDM)
            + f"from grokreg.cli import main; sys.exit(main({arguments!r}))").replace(
                "sys.exit", "__import__('sys').exit")


@pytest.mark.parametrize("columns", [80, 120])
@pytest.mark.parametrize("tqdm", [True, False], ids=["tqdm", "book-line"])
def test_the_screen_holds_the_table_and_nothing_else(columns, tqdm):
    if tqdm:
        pytest.importorskip("tqdm")
    arguments = ["reproduce", "overfit", "--book", "--epochs", "60", "--n-train", "300",
                 "--n-test", "500", "--eval-every", "10"]
    screen, output = in_terminal(command(arguments, tqdm), columns)
    expected = table(arguments)
    assert len(expected) == 7 and all(len(line) < 80 for line in expected)
    assert screen == expected
    # the progress line was shown meanwhile, naming the experiment and mode
    assert b"overfit, book mode: " in output


def test_reproduce_all_names_each_run_on_the_bar_and_ends_on_its_table():
    pytest.importorskip("tqdm")
    arguments = ["reproduce", "all", "--n-train", "100", "--n-test", "200", "--networks", "2"]
    screen, output = in_terminal(command(arguments, True), 80)
    for name in ("overfit", "dropout", "batch", "early-stopping"):
        for mode in ("book", "correct"):
            assert f"{name}, {mode} mode: ".encode() in output
    assert b"ensemble of 2, book mode: " in output
    assert b"regularizers: " in output  # its bar, counting runs
    body = [line for line in screen if line.startswith("|")]
    assert len(body) == 12 + 10 and all(len(line) <= 80 for line in screen)
    assert screen[0].startswith("| experiment | mode | best test (epoch) |")
    assert screen[-1].endswith("at a time.")  # the last line of the regularizers table


def test_a_warning_is_one_clean_line_between_table_lines():
    """A divergence warning in the command line's words, not a source path and code line."""
    arguments = ["reproduce", "overfit", "--book", "--alpha", "10", "--epochs", "3",
                 "--n-train", "50", "--n-test", "50", "--eval-every", "1"]
    screen, _ = in_terminal(command(arguments, False), 120)
    warnings = [line for line in screen if "warning" in line]
    assert warnings == ["grokreg: warning: training diverged at epoch 0 (alpha=10.0): a weight "
                        "or the error is not finite; going on as asked"]
    assert [line for line in screen if "warning" not in line] == table(arguments)
    assert ".py" not in "".join(screen)
