"""Real delivery providers against local stand-ins: moto (SES), aiosmtpd (SMTP) and a
loopback HTTP fake (Twilio); plus the settings-driven registry. No network."""

from __future__ import annotations

import email
import email.policy
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import boto3
import pytest
from aiosmtpd.controller import Controller
from botocore.config import Config
from botocore.stub import Stubber
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends

from lifecycle.config import Settings
from lifecycle.delivery.providers.base import Outgoing, PermanentError, TransientError
from lifecycle.delivery.providers.outbox import OutboxProvider
from lifecycle.delivery.providers.registry import build_providers
from lifecycle.delivery.providers.ses import SesProvider
from lifecycle.delivery.providers.smtp import SmtpProvider, message_id_for
from lifecycle.delivery.providers.twilio_sms import RedirectingHttpClient, TwilioProvider

REGION = "us-east-1"


def email_message(**overrides: Any) -> Outgoing:
    values: dict[str, Any] = {
        "message_id": 42,
        "idempotency_key": "journey:7:step:2:profile:99",
        "channel": "email",
        "to": "ada@example.org",
        "sender": "Shop <hello@example.com>",
        "subject": "Your cart misses you",
        "body": "<p>Come <b>back</b></p>",
        "text": "Come back",
    }
    values.update(overrides)
    return Outgoing(**values)


def sms_message(**overrides: Any) -> Outgoing:
    values: dict[str, Any] = {
        "message_id": 7,
        "idempotency_key": "k-sms-7",
        "channel": "sms",
        "to": "+14155550100",
        "sender": "+15005550006",
        "body": "Your code is 1234",
    }
    values.update(overrides)
    return Outgoing(**values)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --------------------------------------------------------------------------- SES


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)


def test_ses_sends_through_moto(aws_env: None) -> None:
    with mock_aws():
        client = boto3.client("sesv2", region_name=REGION)
        client.create_email_identity(EmailIdentity="hello@example.com")
        provider = SesProvider(client, region=REGION)

        message_id = provider.send(email_message())

        sent = ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages
        assert [m.id for m in sent] == [message_id]
        assert sent[0].source == "Shop <hello@example.com>"
        assert sent[0].destinations == {"ToAddresses": ["ada@example.org"]}
        assert sent[0].subject == "Your cart misses you"
        assert sent[0].body == "<p>Come <b>back</b></p>"


def test_ses_builds_its_own_client_from_region(aws_env: None) -> None:
    with mock_aws():
        boto3.client("sesv2", region_name="eu-west-1").create_email_identity(
            EmailIdentity="example.com"
        )
        provider = SesProvider(region="eu-west-1")
        message_id = provider.send(email_message())
        sent = ses_backends[DEFAULT_ACCOUNT_ID]["eu-west-1"].sent_messages
        assert [m.id for m in sent] == [message_id]


def test_ses_unverified_sender_is_permanent(aws_env: None) -> None:
    with mock_aws():
        provider = SesProvider(boto3.client("sesv2", region_name=REGION), region=REGION)
        with pytest.raises(PermanentError) as info:
            provider.send(email_message())
        assert info.value.code == "MessageRejected"


def test_ses_request_shape() -> None:
    provider = SesProvider(object(), region=REGION, configuration_set="marketing")
    request = provider.build_request(
        email_message(text=None, headers={"List-Unsubscribe": "<https://x/u>", "To": "no"})
    )
    assert request["FromEmailAddress"] == "Shop <hello@example.com>"
    assert request["Destination"] == {"ToAddresses": ["ada@example.org"]}
    assert request["ConfigurationSetName"] == "marketing"
    simple = request["Content"]["Simple"]
    assert simple["Subject"]["Data"] == "Your cart misses you"
    assert set(simple["Body"]) == {"Html"}
    assert simple["Headers"] == [{"Name": "List-Unsubscribe", "Value": "<https://x/u>"}]


@pytest.mark.parametrize(
    ("code", "status", "kind"),
    [
        ("Throttling", 400, TransientError),
        ("TooManyRequestsException", 429, TransientError),
        ("SendingPausedException", 400, TransientError),
        ("SomethingNew", 503, TransientError),
        ("SomethingNew", 429, TransientError),
        ("MessageRejected", 400, PermanentError),
        ("MailFromDomainNotVerifiedException", 400, PermanentError),
        ("AccountSuspendedException", 400, PermanentError),
        ("NotFoundException", 404, PermanentError),
    ],
)
def test_ses_client_errors_are_classified(
    aws_env: None, code: str, status: int, kind: type[Exception]
) -> None:
    client = boto3.client("sesv2", region_name=REGION)
    provider = SesProvider(client, region=REGION)
    with Stubber(client) as stubber:
        stubber.add_client_error(
            "send_email",
            service_error_code=code,
            service_message=f"{code} happened",
            http_status_code=status,
        )
        with pytest.raises(kind) as info:
            provider.send(email_message())
        stubber.assert_no_pending_responses()
    assert info.value.code == code  # type: ignore[attr-defined]
    assert info.value.message == f"{code} happened"  # type: ignore[attr-defined]


