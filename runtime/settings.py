"""Settings built once in ``main()`` from the environment and passed down; nothing runs at import."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

PROVIDERS = ("auto", "cpu", "cuda")

# One default length for every front end: the caches key answers by their options, so the app
# (512) and the CLI (256) never shared an answer through one server. A documents answer is short
# and checked sentence by sentence: drafting 512 tokens of it took 12.6 s for two sentences.
MAX_THREADS = 256  # PGPT_THREADS: more than any CPU pgpt runs on has cores
CHAT_MAX_TOKENS = 512
DOCUMENTS_MAX_TOKENS = 256


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
        read_timeout_s: Longest time the ingest gives one file's reader before it reports the file
            as failed and goes on. ``PGPT_READ_TIMEOUT_S``.
        read_memory_mb: Memory (address space) the reader of one file may use. ``PGPT_READ_MEMORY_MB``.
        server: URL of a pgpt-serve to use instead of loading the model here. ``PGPT_SERVER``.
        server_key: The API key sent to that server. ``PGPT_API_KEY`` or the file ``PGPT_API_KEY_FILE``.
        server_retries: Times a question the server refused as busy is asked again, after the wait it
            asks for (its Retry-After) or longer, doubled each time (1, 2, 4, 8, 10 s), before the refusal
            is said. ``PGPT_SERVER_RETRIES``.
        keep_versions: Versions of a model name kept when it is exported again. ``PGPT_KEEP_VERSIONS``.
        sources: Where a setting came from when not the environment, by name, for messages:
            ``{"PGPT_EMBEDDER": "--embedder", "PGPT_MODEL": "/home/me/.env"}``.
    """

    home: Path
    model_cache: Path
    provider: str = "auto"
    threads: int = 0
    model: str = ""
    embedder: str = ""
    cache_size_mb: int = 256
    read_timeout_s: int = 120
    read_memory_mb: int = 4096
    server: str = ""
    server_key: str = field(default="", repr=False)
    server_key_file: str = ""  # PGPT_API_KEY_FILE: read again at each connect, so a fixed key needs no restart
    server_retries: int = 5
    keep_versions: int = 3
    extra: dict[str, str] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "Settings":
        """Build settings from ``PGPT_*`` variables, falling back to XDG folders."""
        env = dict(os.environ if env is None else env)
        home = _folder(Path(env["PGPT_HOME"]).expanduser() if env.get("PGPT_HOME") else _default_home(), "PGPT_HOME")
        cache = env.get("PGPT_MODEL_CACHE")
        model_cache = _folder(Path(cache).expanduser() if cache else _default_model_cache(), "PGPT_MODEL_CACHE")
        provider = env.get("PGPT_PROVIDER", "auto").lower()
        if provider not in PROVIDERS:
            from pgpt.runtime.errors import ConfigError

            raise ConfigError(f"PGPT_PROVIDER={provider!r} is not one of {', '.join(PROVIDERS)}.")
        return cls(
            home=home,
            model_cache=model_cache,
            provider=provider,
            # 100000 threads hung every command without a word; 0 is one per physical core
            threads=_int(env, "PGPT_THREADS", 0, lowest=0, highest=MAX_THREADS),
            model=env.get("PGPT_MODEL", ""),
            embedder=env.get("PGPT_EMBEDDER", ""),
            cache_size_mb=_int(env, "PGPT_CACHE_SIZE_MB", 256, lowest=1),  # -5 was taken
            read_timeout_s=_int(env, "PGPT_READ_TIMEOUT_S", 120, lowest=1),
            read_memory_mb=_int(env, "PGPT_READ_MEMORY_MB", 4096, lowest=256),
            server=_server_url(env.get("PGPT_SERVER", "")),
            server_key=_server_key(env),
            server_key_file=env.get("PGPT_API_KEY_FILE", ""),
            server_retries=_int(env, "PGPT_SERVER_RETRIES", 5, lowest=0, highest=20),
            keep_versions=_int(env, "PGPT_KEEP_VERSIONS", 3, lowest=1),  # 0 became 1 without a word
        )

    def named(self, name: str) -> str:
        """``name`` as a message names the setting: the option that set it (``--embedder``), or the
        variable with the file it was set in (``PGPT_MODEL (set in ./.env)``)."""
        source = self.sources.get(name, "")
        if source.startswith("--"):
            return source
        return f"{name} (set in {source})" if source else name

    def models_where(self) -> str:
        """The model cache as a "not exported" message names it, with whether PGPT_MODEL_CACHE chose it:
        a cron job without the variable was told to export the models again, into another folder (t71)."""
        if self.model_cache == _default_model_cache():
            return f"{self.model_cache} (the default folder: PGPT_MODEL_CACHE is not set)"
        return f"{self.model_cache} ({self.named('PGPT_MODEL_CACHE')})"

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


