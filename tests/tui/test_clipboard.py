"""Ctrl+Y inside tmux: tmux (its default `set-clipboard external`) drops an application's OSC 52, so
the app said "Copied" while nothing was (t54); the text now goes to tmux's paste buffer as well.
A private tmux server (its own socket, no config file) stands for the user's."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from pgpt.tui.chat.clipboard import copy_text


class Terminal:
    """The app's side of OSC 52: what it would write to the terminal."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def copy_to_clipboard(self, text: str) -> None:
        self.sent.append(text)


@pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")
def test_inside_tmux_the_text_lands_in_its_paste_buffer(tmp_path: Path) -> None:
    socket = tmp_path / "tmux-socket"
    tmux = [shutil.which("tmux") or "tmux", "-S", str(socket), "-f", "/dev/null"]
    subprocess.run([*tmux, "new-session", "-d", "-s", "copy", "sleep 60"], check=True)
    try:
        pid = subprocess.run([*tmux, "display", "-p", "#{pid}"], capture_output=True, text=True).stdout.strip()
        env = {"PATH": "/usr/bin:/bin", "TMUX": f"{socket},{pid},0"}  # as tmux sets it for its panes
        terminal = Terminal()
        text = "Quote from the documents: “The bakery closes at 18:30 on Saturdays.” [1]\n\n[1] bakery.md"
        where = copy_text(terminal, text, env)
        assert where == "to tmux's paste buffer (prefix ] pastes it) and the terminal's clipboard"
        assert terminal.sent == [text]  # OSC 52 too: with set-clipboard on, tmux passes it on
        shown = subprocess.run([*tmux, "show-buffer"], capture_output=True, text=True, check=True).stdout
        assert shown == text
    finally:
        subprocess.run([*tmux, "kill-server"], check=False)


def test_outside_tmux_it_says_what_it_can_know(tmp_path: Path) -> None:
    terminal = Terminal()
    assert copy_text(terminal, "x", {"PATH": "/usr/bin:/bin"}) == "to the terminal's clipboard (OSC 52)"
    assert copy_text(terminal, "x", {"STY": "1234.pts-0.host"}).startswith("to the terminal (OSC 52; inside GNU screen")
    gone = {"PATH": "/usr/bin:/bin", "TMUX": f"{tmp_path / 'no-such-socket'},1,0"}  # a tmux that is gone
    assert copy_text(terminal, "x", gone) == "to the terminal's clipboard (OSC 52)" and terminal.sent == ["x"] * 3