def test_ses_unreachable_endpoint_is_transient(aws_env: None) -> None:
    client = boto3.client(
        "sesv2",
        region_name=REGION,
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        config=Config(connect_timeout=2, read_timeout=2, retries={"total_max_attempts": 1}),
    )
    provider = SesProvider(client, region=REGION)
    with pytest.raises(TransientError) as info:
        provider.send(email_message())
    assert info.value.code == "EndpointConnectionError"


# -------------------------------------------------------------------------- SMTP


class RecordingHandler:
    def __init__(self, rcpt_reply: str | None = None) -> None:
        self.rcpt_reply = rcpt_reply
        self.envelopes: list[tuple[str, list[str], bytes]] = []

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted for delivery"


@contextmanager
def smtp_server(handler: RecordingHandler) -> Iterator[int]:
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, ready_timeout=5)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


def test_smtp_delivers_multipart_message() -> None:
    handler = RecordingHandler()
    with smtp_server(handler) as port:
        provider = SmtpProvider("127.0.0.1", port, timeout=5)
        message = email_message(headers={"List-Unsubscribe": "<https://x/u>"})
        returned = provider.send(message)

    assert returned == message_id_for(message)
    assert len(handler.envelopes) == 1
    mail_from, rcpt_tos, content = handler.envelopes[0]
    assert mail_from == "hello@example.com"
    assert rcpt_tos == ["ada@example.org"]
    parsed = email.message_from_bytes(content, policy=email.policy.default)
    assert parsed["From"] == "Shop <hello@example.com>"
    assert parsed["To"] == "ada@example.org"
    assert parsed["Subject"] == "Your cart misses you"
    assert parsed["Message-ID"] == returned
    assert parsed["List-Unsubscribe"] == "<https://x/u>"
    assert parsed.get_content_type() == "multipart/alternative"
    plain = parsed.get_body(preferencelist=("plain",))
    html = parsed.get_body(preferencelist=("html",))
    assert plain is not None and plain.get_content().strip() == "Come back"
    assert html is not None and html.get_content().strip() == "<p>Come <b>back</b></p>"


def test_smtp_message_id_is_stable_per_idempotency_key() -> None:
    a = message_id_for(email_message())
    assert a == message_id_for(email_message())
    assert a != message_id_for(email_message(idempotency_key="other"))
    assert a.startswith("<") and a.endswith("@example.com>")


def test_smtp_550_on_rcpt_is_permanent() -> None:
    with (
        smtp_server(RecordingHandler("550 5.1.1 no such user")) as port,
        pytest.raises(PermanentError) as info,
    ):
        SmtpProvider("127.0.0.1", port, timeout=5).send(email_message())
    assert info.value.code == "550"
    assert "no such user" in info.value.message


def test_smtp_451_on_rcpt_is_transient() -> None:
    with (
        smtp_server(RecordingHandler("451 4.3.0 try later")) as port,
        pytest.raises(TransientError) as info,
    ):
        SmtpProvider("127.0.0.1", port, timeout=5).send(email_message())
    assert info.value.code == "451"
    assert "try later" in info.value.message


def test_smtp_closed_port_is_transient() -> None:
    with pytest.raises(TransientError) as info:
        SmtpProvider("127.0.0.1", free_port(), timeout=5).send(email_message())
    assert info.value.code == "connection_refused"


# ------------------------------------------------------------------------ Twilio

SID = "AC" + "0" * 32


@dataclass
class FakeTwilio:
    """Scripted answers (status, JSON body) used in order, the last one repeating."""

    base_url: str
    answers: list[tuple[int, dict[str, Any]]]
    requests: list[dict[str, Any]] = field(default_factory=list)


@contextmanager
def fake_twilio(answers: list[tuple[int, dict[str, Any]]]) -> Iterator[FakeTwilio]:
    state = FakeTwilio(base_url="", answers=answers)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            with lock:
                state.requests.append(
                    {"path": self.path, "form": form, "auth": self.headers.get("Authorization")}
                )
                status, body = state.answers[min(len(state.requests), len(state.answers)) - 1]
            if self.path != f"/2010-04-01/Accounts/{SID}/Messages.json":
                status, body = 404, {"code": 20404, "message": "not found", "status": 404}
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def created(form_to: str = "+14155550100") -> dict[str, Any]:
    return {
        "sid": "SM" + "a" * 32,
        "account_sid": SID,
        "to": form_to,
        "from": "+15005550006",
        "body": "Your code is 1234",
        "status": "queued",
        "num_segments": "1",
        "direction": "outbound-api",
        "api_version": "2010-04-01",
        "date_created": "Mon, 01 Jan 2024 00:00:00 +0000",
        "uri": f"/2010-04-01/Accounts/{SID}/Messages/SM{'a' * 32}.json",
    }


