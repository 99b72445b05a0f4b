"""`suppression staff ...`: accounts for the staff pages, made as an operator would."""

import re

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from suppression.cli.main import main
from suppression.store.models import StaffUser

# The commands open an engine of their own.
pytestmark = pytest.mark.committed

PASSWORD = "an operator's long passphrase"


@pytest.fixture
def cli(app, database_url, tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("SUPPRESSION_INSTANCE", str(tmp_path / "cli-instance"))
    monkeypatch.delenv("SUPPRESSION_ENV", raising=False)
    return CliRunner()


def sign_in(client, username, password):
    page = client.get("/admin/sign-in").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    return client.post(
        "/admin/sign-in", data={"username": username, "password": password, "csrf_token": token}
    )


def test_staff_create_reads_the_password_from_stdin_and_the_account_signs_in(cli, client):
    result = cli.invoke(
        main,
        ["staff", "create", "--role", "admin", "--username", "Ada", "--password-stdin"],
        input=PASSWORD + "\n",
    )
    assert result.exit_code == 0, result.output
    assert "created admin account 'ada'" in result.output
    assert "/admin/" in result.output
    assert PASSWORD not in result.output
    assert sign_in(client, "ada", PASSWORD).status_code == 303
    assert client.get("/admin/access-log").status_code == 200


def test_staff_create_prompts_twice_for_the_password(cli, session):
    result = cli.invoke(
        main,
        ["staff", "create", "--role", "staff", "--username", "sam"],
        input=f"{PASSWORD}\n{PASSWORD}\n",
    )
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output
    user = session.scalars(select(StaffUser)).one()
    assert (user.username, user.role) == ("sam", "staff")


def test_a_short_password_is_refused_and_no_account_made(cli, session):
    result = cli.invoke(
        main,
        ["staff", "create", "--role", "staff", "--username", "sam", "--password-stdin"],
        input="short\n",
    )
    assert result.exit_code != 0
    assert "At least 12 characters" in result.output
    assert session.scalars(select(StaffUser)).first() is None


def test_a_taken_username_and_a_bad_role_are_refused(cli):
    args = ["staff", "create", "--username", "sam", "--password-stdin"]
    assert cli.invoke(main, [*args, "--role", "staff"], input=PASSWORD).exit_code == 0
    taken = cli.invoke(main, [*args, "--role", "admin"], input=PASSWORD)
    assert taken.exit_code != 0
    assert "exists already" in taken.output
    assert cli.invoke(main, [*args, "--role", "sender"], input=PASSWORD).exit_code == 2


def test_password_disable_enable_and_list(cli, client):
    create = ["staff", "create", "--role", "staff", "--username", "sam", "--password-stdin"]
    cli.invoke(main, create, input=PASSWORD)
    new = PASSWORD + " renewed"
    changed = cli.invoke(main, ["staff", "password", "sam", "--password-stdin"], input=new)
    assert changed.exit_code == 0, changed.output
    assert sign_in(client, "sam", PASSWORD).status_code == 401
    assert cli.invoke(main, ["staff", "disable", "sam"]).exit_code == 0
    assert "sam\tstaff\tdisabled" in cli.invoke(main, ["staff", "list"]).output
    assert sign_in(client, "sam", new).status_code == 401
    assert cli.invoke(main, ["staff", "enable", "sam"]).exit_code == 0
    assert sign_in(client, "sam", new).status_code == 303
    unknown = cli.invoke(main, ["staff", "disable", "nobody"])
    assert unknown.exit_code != 0
    assert "no staff account named" in unknown.output
