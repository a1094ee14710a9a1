"""The Setup screen (F2): the Hugging Face token (masked entry, whoami, clear) and the network doctor.

The token itself lives only in the masked input until Enter, then in the worker that checks and
stores it; everything the screen shows or posts carries ``TokenChoice.masked`` instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import Footer, Input, Static
from textual.worker import Worker, WorkerState

from pgpt.runtime.doctor import shown
from pgpt.tui.screens.confirm import Confirm
from pgpt.tui.screens.panel import PanelScreen, app_error
from pgpt.tui.sanitize import clean_text

if TYPE_CHECKING:
    from pgpt.runtime.hub.token import TokenChoice
    from pgpt.runtime.settings import Settings


TOKEN_GROUP = "setup-token"
DOCTOR_GROUP = "setup-doctor"
TOKENS_PAGE = "https://huggingface.co/settings/tokens"
FIRST_SECTIONS = ("network", "folders")  # what Setup is about; the machine's sections follow
NO_TOKEN = "no token: public models download without one; gated models need one (paste it above)"


@dataclass(frozen=True)
class TokenStatus:
    """What the screen shows about the token in effect: its masked form, never the token."""

    masked: str
    source: str
    stored: bool
    overridden: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    user: str = ""
    role_text: str = ""
    problem: str = ""  # why the Hub did not say whose token it is
    notice: str = ""  # what the last action did


class Secret:
    """A typed token on its way to the worker; its repr (worker descriptions, logs) is masked."""

    def __init__(self, value: str) -> None:
        self.value = value

    def __repr__(self) -> str:
        from pgpt.runtime.hub.token import mask

        return f"Secret({mask(self.value.strip())})"


@dataclass
class TokenChecked(Message):
    """The token in effect and whose it is, after a check, a save or a clear."""

    check_id: int
    status: TokenStatus


@dataclass
class TokenRejected(Message):
    """The typed token was refused (by the Hub, or by its shape) and was not stored."""

    check_id: int
    diagnosis: str


@dataclass
class DoctorFindings(Message):
    """The doctor's sections (network, folders, onnxruntime, ...) as key -> value."""

    check_id: int
    checks: dict[str, dict[str, Any]]


def describe_token(settings: Settings, choice: TokenChoice, identity: dict[str, Any], notice: str = "") -> TokenStatus:
    """The masked status of ``choice`` with what whoami said (``identity``) and any override warning."""
    from pgpt.runtime.hub.token import ENV_NAMES, token_path

    stored_path = str(token_path(settings))
    warnings = list(choice.warnings) + [f"{problem[0].upper()}{problem[1:]}: check its owner and mode."
                                         for problem in choice.unreadable]
    if any(stored_path in name for name in choice.overridden):
        where = f"{choice.source} (environment variable)" if choice.source in ENV_NAMES else choice.source
        warnings.insert(0, f"{where} overrides the token stored by pgpt; unset or update it to use the stored one.")
    return TokenStatus(masked=choice.masked, source=choice.source, stored=token_path(settings).is_file(),
                       overridden=[n for n in choice.overridden if stored_path not in n], warnings=warnings,
                       user=str(identity.get("user") or ""), role_text=str(identity.get("role_text") or ""),
                       problem=str(identity.get("whoami_error") or ""), notice=notice)


def read_token_status(settings: Settings, notice: str = "") -> TokenStatus:
    """Find the token in effect and ask the Hub whose it is (blocking: call it from a worker)."""
    from pgpt.runtime.hub.identity import whoami
    from pgpt.runtime.hub.token import find_token

    choice = find_token(settings)
    return describe_token(settings, choice, whoami(choice) if choice.token else {}, notice)


def token_markup(status: TokenStatus) -> str:
    """The status block: token, source, account, other sources and what the last action did."""
    if status.source == "none":
        lines = [f"[b]token[/b]    {NO_TOKEN}"]
    else:
        lines = [f"[b]token[/b]    {clean_text(status.masked)} (masked) from {clean_text(status.source)}"]
        if status.user:
            lines.append(f"[b]account[/b]  {clean_text(status.user)} ({clean_text(status.role_text)})")
        else:
            lines.append(f"[b]account[/b]  not verified: {clean_text(status.problem or 'unknown')}")
    lines += [f"[b]unused[/b]   {clean_text(name)} also holds a token" for name in status.overridden]
    if status.notice:
        lines.append(clean_text(status.notice))
    return "\n".join(lines)


def findings_markup(checks: dict[str, dict[str, Any]]) -> str:
    """The doctor's sections, network and folders first, every value cleaned."""
    from pgpt.runtime.hub.identity import PROXY_VARIABLES

    network = checks.get("network")
    if network is not None and not any(name in network for name in PROXY_VARIABLES):
        network = {**network, "proxies": "none set (direct connection)"}  # say so rather than show nothing
        checks = {**checks, "network": network}
    order = [s for s in FIRST_SECTIONS if s in checks] + [s for s in checks if s not in FIRST_SECTIONS]
    lines = []
    for section in order:
        lines.append(f"[b]{clean_text(section)}[/b]")
        lines += [f"  {clean_text(key)}: {clean_text(shown(value))}" for key, value in checks[section].items()]
    return "\n".join(lines)


