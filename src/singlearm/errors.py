"""The one exception a user meets when the input data are wrong."""


class DataError(ValueError):
    """Bad input, reported as file, row, column, value and what was expected.

    Rows are counted as a spreadsheet user counts them: the header is row 1, the first
    data row is row 2.
    """

    def __init__(self, path, row, column, value, expected):
        self.path, self.row, self.column, self.value, self.expected = path, row, column, value, expected
        where = f"{path}" + (f", row {row}" if row is not None else "")
        where += f", column '{column}'" if column is not None else ""
        shown = "" if value is None else f": value {value!r}"
        super().__init__(f"{where}{shown}: expected {expected}")
