"""Settings built once in ``main()`` from the environment and passed down; nothing runs at import."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

PROVIDERS = ("auto", "cpu", "cuda")


def _default_home() -> Path:
    from platformdirs import user_data_dir

    return Path(user_data_dir("pgpt", appauthor=False))


def _default_model_cache() -> Path:
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("pgpt", appauthor=False)) / "models"


@dataclass(frozen=True)
class Settings:
    """Where pgpt keeps its state and how it runs models.

    Attributes:
        home: Per-user state (config, answer cache, logs). ``PGPT_HOME``.
        model_cache: Exported ONNX models, shared by every home. ``PGPT_MODEL_CACHE``.
        provider: Execution provider: auto, cpu or cuda. ``PGPT_PROVIDER``.
        threads: Intra-op threads; 0 means the physical core count. ``PGPT_THREADS``.
        model: Name of the chat model to use; empty means the configured active one. ``PGPT_MODEL``.
        embedder: Name of the embedding model for documents; empty means the default. ``PGPT_EMBEDDER``.
        cache_size_mb: Size limit of the answer cache. ``PGPT_CACHE_SIZE_MB``.
        keep_versions: Versions of a model name kept when it is exported again. ``PGPT_KEEP_VERSIONS``.
    """

    home: Path
    model_cache: Path
    provider: str = "auto"
    threads: int = 0
    model: str = ""
    embedder: str = ""
    cache_size_mb: int = 256
    keep_versions: int = 3
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "Settings":
        """Build settings from ``PGPT_*`` variables, falling back to XDG folders."""
        env = dict(os.environ if env is None else env)
        home = Path(env["PGPT_HOME"]).expanduser() if env.get("PGPT_HOME") else _default_home()
        cache = env.get("PGPT_MODEL_CACHE")
        model_cache = Path(cache).expanduser() if cache else _default_model_cache()
        provider = env.get("PGPT_PROVIDER", "auto").lower()
        if provider not in PROVIDERS:
            from pgpt.runtime.errors import ConfigError

            raise ConfigError(f"PGPT_PROVIDER={provider!r} is not one of {', '.join(PROVIDERS)}.")
        return cls(
            home=home,
            model_cache=model_cache,
            provider=provider,
            threads=_int(env, "PGPT_THREADS", 0),
            model=env.get("PGPT_MODEL", ""),
            embedder=env.get("PGPT_EMBEDDER", ""),
            cache_size_mb=_int(env, "PGPT_CACHE_SIZE_MB", 256),
            keep_versions=max(1, _int(env, "PGPT_KEEP_VERSIONS", 3)),
        )

    @property
    def answer_cache_dir(self) -> Path:
        """Folder of the disk cache of answers."""
        return self.home / "cache" / "answers"

    @property
    def config_file(self) -> Path:
        """JSON file holding user choices such as the active model."""
        return self.home / "config.json"

    @property
    def log_file(self) -> Path:
        """Log file (logs never go to the terminal while the TUI runs)."""
        return self.home / "logs" / "pgpt.log"


def _int(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name, "")
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        from pgpt.runtime.errors import ConfigError

        raise ConfigError(f"{name}={raw!r} is not a whole number.") from None


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) and make it 0700, since it may hold answers or tokens."""
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` still runs here (for files a killed process may have left)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True