def _folder(path: Path, name: str) -> Path:
    """``path`` unless it, or the nearest of its parents that exists, is not a folder: that is a
    setting to fix, said now, rather than "File exists" from the first folder pgpt makes there."""
    try:
        existing = next((p for p in (path, *path.parents) if p.exists()), path)
        if existing.is_dir() or not existing.exists():
            return path
    except OSError:  # a parent that may not be searched: the first use says so
        return path
    from pgpt.runtime.errors import ConfigError

    where = f"{name} ({path}) is" if existing == path else f"{name} ({path}) is inside {existing}, which is"
    raise ConfigError(f"{where} a file, not a folder.",
                      hint=f"Point {name} at a folder (a new one is created), or move the file away, "
                           "then run the command again.")


def _int(env: dict[str, str], name: str, default: int, lowest: int | None = None, highest: int | None = None) -> int:
    raw = env.get(name, "")
    if not raw:
        return default
    from pgpt.runtime.errors import ConfigError

    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number.") from None
    if lowest is not None and value < lowest:
        raise ConfigError(f"{name}={raw!r} is too small: the lowest allowed value is {lowest}.")
    if highest is not None and value > highest:
        raise ConfigError(f"{name}={raw!r} is too large: the highest allowed value is {highest}.")
    return value


def _server_url(raw: str) -> str:
    """``PGPT_SERVER`` as a base URL: ``host:port`` gets ``http://``, OpenAI's ``.../v1`` base URL
    its server's root; other schemes are refused, and so is a key or password in the address
    (it would be shown in messages and logs: the key belongs in PGPT_API_KEY_FILE)."""
    from urllib.parse import urlsplit

    from pgpt.runtime.errors import ConfigError

    url = raw.strip().rstrip("/")
    if not url:
        return ""
    if "://" not in url:
        url = f"http://{url}"
    if "@" in url.split("://", 1)[1].split("/", 1)[0]:
        host = url.split("://", 1)[1].split("/", 1)[0].rpartition("@")[2]
        raise ConfigError(f"PGPT_SERVER (or --server) holds a user name or key before {host!r}; pgpt does not "
                          "send credentials in the address, and would show them in messages and logs.",
                          hint=f"Use http://{host} and put the key in a file named by PGPT_API_KEY_FILE (or in "
                               "PGPT_API_KEY).")
    url = url.removesuffix("/v1")  # the base URL OpenAI's clients take; pgpt adds /v1 itself
    if not url.startswith(("http://", "https://")) or not urlsplit(url).hostname:
        raise ConfigError(f"PGPT_SERVER (or --server) {raw[:120]!r} is not a server address.",
                          hint="Use http://HOST:PORT, e.g. http://127.0.0.1:8642.")
    return url


def _server_key(env: dict[str, str]) -> str:
    """The key for PGPT_SERVER: the file PGPT_API_KEY_FILE, else PGPT_API_KEY."""
    path = env.get("PGPT_API_KEY_FILE", "")
    return read_key_file(Path(path), client=True) if path else checked_key(env.get("PGPT_API_KEY", ""), "PGPT_API_KEY")


