"""Credentials, channels and error mapping shared by the STT and the TTS."""

from __future__ import annotations

import ipaddress
import json
import logging
import os
from typing import Any

import grpc
import grpc.aio

from google.api_core import exceptions as gexc
from livekit.agents.exceptions import (
    APIAuthenticationError,
    APIConnectionError,
    APIError,
    APIResponseError,
    APIStatusError,
    APITimeoutError,
    MissingCredentialsError,
)

SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
CREDENTIALS_ENV = "GOOGLE_APPLICATION_CREDENTIALS"
_HOW = (
    "set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file, run "
    "`gcloud auth application-default login`, or pass credentials_file=... or credentials=..."
)


class GoogleCredentialsError(MissingCredentialsError):
    """No Google credentials were given and application default credentials found none."""

    def __init__(self, service: str, reason: str = "") -> None:
        super().__init__(service, CREDENTIALS_ENV, argument="credentials_file")
        msg = f"{service}: no Google Cloud credentials ({reason or 'none found'}); {_HOW}"
        self.args = (msg,)


def resolve_credentials(
    service: str, credentials: Any = None, credentials_file: str | os.PathLike[str] | None = None
) -> Any:
    """Explicit credentials, else a key file, else application default credentials."""
    import google.auth
    from google.auth import exceptions as auth_exc

    if credentials is not None:
        return credentials
    if credentials_file is not None:
        path = os.fspath(credentials_file)
        if not os.path.isfile(path):
            raise GoogleCredentialsError(service, f"credentials_file {path!r} does not exist")
        try:
            with open(path, encoding="utf-8") as fh:
                kind = json.load(fh).get("type")
        except (OSError, ValueError, AttributeError) as exc:
            raise GoogleCredentialsError(service, f"credentials_file {path!r} is not a JSON key file: {exc}") from None
        try:
            if kind == "service_account":
                from google.oauth2 import service_account

                return service_account.Credentials.from_service_account_file(path, scopes=list(SCOPES))
            if kind == "authorized_user":
                import google.oauth2.credentials

                return google.oauth2.credentials.Credentials.from_authorized_user_file(path, scopes=list(SCOPES))
            creds, _ = google.auth.load_credentials_from_file(path, scopes=list(SCOPES))
        except (auth_exc.GoogleAuthError, ValueError, KeyError) as exc:
            raise GoogleCredentialsError(service, f"credentials_file {path!r} is not usable: {exc}") from None
        return creds
    try:
        creds, _ = google.auth.default(scopes=list(SCOPES))
    except auth_exc.DefaultCredentialsError as exc:
        reason = "application default credentials not found"
        if os.environ.get(CREDENTIALS_ENV):
            reason = f"{CREDENTIALS_ENV} is set but unusable: {str(exc).splitlines()[0][:200]}"
        raise GoogleCredentialsError(service, reason) from None
    return creds


def is_loopback(endpoint: str) -> bool:
    host = endpoint.rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def insecure_channel(endpoint: str, credentials: Any = None) -> grpc.aio.Channel:
    """A plaintext channel to ``endpoint`` (an emulator or a test server).

    Credentials, when given, are sent only to a loopback endpoint (gRPC local channel
    credentials, which refuse any other peer); elsewhere the channel is anonymous.
    """
    if credentials is not None and is_loopback(endpoint):
        import google.auth.transport.grpc
        import google.auth.transport.requests

        call_creds = grpc.metadata_call_credentials(
            google.auth.transport.grpc.AuthMetadataPlugin(credentials, google.auth.transport.requests.Request())
        )
        local = grpc.local_channel_credentials(grpc.LocalConnectionType.LOCAL_TCP)
        return grpc.aio.secure_channel(endpoint, grpc.composite_channel_credentials(local, call_creds))
    if credentials is not None:
        logging.getLogger("livekit.plugins.google").warning(
            "insecure=True with a non-loopback endpoint %s: credentials are not sent over plaintext", endpoint
        )
    return grpc.aio.insecure_channel(endpoint)


