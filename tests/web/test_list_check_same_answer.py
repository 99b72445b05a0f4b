"""One check, three doors: the staff page, `suppression check` and `POST
/v1/checks.csv` answer the same file the same way, on a list that meets every
reason code of API.md (and a sendable address with and without a hint)."""

import csv
import io

import pytest
from click.testing import CliRunner
from seeding import block, record
from sqlalchemy import select
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from suppression.cli.main import main
from suppression.domain.policy import Reason
from suppression.store.models import AccessLogEntry

# The CLI opens its own engine and commits its access-log entry; an erasure
# checkpoints the WAL on a connection of its own.
pytestmark = pytest.mark.committed

LIST = (
    "email,country\n"
    "not-an-address,\n"
    "erased@example.com,\n"
    "complained@example.com,\n"
    "bounced@example.com,\n"
    "out@example.us,\n"
    "restricted@example.com,\n"
    "hans@firma.de,\n"
    "li@example.com,CA\n"
    "bob@example.com,\n"
    "joe@example.us,\n"
    " Sam@Example.com ,us\n"
)


@pytest.fixture
def settings(make_settings):
    # No country known is not sendable here, so that unknown_jurisdiction occurs.
    return make_settings(REGIME_UNKNOWN="deny")


@pytest.fixture
def seeded(client, sender, admin):
    record(client, sender, "erased@example.com", status="opted_in")
    erased = client.post(
        "/v1/subjects/erase",
        json={"email": "erased@example.com", "reason": "request"},
        headers=admin,
    )
    assert erased.status_code == 200
    block(client, sender, "complained@example.com", "complaint")
    block(client, sender, "bounced@example.com", "hard_bounce")
    record(client, sender, "out@example.us")
    block(client, sender, "restricted@example.com", "restriction")


@pytest.fixture
def cli(database_url, settings, tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("SUPPRESSION_INSTANCE", str(tmp_path / "cli-instance"))
    monkeypatch.delenv("SUPPRESSION_ENV", raising=False)
    # The test app's keys (tests/conftest.py TEST_KEYS) and policy.
    monkeypatch.setenv("ADDRESS_INDEX_KEY", "aWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWk")
    monkeypatch.setenv("ADDRESS_SEALING_KEYS", "1:c3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3M")
    monkeypatch.setenv("SECRET_KEY", "test-secret-key-that-is-long-enough-for-flask")
    monkeypatch.setenv("REGIME_UNKNOWN", "deny")
    return CliRunner()


def rows(text: str, delimiter: str = ",") -> list[list[str]]:
    return list(csv.reader(io.StringIO(text.removeprefix("\ufeff")), delimiter=delimiter))


def test_page_command_and_api_give_the_same_answer_with_every_reason(
    seeded, client, sender, sign_in, cli, tmp_path, session
):
    api = client.post("/v1/checks.csv", data=LIST, content_type="text/csv", headers=sender)
    assert api.status_code == 200
    answer = api.get_data()
    reasons = {row[2] for row in rows(answer.decode())[1:]}
    assert reasons == {reason.value for reason in Reason} | {""}

    source = tmp_path / "list.csv"
    source.write_text(LIST)
    out = tmp_path / "answer.csv"
    result = cli.invoke(main, ["check", str(source), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == answer
    assert "11 rows: 2 sendable, 9 suppressed" in result.output

    staff, token = sign_in("sam", "staff")
    fields = {
        "csrf_token": token,
        "purpose": "email_marketing",
        "list": FileStorage(io.BytesIO(LIST.encode()), "list.csv", content_type="text/csv"),
    }
    boundary, body = encode_multipart(fields)
    posted = staff.post(
        "/admin/checks", data=body, content_type=f"multipart/form-data; boundary={boundary}"
    )
    assert posted.status_code == 303
    full = staff.get("/admin/checks/result/full.csv").get_data(as_text=True)
    assert rows(full) == rows(answer.decode())  # nothing here starts like a formula
    cleaned = staff.get("/admin/checks/result/cleaned.csv").get_data(as_text=True)
    assert rows(cleaned) == [["email"], ["joe@example.us"], [" Sam@Example.com "]]

    entries = session.scalars(select(AccessLogEntry).order_by(AccessLogEntry.id)).all()
    assert [(e.channel, e.action, e.purpose, e.row_count) for e in entries] == [
        ("cli", "list_check", "email_marketing", 11),
        ("page", "list_check", "email_marketing", 11),
    ]


def test_the_command_reads_standard_input_and_filters_like_the_api(
    seeded, client, sender, cli, tmp_path
):
    for only in ("sendable", "suppressed"):
        api = client.post(
            f"/v1/checks.csv?only={only}", data=LIST, content_type="text/csv", headers=sender
        )
        out = tmp_path / f"{only}.csv"
        result = cli.invoke(main, ["check", "-", "--only", only, "-o", str(out)], input=LIST)
        assert result.exit_code == 0, result.output
        assert out.read_bytes() == api.get_data()


def test_the_command_leaves_no_half_answer_and_names_the_bad_lines(cli, tmp_path):
    out = tmp_path / "answer.csv"
    result = cli.invoke(
        main,
        ["check", "-", "-o", str(out)],
        input="email,country\na@example.com,US\nb@example.com,QQ\n",
    )
    assert result.exit_code == 1
    assert "line 3: unknown country code 'QQ'" in result.output
    assert list(tmp_path.glob("*answer.csv*")) == []
    unknown = cli.invoke(main, ["check", "-", "--purpose", "nope"], input="email\n")
    assert unknown.exit_code == 1
    assert "unknown purpose" in unknown.output
