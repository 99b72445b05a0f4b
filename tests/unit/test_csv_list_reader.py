"""The one CSV reader of check lists (services/checks/csv_lists.py): what the API,
the staff page and `suppression check` all read a send list with."""

import io

import pytest

from suppression.domain.errors import InvalidInput, MalformedInput
from suppression.domain.policy import SENDABLE, Reason, denied
from suppression.services.checks.csv_lists import (
    CsvList,
    Tally,
    neutralise,
    result_row,
    sniff_delimiter,
)


def entries(data: bytes) -> tuple[list, CsvList]:
    listed = CsvList(io.BytesIO(data))
    return list(listed.entries()), listed


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_the_delimiter_is_sniffed_from_the_first_lines(delimiter):
    text = f"Name{delimiter}Email{delimiter}Country\nBob{delimiter}bob@example.com{delimiter}US\n"
    found, listed = entries(text.encode())
    assert found == [("bob@example.com", "US")]
    assert listed.delimiter == delimiter


def test_a_spreadsheet_export_with_bom_semicolons_and_quotes_is_read():
    text = '\ufeff"Nom";"E-mail";"email";"country"\n"Dupont; Jean";"x";" jean@example.fr ";"fr"\n'
    found, listed = entries(text.encode("utf-8"))
    # Spaces inside the cell stay: the answer echoes each address exactly as sent.
    assert found == [(" jean@example.fr ", "FR")]
    assert listed.delimiter == ";"
    assert listed.rows == 1


def test_a_single_column_list_is_read_with_a_comma():
    found, listed = entries(b"email\na@example.com\n\nb@example.com\n")
    assert found == [("a@example.com", None), ("b@example.com", None)]
    assert listed.delimiter == ","
    assert listed.rows == 2  # the blank line is no row


def test_a_delimiter_that_would_lose_the_email_column_is_not_taken():
    # A comma-separated header whose addresses hold semicolons: still commas.
    assert sniff_delimiter("email,note\na@example.com,x;y;z\nb@example.com,u;v;w\n") == ","


def test_rows_short_of_the_email_column_are_empty_addresses():
    found, _ = entries(b"name,email\nBob\n")
    assert found == [("", None)]


def test_utf8_is_required_and_the_error_names_the_line_and_the_fix():
    data = "email\nok@example.com\nj\u00f6rg@example.com\n".encode("cp1252")
    with pytest.raises(MalformedInput) as error:
        entries(data)
    assert "not UTF-8 (line 3)" in error.value.message
    assert "CSV UTF-8" in error.value.message


def test_a_utf16_file_is_named_as_such():
    with pytest.raises(MalformedInput) as error:
        entries("email\na@example.com\n".encode("utf-16"))
    assert "UTF-16" in error.value.message


def test_a_header_without_email_and_an_empty_file_are_refused():
    with pytest.raises(InvalidInput, match="no `email` column"):
        entries(b"address\na@example.com\n")
    with pytest.raises(InvalidInput, match="empty"):
        entries(b"")


def test_unknown_country_hints_are_skipped_and_named_by_line():
    found, listed = entries(b"email,country\na@example.com,US\nb@example.com,QQ\nc@x.com,\n")
    assert found == [("a@example.com", "US"), ("c@x.com", None)]
    with pytest.raises(InvalidInput) as error:
        listed.raise_errors()
    assert error.value.errors["csv"] == {"3": ["unknown country code 'QQ'"]}


def test_a_quoted_cell_may_hold_a_line_break_beyond_the_sniffed_sample():
    head = "email,country\n" + "".join(f"u{n}@example.com,US\n" for n in range(5000))
    found, _ = entries((head + '"two\nlines@example.com",US\n').encode())
    assert len(found) == 5001
    assert found[-1] == ("two\nlines@example.com", "US")


class Trickle(io.RawIOBase):
    """A body arriving in small pieces; counts what was read."""

    def __init__(self, data: bytes, piece: int = 4096):
        self.data, self.piece, self.read_bytes = data, piece, 0

    def readable(self):
        return True

    def readinto(self, buffer):
        chunk = self.data[self.read_bytes : self.read_bytes + min(self.piece, len(buffer))]
        buffer[: len(chunk)] = chunk
        self.read_bytes += len(chunk)
        return len(chunk)


def test_entries_stream_as_the_body_arrives_not_after_it():
    data = b"email\n" + b"".join(b"user%d@example.com\n" % n for n in range(200_000))
    body = Trickle(data)
    first = next(CsvList(io.BufferedReader(body)).entries())
    assert first == ("user0@example.com", None)
    assert body.read_bytes < len(data) // 10  # the sample and a buffer, not the list


@pytest.mark.parametrize(
    ("cell", "written"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+1@example.com", "'+1@example.com"),
        ("-2@example.com", "'-2@example.com"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx@example.com", "'\tx@example.com"),
        ("\rx@example.com", "'\rx@example.com"),
        ("bob@example.com", "bob@example.com"),
        ("a=b@example.com", "a=b@example.com"),
        ("", ""),
    ],
)
def test_cells_a_spreadsheet_would_run_are_quoted_as_text(cell, written):
    assert neutralise(cell) == written


def test_result_rows_and_the_tally_follow_the_decisions():
    tally = Tally()
    for decision in (SENDABLE, denied(Reason.EEA), denied(Reason.EEA), denied(Reason.INVALID)):
        tally.add(decision)
    assert (tally.total, tally.sendable, tally.suppressed) == (4, 1, 3)
    assert tally.reasons == {"eea": 2, "invalid": 1}
    assert result_row("a@x.com", SENDABLE) == ("a@x.com", "true", "")
    assert result_row("b", denied(Reason.INVALID)) == ("b", "false", "invalid")