def retry_delay(exc: BaseException) -> float | None:
    """Seconds from a ``google.rpc.RetryInfo`` error detail, if the service sent one."""
    from google.rpc import error_details_pb2, status_pb2

    details = getattr(exc, "details", None)  # a list on api_core errors, a method on grpc errors
    for detail in details if isinstance(details, (list, tuple)) else ():
        if isinstance(detail, error_details_pb2.RetryInfo):
            return detail.retry_delay.seconds + detail.retry_delay.nanos / 1e9
    call = getattr(exc, "response", None) or (exc if isinstance(exc, grpc.aio.AioRpcError) else None)
    trailing = getattr(call, "trailing_metadata", None)
    try:
        metadata = trailing() if callable(trailing) else None
    except Exception:
        metadata = None
    for key, value in metadata or ():
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
            for any_ in status.details:
                info = error_details_pb2.RetryInfo()
                if any_.Unpack(info):
                    return info.retry_delay.seconds + info.retry_delay.nanos / 1e9
    return None


_HTTP = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}
_RETRYABLE = {grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN}


def status_of(exc: BaseException) -> tuple[grpc.StatusCode | None, str]:
    if isinstance(exc, gexc.GoogleAPICallError):
        code = exc.grpc_status_code
        return code, str(exc.message)
    if isinstance(exc, grpc.aio.AioRpcError) or isinstance(exc, grpc.RpcError):
        code = exc.code() if callable(getattr(exc, "code", None)) else None
        details = exc.details() if callable(getattr(exc, "details", None)) else ""
        return code, str(details or "")
    return None, str(exc)


def map_error(exc: BaseException, service: str, what: str) -> APIError:
    """A core API error for a Google client error (the message never holds credentials)."""
    if isinstance(exc, APIError):
        return exc
    if isinstance(exc, gexc.RetryError):
        return APITimeoutError(f"{service}: {what} did not finish in time")
    code, message = status_of(exc)
    if code is None:
        if isinstance(exc, (ConnectionError, OSError)):
            return APIConnectionError(f"{service}: cannot reach the service while {what}: {exc}")
        return APIConnectionError(f"{service}: {what} failed: {type(exc).__name__}: {message}")
    http = _HTTP.get(code, 500)
    if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
        return APIAuthenticationError(
            f"{service} refused the credentials while {what} ({code.name}: {message}); {_HOW}",
            status_code=http,
        )
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return APITimeoutError(f"{service}: {what} timed out ({message})")
    if code == grpc.StatusCode.UNAVAILABLE and "deserializ" not in message.lower():
        return APIStatusError(f"{service} is unavailable while {what}: {message}", status_code=503)
    if code == grpc.StatusCode.INTERNAL and "deserializ" in message.lower():
        return APIResponseError(f"{service} sent a malformed answer while {what}: {message}")
    return APIStatusError(
        f"{service} failed while {what}: {code.name}: {message}",
        status_code=http,
        retry_after=retry_delay(exc),
        retryable=code in _RETRYABLE,
    )


def client_options(endpoint: str | None) -> Any:
    from google.api_core.client_options import ClientOptions

    return ClientOptions(api_endpoint=endpoint) if endpoint else None


class ClientSource:
    """Credentials and endpoint of one Google service client, and the client itself,
    created on first use (in the running event loop): from a ready ``transport``, over an
    insecure channel to a loopback ``endpoint``, or the usual secure way."""

    def __init__(
        self,
        service: str,
        *,
        credentials: Any,
        credentials_file: str | None,
        endpoint: str | None,
        insecure: bool,
        transport: Any,
    ) -> None:
        if (transport is None and not insecure) or credentials is not None or credentials_file is not None:
            self.credentials = resolve_credentials(service, credentials, credentials_file)
        else:
            self.credentials = None
        self.endpoint = endpoint
        self.insecure = insecure
        self.transport = transport
        self._client: Any = None

    def client(self, client_cls: Any, grpc_transport_cls: Any) -> Any:
        if self._client is None:
            if self.transport is not None:
                self._client = client_cls(transport=self.transport)
            elif self.insecure:
                assert self.endpoint is not None
                channel = insecure_channel(self.endpoint, self.credentials)
                self._client = client_cls(transport=grpc_transport_cls(channel=channel))
            else:
                self._client = client_cls(credentials=self.credentials, client_options=client_options(self.endpoint))
        return self._client

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                await client.transport.close()
            except Exception:  # already closed, or its loop is gone
                pass
