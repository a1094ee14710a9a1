"""Ctrl+Y's copy: OSC 52 to the terminal, and inside tmux its paste buffer too.

tmux with its default `set-clipboard external` drops an application's OSC 52: the app said "Copied"
and nothing was copied anywhere (t54). Inside tmux ($TMUX set and the tmux command found) the text
is also loaded into tmux's paste buffer with `tmux load-buffer -w -` (``-w``, tmux 3.2+: tmux sends it
on to the outer terminal's clipboard too), which works whatever set-clipboard says. GNU screen
($STY) passes OSC 52 on only when told to; the notice says so rather than claiming a copy.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from typing import Any

log = logging.getLogger(__name__)
TMUX_WAIT_S = 2.0  # a tmux server that does not answer must not hold the app


def copy_text(app: Any, text: str, env: dict[str, str] | None = None) -> str:
    """Copy ``text`` (``app.copy_to_clipboard``: OSC 52, and tmux's buffer inside tmux); returns
    where it went, for the notice: "to tmux's paste buffer ..." or "to the terminal's clipboard ..."."""
    env = dict(os.environ) if env is None else env
    app.copy_to_clipboard(text)
    if env.get("TMUX") and _tmux_buffer(text, env):
        return "to tmux's paste buffer (prefix ] pastes it) and the terminal's clipboard"
    if env.get("STY"):
        return ("to the terminal (OSC 52; inside GNU screen it reaches the clipboard only where screen passes it "
                "on)")
    return "to the terminal's clipboard (OSC 52)"


def _tmux_buffer(text: str, env: dict[str, str]) -> bool:
    """Load ``text`` into the paste buffer of the tmux server this app runs under; False when it cannot."""
    tmux = shutil.which("tmux", path=env.get("PATH"))
    if tmux is None:
        return False
    for command in ([tmux, "load-buffer", "-w", "-"], [tmux, "load-buffer", "-"]):  # -w: tmux 3.2 and later
        try:
            done = subprocess.run(command, input=text.encode("utf-8", "replace"), env=env, capture_output=True,
                                  timeout=TMUX_WAIT_S, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            log.warning("tmux load-buffer failed: %s", exc)
            return False
        if done.returncode == 0:
            return True
        log.info("tmux load-buffer: %s", done.stderr.decode("utf-8", "replace").strip()[:200])
    return False
