"""Read the review's CSV sheets and validate them against a JSON schema, row by row.

Validation itself is jsonschema's; this module only turns text cells into JSON values and
turns the first violation into a :class:`~singlearm.errors.DataError` that names file, row,
column, value and what the schema's column ``description`` says was expected.
"""

import csv
import difflib
import io
import itertools
import math
from pathlib import Path

import jsonschema
import pandas as pd
import yaml

from .configcheck import YAML_LOADER
from .errors import DataError

_UTF16_32_BOMS = (b"\xff\xfe", b"\xfe\xff")
ROW_COLUMN = "source_row"  # spreadsheet row number of each data row (header = row 1)
# Python's csv module refuses longer fields; we read them anyway so the message can name the column.
MAX_CELL = 131_072
# 'nan' and 'inf' parse as floats, but a sheet cell holding them is a slip, not a number.
NOT_FINITE = "; NaN and infinity are not numbers here (leave the cell blank for 'not reached' or 'not reported')"
_DELIMITERS = {";": "';' (European spreadsheet export)", "\t": "tabs (tab-separated text)", "|": "'|'"}


def load_schema(path):
    """Load a YAML or JSON schema file into a dict."""
    with open(path, encoding="utf-8") as f:
        return yaml.load(f, Loader=YAML_LOADER)


def _decode(path, raw):
    if raw.startswith(_UTF16_32_BOMS):
        raise DataError(path, 1, None, None,
                        "UTF-8 text; the file starts with a UTF-16/32 byte-order mark (save it as 'CSV UTF-8')")
    # A UTF-8 byte-order mark is what spreadsheet programs write for 'CSV UTF-8': accept it.
    raw = raw.removeprefix(b"\xef\xbb\xbf")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        before = raw[: err.start]
        row = before.count(b"\n") + 1
        line_start = before.rfind(b"\n") + 1
        column_index = next(csv.reader([before[line_start:].decode("utf-8", "replace")]), [""]).__len__()
        header = next(csv.reader([raw.split(b"\n", 1)[0].decode("utf-8", "replace")]))
        column = header[column_index - 1] if 0 < column_index <= len(header) else None
        raise DataError(path, row, column, raw[err.start: err.start + 4],
                        "UTF-8 text (this byte is not UTF-8: the file was saved in another encoding)") from None


def _cell(text, spec):
    """JSON value of one CSV cell: blank is null, numbers are numbers where the schema wants them."""
    text = text.strip()
    if text == "":
        return None
    types = spec.get("type", [])
    types = [types] if isinstance(types, str) else types
    if "integer" in types or "number" in types:
        try:
            return int(text)
        except ValueError:
            try:
                value = float(text)
            except ValueError:
                return text
            # Left as text, a non-finite value fails the schema's type like any other non-number.
            return value if math.isfinite(value) else text
    return text


def _column_name(i):
    """Spreadsheet letter of a 0-based column index (0 -> A, 26 -> AA)."""
    name = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        name = chr(65 + r) + name
    return name


def _check_header(path, header, first_line, props, required):
    """Refuse duplicate column names and a file separated by something other than commas."""
    seen = {}
    for i, name in enumerate(header):
        if name in seen:
            j = seen[name]
            raise DataError(path, 1, name, None,
                            f"each column name once; '{name}' heads columns {j + 1} ({_column_name(j)}) and "
                            f"{i + 1} ({_column_name(i)}): delete the copy")
        seen[name] = i
    if not any(c in header for c in required):
        found = [(first_line.count(d), d) for d in _DELIMITERS]
        count, delimiter = max(found)
        if count and first_line.count(",") < count:
            raise DataError(path, 1, None, None,
                            f"comma-separated cells; this file is separated by {_DELIMITERS[delimiter]}: "
                            "save it as CSV with commas")


