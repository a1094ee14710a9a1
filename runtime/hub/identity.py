"""Who a token belongs to, and the network facts `pgpt-tui doctor` shows about the Hub."""

from __future__ import annotations

import os
import time
from typing import Any

from pgpt.runtime.hub.access import hub_endpoint, mask_credentials, shown_endpoint
from pgpt.runtime.hub.token import TokenChoice

PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "NO_PROXY", "no_proxy")
CA_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE")
# whoami's answer to a 401: a constant, so callers can tell "refused" from "unreachable".
REJECTED = "the Hub rejected this token (invalid or expired)"
ROLE_TEXT = {"read": "read token", "write": "write token",
             "fineGrained": "fine-grained token: needs 'Read access to contents of all public gated repos' "
                            "for gated models"}


def whoami(token: TokenChoice, timeout: float = 5.0) -> dict[str, Any]:
    """``{"user", "role", "role_text"}`` from the Hub, or ``{"whoami_error": ...}`` (never the token)."""
    from huggingface_hub.utils import build_hf_headers, get_session

    try:
        response = get_session().get(f"{hub_endpoint()}/api/whoami-v2", timeout=timeout,
                                     headers=build_hf_headers(token=token.token or False))
    except OSError as exc:
        return {"whoami_error": unreachable_reason(exc)}
    if response.status_code == 401:
        return {"whoami_error": REJECTED}
    if response.status_code != 200:
        return {"whoami_error": f"HTTP {response.status_code}"}
    body = response.json()
    role = str(body.get("auth", {}).get("accessToken", {}).get("role", ""))
    return {"user": body.get("name", ""), "role": role, "role_text": ROLE_TEXT.get(role, role or "unknown role")}


def unreachable_reason(error: BaseException) -> str:
    """Why the Hub did not answer, in words: offline mode, the proxy, a timeout, or refused."""
    name = type(error).__name__
    if name == "OfflineModeIsEnabled":  # a setting, not a network fault
        value = os.environ.get("HF_HUB_OFFLINE", "1").strip()  # as set: "ON" was quoted as "1"
        return f"offline mode is on (HF_HUB_OFFLINE={value}), so the Hub was not asked"
    scheme = hub_endpoint().partition(":")[0].lower()  # the proxy variable that applies to it
    proxy = next((os.environ[v] for v in (f"{scheme.upper()}_PROXY", f"{scheme}_proxy", "ALL_PROXY", "all_proxy")
                  if os.environ.get(v)), "")
    if name == "ProxyError":
        return f"the proxy {mask_proxy(proxy) or '(HTTPS_PROXY)'} did not pass the request on (ProxyError)"
    if "Timeout" in name:
        return f"{shown_endpoint()} did not answer in time ({name})" + (f" through the proxy {mask_proxy(proxy)}"
                                                                      if proxy else "")
    return f"{shown_endpoint()} could not be reached ({name})"


def mask_proxy(url: str) -> str:
    """``http://user:secret@proxy:3128`` -> ``http://user:***@proxy:3128``."""
    return mask_credentials(url)


def network_report(token: TokenChoice, timeout: float = 5.0) -> dict[str, Any]:
    """Endpoint, proxies (masked), CA bundle, whether the Hub answers and how fast."""
    report: dict[str, Any] = {"endpoint": shown_endpoint(),
                              "mirror": hub_endpoint() != "https://huggingface.co",
                              "offline (HF_HUB_OFFLINE)": os.environ.get("HF_HUB_OFFLINE", "0")}
    for name in PROXY_VARIABLES:
        if os.environ.get(name):
            report[name] = mask_proxy(os.environ[name])
    report["CA bundle"] = next((f"{n}={os.environ[n]}" for n in CA_VARIABLES if os.environ.get(n)), "system default")
    report["hub answers"] = _ping(timeout)
    if report["hub answers"].startswith("no,") and "offline mode" not in report["hub answers"]:
        # what to do about it, where the finding is shown (doctor, the app's Setup screen); with a mirror
        # set, the mirror's address first ("set HF_ENDPOINT to a mirror" was said to a user with one, t48)
        first = ("check HF_ENDPOINT (is the mirror up, its address right?) and the proxy"
                 if os.environ.get("HF_ENDPOINT") else "check the network or the proxy (HTTPS_PROXY), or set "
                 "HF_ENDPOINT to a mirror")
        report["next step"] = (f"{first}; models already here still work, and `pgpt-export FILE.gguf` or a model "
                               "folder needs no Hub")
    elif report["hub answers"].startswith("blocked?"):  # a firewall's 403 page in front of the whole Hub
        report["next step"] = ("a firewall or proxy answers for the Hub: ask IT to allow huggingface.co and its "
                               "file CDN, or use a mirror with HF_ENDPOINT")
    report["token"] = f"{token.masked} from {token.source}" if token.token else "none set"
    return report


def _ping(timeout: float) -> str:
    from huggingface_hub.utils import get_session

    started = time.monotonic()
    try:
        response = get_session().get(f"{hub_endpoint()}/api/models?limit=1", timeout=timeout,
                                     headers={"Authorization": ""})
    except OSError as exc:
        return f"no, after {time.monotonic() - started:.1f}s: {unreachable_reason(exc)}"
    verdict = "yes" if response.status_code == 200 else "blocked?" if response.status_code == 403 else "answers"
    return f"{verdict} (HTTP {response.status_code} in {time.monotonic() - started:.2f}s)"