def test_twilio_sends_to_base_url() -> None:
    with fake_twilio([(201, created())]) as fake:
        provider = TwilioProvider(SID, "token", base_url=fake.base_url)
        sid = provider.send(sms_message())

    assert sid == "SM" + "a" * 32
    assert len(fake.requests) == 1
    assert fake.requests[0]["form"] == {
        "To": "+14155550100",
        "From": "+15005550006",
        "Body": "Your code is 1234",
    }
    assert fake.requests[0]["auth"].startswith("Basic ")


def test_twilio_messaging_service_sender() -> None:
    with fake_twilio([(201, created())]) as fake:
        provider = TwilioProvider(SID, "token", base_url=fake.base_url)
        provider.send(sms_message(sender="MG" + "1" * 32))
    assert fake.requests[0]["form"]["MessagingServiceSid"] == "MG" + "1" * 32
    assert "From" not in fake.requests[0]["form"]


@pytest.mark.parametrize(
    ("status", "body", "kind", "code"),
    [
        (
            400,
            {
                "code": 21211,
                "message": "The 'To' number is not a valid phone number.",
                "status": 400,
            },
            PermanentError,
            "21211",
        ),
        (
            400,
            {"code": 21610, "message": "Attempt to send to unsubscribed recipient", "status": 400},
            PermanentError,
            "21610",
        ),
        (
            429,
            {"code": 20429, "message": "Too Many Requests", "status": 429},
            TransientError,
            "20429",
        ),
        (400, {"code": 30001, "message": "Queue overflow", "status": 400}, TransientError, "30001"),
        (503, {"message": "Service Unavailable", "status": 503}, TransientError, "503"),
    ],
)
def test_twilio_errors_are_classified(
    status: int, body: dict[str, Any], kind: type[Exception], code: str
) -> None:
    with fake_twilio([(status, body)]) as fake:
        provider = TwilioProvider(SID, "token", base_url=fake.base_url)
        with pytest.raises(kind) as info:
            provider.send(sms_message())
    assert info.value.code == code  # type: ignore[attr-defined]
    assert info.value.message == body["message"]  # type: ignore[attr-defined]


def test_twilio_unreachable_is_transient() -> None:
    provider = TwilioProvider(SID, "token", base_url=f"http://127.0.0.1:{free_port()}", timeout=5)
    with pytest.raises(TransientError) as info:
        provider.send(sms_message())
    assert info.value.code == "ConnectionError"


def test_redirect_rewrites_only_twilio_hosts() -> None:
    client = RedirectingHttpClient("http://127.0.0.1:9/fake/")
    assert (
        client.rewrite("https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json?x=1")
        == "http://127.0.0.1:9/fake/2010-04-01/Accounts/AC1/Messages.json?x=1"
    )
    assert client.rewrite("https://api.us1.twilio.com/a") == "http://127.0.0.1:9/fake/a"
    assert client.rewrite("https://example.com/a") == "https://example.com/a"


# ---------------------------------------------------------------------- Registry


def test_registry_defaults_to_one_shared_outbox(tmp_path: Any) -> None:
    settings = Settings(outbox_path=str(tmp_path / "outbox.jsonl"), _env_file=None)
    providers = build_providers(settings)
    assert set(providers) == {"email", "sms", "push"}
    assert isinstance(providers["email"], OutboxProvider)
    assert providers["email"] is providers["sms"] is providers["push"]


def test_registry_smtp_and_twilio(tmp_path: Any) -> None:
    settings = Settings(
        email_provider="smtp",
        smtp_host="mail.internal",
        smtp_port=2525,
        smtp_username="u",
        smtp_password="p",
        smtp_starttls=True,
        sms_provider="twilio",
        twilio_account_sid=SID,
        twilio_auth_token="token",
        twilio_base_url="http://127.0.0.1:9",
        outbox_path=str(tmp_path / "outbox.jsonl"),
        _env_file=None,
    )
    providers = build_providers(settings)
    email_provider = providers["email"]
    assert isinstance(email_provider, SmtpProvider)
    assert (email_provider.host, email_provider.port) == ("mail.internal", 2525)
    assert email_provider.starttls is True
    assert email_provider.username == "u"
    assert isinstance(providers["sms"], TwilioProvider)
    assert isinstance(providers["sms"].client.http_client, RedirectingHttpClient)
    assert isinstance(providers["push"], OutboxProvider)


def test_registry_ses(aws_env: None, tmp_path: Any) -> None:
    settings = Settings(
        email_provider="ses",
        ses_region="eu-central-1",
        ses_configuration_set="tx",
        outbox_path=str(tmp_path / "outbox.jsonl"),
        _env_file=None,
    )
    providers = build_providers(settings)
    ses = providers["email"]
    assert isinstance(ses, SesProvider)
    assert ses.client.meta.region_name == "eu-central-1"
    assert ses.configuration_set == "tx"
    assert isinstance(providers["sms"], OutboxProvider)
    assert providers["sms"] is providers["push"]
