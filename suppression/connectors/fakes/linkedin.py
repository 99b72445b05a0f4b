"""A fake LinkedIn Marketing API: DMP segment users, BATCH_CREATE (research §4).

Source: learn.microsoft.com/linkedin/marketing/matched-audiences/
create-and-manage-segment-users ("DMP Segment Users"), named on each rule.
"""

from __future__ import annotations

import re
from typing import Any

from werkzeug.wrappers import Request, Response

from suppression.connectors.fakes.base import FakePlatform, is_sha256_hex

_USERS = re.compile(r"^/rest/dmpSegments/(?P<segment>\d+)/users$")


def linkedin_error(status: int, message: str) -> dict[str, Any]:
    return {"status": status, "serviceErrorCode": 100, "message": message}


class FakeLinkedIn(FakePlatform):
    name = "linkedin"

    def __init__(
        self,
        access_token: str = "linkedin-test-token",
        segment_ids: tuple[str, ...] = ("880001",),
        version: str = "202603",
        **options: Any,
    ):
        super().__init__(**options)
        self.access_token = access_token
        self.segments: set[str] = set(segment_ids)
        self.version = version
        self.removed: dict[str, set[str]] = {s: set() for s in segment_ids}
        self.added: dict[str, set[str]] = {s: set() for s in segment_ids}
        self.reject_hashes: set[str] = set()  # answered with a per-element 400
        self.batch_sizes: list[int] = []

    @property
    def base_url(self) -> str:
        return f"{self.url}/rest"

    def add_segment(self, segment_id: str) -> None:
        with self.lock:
            self.segments.add(segment_id)
            self.removed.setdefault(segment_id, set())
            self.added.setdefault(segment_id, set())

    def handle(self, request: Request) -> Response:
        if request.headers.get("Authorization") != f"Bearer {self.access_token}":
            return self.json_response(linkedin_error(401, "Invalid access token"), 401)
        headers = request.headers
        if headers.get("LinkedIn-Version") != self.version:
            return self.json_response(
                linkedin_error(426, "A valid LinkedIn-Version is required"), 426
            )
        if headers.get("X-Restli-Protocol-Version") != "2.0.0":
            return self.json_response(linkedin_error(400, "X-Restli-Protocol-Version 2.0.0"), 400)
        match = _USERS.match(request.path)
        if match is None or request.method != "POST":
            return self.json_response(linkedin_error(404, "Not found"), 404)
        if headers.get("X-RestLi-Method") != "BATCH_CREATE":
            return self.json_response(linkedin_error(400, "X-RestLi-Method BATCH_CREATE"), 400)
        segment = match.group("segment")
        if segment not in self.segments:
            return self.json_response(linkedin_error(404, "No such segment"), 404)
        body = request.get_json(silent=True)
        elements = body.get("elements") if isinstance(body, dict) else None
        # BATCH_CREATE takes a list of elements; the page documents no upper limit
        # on their number, so the fake enforces none (it records each batch size).
        if not isinstance(elements, list) or not elements:
            return self.json_response(linkedin_error(400, "elements: at least one"), 400)
        answers = []
        with self.lock:
            self.batch_sizes.append(len(elements))
            for element in elements:
                answers.append(self._element(segment, element))
        return self.json_response({"elements": answers})

    def _element(self, segment: str, element: Any) -> dict[str, Any]:
        if not isinstance(element, dict) or element.get("action") not in ("ADD", "REMOVE"):
            return {"status": 400, "message": "action must be ADD or REMOVE"}
        ids = element.get("userIds")
        if not isinstance(ids, list) or not ids:
            return {"status": 400, "message": "userIds is required"}
        values = []
        for user_id in ids:
            if (user_id or {}).get("idType") != "SHA256_EMAIL" or not is_sha256_hex(
                user_id.get("idValue")
            ):
                return {"status": 400, "message": "idValue must be SHA256_EMAIL hex"}
            values.append(user_id["idValue"])
        if any(v in self.reject_hashes for v in values):
            return {"status": 400, "message": "The user id was rejected"}
        target = self.removed if element["action"] == "REMOVE" else self.added
        target[segment].update(values)
        return {"status": 201}
