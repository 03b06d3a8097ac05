"""Runs a case's calls (``../shared/cases/*/steps.json``) against the engine, through the API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from lifecycle import clock
from lifecycle.api.app import create_app
from lifecycle.delivery.models import Message
from lifecycle.delivery.providers.outbox import RecordingProvider
from lifecycle.profiles.service import find_profile
from lifecycle.runtime import Runtime
from tests.conftest import CASES, publish_directory
from tests.support import ADMIN_AUTH, WRITE_AUTH, InlineJobs, at


def case_dir(name: str) -> Path:
    matches = sorted(CASES.glob(f"{name}-*"))
    if not matches:
        pytest.skip(f"case {name} not found under {CASES}")
    return matches[0]


def script_provider(recorder: RecordingProvider, path: Path, channel: str = "email") -> None:
    """Load a case's provider-responses.json into the recording provider."""
    spec = json.loads(path.read_text())[channel]
    for recipient, answers in spec.get("per_recipient", {}).items():
        script: list[tuple[str, str, str] | None] = []
        for answer in answers:
            status = answer["status"]
            if status < 300:
                script.append(None)
                continue
            error = answer["body"]["Error"]
            kind = "transient" if status == 429 or status >= 500 else "permanent"
            script.append((kind, error["Code"], error["Message"]))
        recorder.script(recipient, script)


class Case:
    def __init__(self, runtime: Runtime, inline: InlineJobs, recorder: RecordingProvider) -> None:
        self.runtime = runtime
        self.inline = inline
        self.recorder = recorder
        self.client = TestClient(create_app(runtime))

    def write(self, root: Path, campaign: str, templates: dict[str, str]) -> None:
        (root / "campaigns").mkdir(exist_ok=True)
        (root / "campaigns" / "case.yaml").write_text(campaign)
        for name, text in templates.items():
            path = root / "templates" / f"{name}.j2"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)

    def publish(self, root: Path) -> None:
        publish_directory(self.runtime, root / "campaigns")

    def call(
        self, step: dict[str, Any], *, message_ids: dict[str, dict[str, int]] | None = None
    ) -> Any:
        clock.set_now(at(step["at"]))
        body = dict(step["body"])
        if message_ids and "properties" in body:
            body["properties"] = {
                k: message_ids[body["userId"]][v[1:]]
                if isinstance(v, str) and v.startswith("@")
                else v
                for k, v in body["properties"].items()
            }
        response = self.client.post(f"/v1/{step['call']}", json=body, headers=WRITE_AUTH)
        assert response.status_code == 200, response.text
        self.inline.drain()
        return response.json()

    def add_member(self, campaign: str, user: str, when: str) -> None:
        clock.set_now(at(when))
        response = self.client.post(
            f"/v1/campaigns/{campaign}/members", json={"profile": f"id:{user}"}, headers=ADMIN_AUTH
        )
        assert response.status_code == 201, response.text
        self.inline.drain()

    def remove_member(self, campaign: str, user: str, when: str) -> None:
        clock.set_now(at(when))
        response = self.client.delete(
            f"/v1/campaigns/{campaign}/members/id:{user}", headers=ADMIN_AUTH
        )
        assert response.status_code == 200, response.text
        self.inline.drain()

    def messages(self, user: str) -> list[Message]:
        with self.runtime.session() as session:
            profile = find_profile(session, f"id:{user}")
            return list(
                session.scalars(
                    select(Message).where(Message.profile_id == profile.id).order_by(Message.id)
                )
            )

    def templates_sent(self, user: str) -> list[str]:
        return [m.template for m in self.messages(user) if m.status == "sent"]


def steps(case: Path) -> list[dict[str, Any]]:
    return json.loads((case / "steps.json").read_text())