def checked_key(key: str, where: str) -> str:
    """``key`` stripped, refused when it is not one line of printable ASCII: a key with a line break
    (a comment line above it in its file) or a character outside ASCII cannot be sent in a header,
    and the HTTP library's error quoted the whole header, key included (t60). The message never
    shows the key. (A space can be sent; a server on the network refuses it as weak, see weak_key.)

    Raises:
        ConfigError: the key holds control or non-ASCII characters.
    """
    from pgpt.runtime.errors import ConfigError

    key = key.strip()
    if key and not all(" " <= c <= "~" for c in key):
        raise ConfigError(f"The API key in {where} is not one line of printable ASCII: it holds a line break or "
                          "another control character, or a character outside ASCII (a comment line beside the key?).",
                          hint="Keep only the key on one line, e.g. the output of `openssl rand -hex 32`.")
    return key


def read_key_file(path: Path, client: bool = False) -> str:
    """An API key kept in a file of its own, which only its owner may read (``client``: the key
    of a server this user reaches, which its operator hands out, not one to make up).

    Raises:
        ConfigError: the file is missing, unreadable, empty, or readable by other users.
    """
    import stat

    from pgpt.runtime.errors import ConfigError

    path = path.expanduser()
    try:
        mode = path.stat().st_mode
        key = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        make = ("Put the server's key in it (its operator has it), private to you (chmod 600)," if client else
                f"Create it with (umask 077; openssl rand -hex 32 > {path}),")
        raise ConfigError(f"Cannot read the API key file {path}: {exc.strerror}.",
                          hint=f"{make} or fix the path.") from None
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        raise ConfigError(f"The API key file {path} can be read by other users.",
                          hint=f"Make it private: chmod 600 {path}.")
    if not key:
        raise ConfigError(f"The API key file {path} is empty.",
                          hint="Put the server's key in it (its operator has it)." if client else
                          f"Put a key in it: (umask 077; openssl rand -hex 32 > {path}).")
    return checked_key(key, f"the file {path}")


def write_private(path: Path, text: str, sync: bool = False) -> None:
    """Write ``text`` to the new file ``path``, readable by its owner only whatever the umask: pgpt's
    small state files name documents, folders and models (several were 0644, t60). ``sync``: fsync it."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
        if sync:
            handle.flush()
            os.fsync(handle.fileno())


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` and its missing parents with mode 0700, since they may hold answers or tokens.

    A folder that already exists keeps its mode: pgpt never changes the modes of a folder it did
    not create (a user who made PGPT_HOME read-only meant it; writes there fail and say so).
    """
    missing = []
    folder = path
    while not folder.is_dir() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=0o700)
        except FileExistsError:
            if folder.is_dir():
                continue  # another process made it just now
            raise
        except FileNotFoundError as exc:  # a parent where no folder can be made (/proc, a HOME that is not one)
            from pgpt.runtime.errors import StorageError

            raise StorageError(f"The folder {folder} cannot be created: {exc.strerror}.", folder=folder,
                               hint="pgpt keeps its data under PGPT_HOME and its models under PGPT_MODEL_CACHE "
                                    "(both under HOME by default): set them to folders you can write, or HOME to "
                                    "your home folder.") from None
        os.chmod(folder, 0o700)  # mkdir's mode passes through the umask; this folder is ours
    return path


def read_dotenv(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a .env file (quotes and ``export`` allowed, a `` # comment`` after an
    unquoted or quoted value dropped, as python-dotenv and docker compose read it); nothing is executed."""
    values: dict[str, str] = {}
    try:
        if not path.is_file():
            return values
        # utf-8-sig: Notepad's byte-order mark made the first key "\ufeffHF_TOKEN", silently unread
        lines = path.read_text(encoding="utf-8-sig", errors="replace").splitlines()
    except OSError:
        return values
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.removeprefix("export ").split("=", 1)
        values[key.strip()] = _dotenv_value(value.strip())
    return values


def _dotenv_value(value: str) -> str:
    """A value as written, its quotes and a trailing comment taken away: "hf_... # my token" was sent
    to the Hub whole, and the good token called invalid (t48)."""
    quoted = re.match(r"""(['"])(.*?)\1(?:\s+#.*)?$""", value)
    if quoted:
        return quoted.group(2)
    return re.sub(r"\s+#.*$", "", value).strip("'\"")


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` still runs here (for files a killed process may have left)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True