class ConfirmClear(Confirm):
    """Ask before deleting the stored token: pasting it again is the only way back."""

    def __init__(self, path: str) -> None:
        super().__init__(f"Remove the token stored by pgpt ({clean_text(path)})?\n"
                         "Pasting it again is the only way back.", yes="remove")
        self.path = path


class SetupScreen(PanelScreen):
    """Enter, check and clear the Hugging Face token; see what the network doctor finds."""

    SHOWS_FAILURES = True

    DEFAULT_CSS = """
    SetupScreen .panel-title { height: 1; padding: 0 1; background: $panel; text-style: bold; }
    SetupScreen #token-input { margin: 0; }
    SetupScreen #token-status { height: auto; padding: 0 1; }
    SetupScreen #token-warnings { height: auto; padding: 0 1; color: $text-warning; display: none; }
    SetupScreen #token-diagnosis { height: auto; padding: 0 1; color: $text-error; display: none; }
    SetupScreen #findings-title { height: 1; padding: 0 1; margin-top: 1; background: $panel; color: $text-muted; }
    SetupScreen #findings { height: 1fr; padding: 0 1; scrollbar-size-vertical: 1; }
    """
    # Short descriptions: with the app's F2-F5 and Ctrl+Q the footer just fits 80 columns.
    BINDINGS = [
        Binding("ctrl+s", "save_token", "Save", tooltip="Check the typed token with the Hub and store it"),
        Binding("ctrl+l", "clear_token", "Clear", tooltip="Remove the token stored by pgpt (asks first)"),
        Binding("ctrl+r", "check_again", "Check", tooltip="Check the token and the network again"),
        # PgUp/PgDn scroll the findings while the token input keeps the focus (named in their title).
        Binding("pageup", "scroll_findings(-1)", "Scroll up", show=False),
        Binding("pagedown", "scroll_findings(1)", "Scroll down", show=False),
    ]

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.token_status: TokenStatus | None = None
        self.checks: dict[str, dict[str, Any]] = {}
        self._token_check = 0  # tags worker messages: a thread worker cannot be stopped, only ignored
        self._doctor_check = 0

    def compose(self) -> ComposeResult:
        yield Static("Setup · Hugging Face token and network", classes="panel-title")
        yield Input(password=True, id="token-input",
                    placeholder="Paste a token (huggingface.co/settings/tokens), Enter saves it")
        yield Static("checking the token…", id="token-status")
        yield Static(id="token-warnings")
        yield Static(id="token-diagnosis")
        yield Static("Network and folders · Ctrl+R checks again · PgUp/PgDn scroll", id="findings-title")
        with VerticalScroll(id="findings"):
            yield Static("checking the network and folders…", id="doctor-findings")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.query_one("#token-input", Input).focus()
        self.action_check_again()

    # Actions.

    @on(Input.Submitted, "#token-input")
    def _submitted(self, event: Input.Submitted) -> None:
        self.action_save_token()

    def action_save_token(self) -> None:
        """Check the typed token with the Hub and store it unless the Hub refuses it."""
        from pgpt.runtime.errors import ConfigError
        from pgpt.runtime.hub.token import checked_token

        field_ = self.query_one("#token-input", Input)
        typed = field_.value
        field_.clear()  # the token does not stay in the widget, even masked
        if not typed.strip():
            self._show_diagnosis("Paste a token first (it stays hidden), then press Enter.")
            return
        try:  # a typo is answered here and now: it is no failure worth a log entry
            secret = Secret(checked_token(typed))
        except ConfigError as error:
            self._show_diagnosis(clean_text(app_error(error)))
            return
        self._show_diagnosis("")
        self.query_one("#token-status", Static).update("checking the token with the Hub…")
        self._token_check += 1
        self.save_token(self._token_check, secret)

    def action_clear_token(self) -> None:
        """Remove the stored token, after a confirmation (there is nothing to undo it)."""
        from pgpt.runtime.hub.token import token_path

        path = token_path(self.settings)
        if self.token_status is not None and not self.token_status.stored:
            self._show_diagnosis(f"No token is stored by pgpt in {clean_text(str(path))}; nothing to clear.")
            return
        self.app.push_screen(ConfirmClear(str(path)), self._clear_confirmed)

    def _clear_confirmed(self, remove: bool | None) -> None:
        if remove:
            self._show_diagnosis("")
            self._token_check += 1
            self.clear_stored_token(self._token_check)

    def action_check_again(self) -> None:
        """Ask the Hub about the token in effect and run the doctor's checks again."""
        self._token_check += 1
        self._doctor_check += 1
        self.check_token(self._token_check)
        self.run_doctor(self._doctor_check)

    def action_scroll_findings(self, pages: int) -> None:
        """Scroll the doctor's findings by a page."""
        findings = self.query_one("#findings", VerticalScroll)
        if pages < 0:
            findings.scroll_page_up()
        else:
            findings.scroll_page_down()

    # Workers: they only post messages, never touch widgets.

    @work(thread=True, exclusive=True, exit_on_error=False, group=TOKEN_GROUP)
    def check_token(self, check_id: int) -> None:
        """Post the status of the token in effect (whoami asks the Hub)."""
        self.post_message(TokenChecked(check_id, read_token_status(self.settings)))

    @work(thread=True, exclusive=True, exit_on_error=False, group=TOKEN_GROUP, description="save_token")
    def save_token(self, check_id: int, secret: Secret) -> None:
        """Ask the Hub whose the typed token is; store it unless refused, then post the new status."""
        from pgpt.runtime.hub.access import shown_endpoint
        from pgpt.runtime.hub.identity import REJECTED, whoami
        from pgpt.runtime.hub.token import TokenChoice, find_token, mask, store_token

        token = secret.value  # already checked_token'd: safe to put in a header
        identity = whoami(TokenChoice(token, "typed"))
        if identity.get("whoami_error") == REJECTED:
            self.post_message(TokenRejected(check_id, (
                f"The Hub at {shown_endpoint()} rejected the token you typed ({mask(token)}) as invalid or "
                f"expired, so it was not stored. Create a new read token at {TOKENS_PAGE} and paste it here.")))
            return
        path = store_token(self.settings, token)
        notice = f"stored {mask(token)} in {path} (mode 0600)"
        if identity.get("whoami_error"):  # unreachable Hub: keep the token, say it is unverified
            notice += f", not verified: {identity['whoami_error']}"
        choice = find_token(self.settings)
        if choice.token != token:  # another source wins: ask about the token that is really used
            identity = whoami(choice) if choice.token else {}
        self.post_message(TokenChecked(check_id, describe_token(self.settings, choice, identity, notice)))

    @work(thread=True, exclusive=True, exit_on_error=False, group=TOKEN_GROUP)
    def clear_stored_token(self, check_id: int) -> None:
        """Delete pgpt's token file, then post the status (another source may still hold a token)."""
        from pgpt.runtime.hub.token import clear_token

        notice = "token removed" if clear_token(self.settings) else "no token was stored by pgpt"
        self.post_message(TokenChecked(check_id, read_token_status(self.settings, notice)))

    @work(thread=True, exclusive=True, exit_on_error=False, group=DOCTOR_GROUP)
    def run_doctor(self, check_id: int) -> None:
        """Run the doctor's checks, the network section included (bounded timeouts)."""
        from pgpt.runtime.doctor import run_checks

        self.post_message(DoctorFindings(check_id, run_checks(self.settings, network=True)))

    # Messages from the workers.

    @on(TokenChecked)
    def _token_checked(self, message: TokenChecked) -> None:
        if message.check_id != self._token_check:
            return
        self.token_status = message.status
        self.query_one("#token-status", Static).update(token_markup(message.status))
        warnings = self.query_one("#token-warnings", Static)
        warnings.update("\n".join(f"warning: {clean_text(w)}" for w in message.status.warnings))
        warnings.display = bool(message.status.warnings)
        if message.status.notice:  # the token changed: the doctor's network section is stale
            self._doctor_check += 1
            self.run_doctor(self._doctor_check)

    @on(TokenRejected)
    def _token_rejected(self, message: TokenRejected) -> None:
        if message.check_id == self._token_check:
            self._show_diagnosis(clean_text(message.diagnosis))
            self._show_token_status()

    @on(DoctorFindings)
    def _doctor_findings(self, message: DoctorFindings) -> None:
        if message.check_id == self._doctor_check:
            self.checks = message.checks
            self.query_one("#doctor-findings", Static).update(findings_markup(message.checks))

    @on(Worker.StateChanged)
    def _worker_failed(self, event: Worker.StateChanged) -> None:
        """Show a failure inline (PanelScreen logs and notifies it)."""
        worker, error = event.worker, event.worker.error
        if event.state is not WorkerState.ERROR or error is None:
            return
        text = clean_text(app_error(error))
        if worker.group == TOKEN_GROUP:
            self._show_diagnosis(text)
            self._show_token_status()
        else:
            self.query_one("#doctor-findings", Static).update(f"The checks failed. {text}")

    # Helpers (main thread only).

    def _show_diagnosis(self, markup: str) -> None:
        diagnosis = self.query_one("#token-diagnosis", Static)
        diagnosis.update(markup)
        diagnosis.display = bool(markup)

    def _show_token_status(self) -> None:
        """Put back the last known status after a save that changed nothing."""
        if self.token_status is not None:
            self.query_one("#token-status", Static).update(token_markup(self.token_status))
        else:  # the first check was overtaken by the save: ask again
            self._token_check += 1
            self.check_token(self._token_check)
