"""Hub errors: the exception types, token-free messages for failed Hub calls, one try per user action."""
from __future__ import annotations

import contextlib
import contextvars
from dataclasses import dataclass
from typing import Any

from pipeline.generate import ModelUnavailable

_SINGLE_TRY: contextvars.ContextVar[bool] = contextvars.ContextVar("hub_single_try", default=False)


class HubError(RuntimeError):
    """A Hub operation failed; the message is safe to show (it never contains the token)."""


class HubAuthError(HubError):
    """No usable token: the user is not signed in and ``$HF_TOKEN`` is not set."""


class HubUnavailable(ModelUnavailable):
    """The Hub cannot be reached (offline mode or no connection) and nothing usable is cached."""


class HubRateLimited(HubError):
    """The Hub answered 429; ``retry_after`` is its Retry-After in seconds, when it sent one."""

    def __init__(self, message: str, retry_after: int | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class LoraNotFound(ModelUnavailable):
    """A LoRA reference points at no usable weights (missing folder/file, repo without weights)."""


def _scrub(text: str, token: str | None) -> str:
    return text.replace(token, "***") if token else text


@dataclass(frozen=True)
class _Failure:
    """What a failed Hub call amounts to: an HTTP status (with Retry-After) or no connection."""

    status: int | None = None
    retry_after: int | None = None
    unreachable: bool = False


def _network_types() -> tuple[type[BaseException], ...]:
    types: tuple[type[BaseException], ...] = (ConnectionError, TimeoutError)
    try:
        import httpx2

        types += (httpx2.TransportError,)
    except ImportError:  # pragma: no cover
        pass
    return types


def _classify(exc: BaseException) -> _Failure | None:
    """Walk the cause chain (snapshot_download wraps HTTP and connection errors in
    LocalEntryNotFoundError) for the first HTTP response or connection failure."""
    from huggingface_hub.errors import HfHubHTTPError

    network = _network_types()
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, HfHubHTTPError):
            response = getattr(current, "response", None)
            status = getattr(response, "status_code", None)
            if status is not None:
                return _Failure(status=int(status), retry_after=_retry_after(response))
        if isinstance(current, network):
            return _Failure(unreachable=True)
        current = current.__cause__ or current.__context__
    return None


def _retry_after(response: Any) -> int | None:
    value = (getattr(response, "headers", None) or {}).get("retry-after")
    try:
        return max(0, int(str(value).strip())) if value is not None else None
    except ValueError:  # an HTTP date: not worth parsing for a message
        return None


def _endpoint_host(api: Any = None) -> str:
    from urllib.parse import urlparse

    from huggingface_hub import constants

    endpoint = getattr(api, "endpoint", None) or constants.ENDPOINT
    return urlparse(str(endpoint)).netloc or "huggingface.co"


def _failure_error(failure: _Failure, doing: str, host: str, what: str = "that repo") -> Exception:
    """The specific, token-free message for a classified failure (one per status)."""
    if failure.unreachable:
        return HubUnavailable(f"Cannot {doing}: cannot reach the Hugging Face Hub ({host}). Check the internet "
                              "connection and try again later.")
    status = failure.status
    if status == 401:
        return HubAuthError(f"Cannot {doing}: the Hub did not accept your sign-in (HTTP 401: the token is "
                            "invalid or expired). Sign in again with Hugging Face.")
    if status == 403:
        return HubAuthError(f"Cannot {doing}: this sign-in has no write access to {what} or its "
                            "organisation (HTTP 403). Sign in with an account (or token) that has write "
                            "access, or pick a repo in your own namespace.")
    if status == 404:
        return HubError(f"Cannot {doing}: repo not found on the Hub (HTTP 404). Check the name, or sign in "
                        "with an account that can see it.")
    if status == 429:
        wait = (f"try again in {failure.retry_after} s" if failure.retry_after is not None
                else "wait a minute and try again")
        return HubRateLimited(f"Cannot {doing}: the Hub is rate limiting requests (HTTP 429); {wait}.",
                              failure.retry_after)
    return HubError(f"Cannot {doing}: the Hub answered HTTP {status}. Try again later.")


def _translate(exc: Exception, secret: str | None, doing: str, api: Any = None) -> Exception:
    """A token-free, actionable error for a failed Hub call."""
    from huggingface_hub.errors import LocalEntryNotFoundError, LocalTokenNotFoundError, OfflineModeIsEnabled

    if isinstance(exc, LocalTokenNotFoundError):
        return HubAuthError(f"Cannot {doing}: not signed in. Sign in with Hugging Face (or set HF_TOKEN).")
    failure = _classify(exc)
    if failure is not None:
        return _failure_error(failure, doing, _endpoint_host(api))
    if isinstance(exc, (OfflineModeIsEnabled, LocalEntryNotFoundError)):
        return HubUnavailable(f"Cannot {doing}: the Hub is unreachable. Go online and try again.")
    return HubError(f"Cannot {doing}: {_scrub(f'{type(exc).__name__}: {exc}', secret)}")


@contextlib.contextmanager
def _single_try():
    """One try per user action: while active, a 429 is raised at once instead of being retried.

    huggingface_hub retries uploads on 429 (up to 5 times, honouring Retry-After) inside
    ``http_backoff``. For a button press that is a hidden wait or a retry storm; the user gets the
    rate-limit message with the wait instead. Implemented as a response hook on the shared client,
    gated by a context variable, so other callers in the process keep the library's behaviour.
    """
    from huggingface_hub.utils import get_session

    client = get_session()
    hooks = client.event_hooks
    if _raise_rate_limited not in hooks.get("response", []):
        hooks.setdefault("response", []).append(_raise_rate_limited)
        client.event_hooks = hooks
    token = _SINGLE_TRY.set(True)
    try:
        yield
    finally:
        _SINGLE_TRY.reset(token)


def _raise_rate_limited(response) -> None:
    if _SINGLE_TRY.get() and response.status_code == 429:
        from huggingface_hub.utils import hf_raise_for_status

        response.read()
        hf_raise_for_status(response)