def read_sheet(path, schema):
    """Read one CSV sheet and validate every row.

    Parameters
    ----------
    path : str or Path
        The CSV file (UTF-8, optionally with a byte-order mark).
    schema : dict
        JSON schema of one row: ``properties`` (each with a ``description`` saying what is
        expected), ``required`` columns and any per-row constraints.

    Returns
    -------
    pandas.DataFrame
        One row per data row, typed as the schema says, with the spreadsheet row number in
        ``source_row`` and the raw text of every cell kept in ``<column>__text``.

    Raises
    ------
    DataError
        For a missing or empty file, a wrong encoding, a missing column, or the first cell
        that breaks the schema (in file order).
    """
    path = Path(path)
    if path.is_dir():
        raise DataError(path, None, None, None, "a CSV file, not a directory")
    if not path.is_file():
        raise DataError(path, None, None, None, "an existing CSV file (file not found)")
    text = _decode(path, path.read_bytes())
    if not text.strip():
        raise DataError(path, None, None, None, "a CSV file with a header row and data rows (the file is empty)")
    old_limit = csv.field_size_limit(max(len(text), MAX_CELL) + 1)
    try:
        rows = list(_rows(path, text))
    finally:
        csv.field_size_limit(old_limit)
    header = [h.strip() for h in rows[0][1]]
    props = schema.get("properties", {})
    _check_header(path, header, text.split("\n", 1)[0], props, schema.get("required", []))
    for column in schema.get("required", []):
        if column not in header:
            near = difflib.get_close_matches(column, [h for h in header if h not in props], n=1)
            hint = f" (found '{near[0]}': misspelt?)" if near else ""
            raise DataError(path, 1, column, None, f"a header column named '{column}'{hint}")
    validator = jsonschema.Draft202012Validator(schema)
    records = []
    for row_number, cells in rows[1:]:
        if not any(c.strip() for c in cells):
            continue
        if len(cells) != len(header):
            raise DataError(path, row_number, None, None,
                            f"{len(header)} comma-separated cells as in the header, found {len(cells)}")
        raw = dict(zip(header, cells))
        for column, value in raw.items():
            if len(value) > MAX_CELL:
                raise DataError(path, row_number, column, value[:20] + "...",
                                f"a cell of at most {MAX_CELL:,} characters (this one has {len(value):,})")
        record = {h: _cell(v, props.get(h, {})) for h, v in raw.items()}
        error = min(validator.iter_errors(record), default=None,
                    key=lambda e: header.index(e.path[0]) if e.path and e.path[0] in header else -1)
        if error is not None:
            column = error.path[0] if error.path else None
            spec = props.get(column, {})
            expected = spec.get("description", error.message)
            value = raw.get(column, None)
            if isinstance(record.get(column), str) and _is_non_finite(value):
                expected += NOT_FINITE
            raise DataError(path, row_number, column, value, expected)
        record[ROW_COLUMN] = row_number
        record.update({f"{h}__text": v.strip() for h, v in raw.items()})
        records.append(record)
    if not records:
        raise DataError(path, 2, None, None, "at least one data row under the header (found none)")
    return pd.DataFrame.from_records(records)


def _is_non_finite(text):
    try:
        return not math.isfinite(float(text))
    except (TypeError, ValueError):
        return False


def _rows(path, text):
    """(spreadsheet row number, cells) of each CSV record (a spreadsheet shows a multi-line cell in one row)."""
    reader = csv.reader(io.StringIO(text, newline=""))
    for row_number in itertools.count(1):
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            raise DataError(path, row_number, None, None, f"well-formed CSV ({err})") from None
        yield row_number, cells


def check_unique(df, keys, path):
    """Raise a DataError at the first row whose ``keys`` repeat an earlier row."""
    dup = df.duplicated(subset=keys, keep="first")
    if dup.any():
        row = df[dup].iloc[0]
        first = df[(df[keys] == row[keys]).all(axis=1)].iloc[0]
        value = "/".join(str(row[k]) for k in keys)
        raise DataError(path, int(row[ROW_COLUMN]), "/".join(keys), value,
                        f"a unique {' + '.join(keys)} (row {int(first[ROW_COLUMN])} has the same)")
