"""Reading downloads back in tests: a streamed CSV as rows of text, an XLSX as rows of cell values (openpyxl)."""

import csv
import io

import openpyxl

CSV_TYPE = "text/csv; charset=utf-8"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def body(response) -> bytes:
    assert response.status_code == 200, (response.status_code, getattr(response, "content", b"")[:300])
    # The test client closes the response (and the XLSX temporary file) once its content has been read.
    return b"".join(response.streaming_content)


def csv_rows(response) -> list[list[str]]:
    """Every line of a CSV download, the header first; it must start with the UTF-8 byte order mark."""
    assert response["Content-Type"] == CSV_TYPE
    assert response["Content-Disposition"].startswith("attachment; filename=")
    data = body(response)
    assert data.startswith("\ufeff".encode()), data[:10]
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))


def xlsx_book(response):
    assert response["Content-Type"] == XLSX_TYPE
    assert response["Content-Disposition"].startswith("attachment; filename=")
    return openpyxl.load_workbook(io.BytesIO(body(response)))


def xlsx_rows(response, sheet: int = 0) -> list[list]:
    """Every row of a sheet of an XLSX download as cell values, the header first (None for empty cells)."""
    book = xlsx_book(response)
    return [list(row) for row in book.worksheets[sheet].iter_rows(values_only=True)]


def column(rows: list[list], header: str) -> list:
    """The values under `header` (the header row excluded)."""
    i = rows[0].index(header)
    return [row[i] for row in rows[1:]]
