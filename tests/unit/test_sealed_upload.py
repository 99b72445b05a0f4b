"""A form's file part (a staff page's send list) as Werkzeug's parser spools it:
sealed, never plain text on disk (api/sealed_spool.py, api/body_limits.py)."""

import io

import pytest

from suppression.api.body_limits import ServiceRequest
from suppression.api.sealed_spool import SealedUpload


def test_a_large_upload_reaches_the_disk_sealed_and_reads_back_whole():
    upload = SealedUpload()
    data = b"".join(b"person%d@example.com\n" % n for n in range(150_000))  # over 1 MiB
    for start in range(0, len(data), 65_536):  # as the parser writes it
        upload.write(data[start : start + 65_536])
    assert upload.seek(0) == 0
    spool = upload._spool
    assert spool.spilled
    spool._flush()
    spool._file.seek(0)
    on_disk = spool._file.read()
    assert b"@example.com" not in on_disk
    assert io.BufferedReader(upload).read() == data
    assert upload.size == len(data)
    upload.close()
    assert spool._file is None


def test_it_is_read_once_from_its_start():
    upload = SealedUpload()
    upload.write(b"email\n")
    upload.seek(0)
    with pytest.raises(io.UnsupportedOperation):
        upload.write(b"more")
    with pytest.raises(io.UnsupportedOperation):
        upload.seek(0)
    assert upload.read() == b"email\n"


def test_the_apps_requests_spool_file_parts_sealed():
    request = ServiceRequest({"REQUEST_METHOD": "POST", "wsgi.input": io.BytesIO()})
    assert isinstance(request._get_file_stream(10_000_000, "text/csv", "l.csv"), SealedUpload)
