"""Sweep tables: every format's rows and values, and every bad table as one line."""

from __future__ import annotations

import io
import re

import pytest

from runner.errors import InvalidInputError
from runner.runs.table import MAX_ROWS, env_text, parse_table, read_table


def test_csv_values_arrive_exactly_quotes_commas_newlines_and_non_ascii():
    data = 'sample,note\r\n"be,ta","say ""hi""\r\nthere"\r\nünï,\r\n'.encode()
    table = parse_table(b"\xef\xbb\xbf" + data, "t.csv", "csv")
    assert table.columns == ("sample", "note")
    assert table.rows == [{"sample": "be,ta", "note": 'say "hi"\r\nthere'}, {"sample": "ünï", "note": ""}]


def test_tsv_and_json_lines_keep_their_values_and_the_environment_gets_json_text():
    assert parse_table(b"a\tb\n1\t2\n", "t.tsv", "tsv").rows == [{"a": "1", "b": "2"}]
    table = parse_table(
        b'{"a": 1, "b": {"c": [1, 2]}}\n\n{"c": "x", "d": null, "e": "\\u00e9"}\n', "t.jsonl", "jsonl"
    )
    assert table.rows == [{"a": 1, "b": {"c": [1, 2]}}, {"c": "x", "d": None, "e": "é"}]
    assert [env_text(v) for v in table.rows[0].values()] == ["1", '{"c": [1, 2]}']
    assert env_text(None) == "null" and env_text("é") == "é"
    assert table.columns == ("a", "b", "c", "d", "e")


def test_a_cell_too_large_for_the_environment_names_the_limit_not_the_quoting():
    big = "x" * (5 * 1024 * 1024)
    for data, kind in ((f"a,b\nok,{big}\n".encode(), "csv"), (f'{{"a": "{big}"}}\n'.encode(), "jsonl")):
        with pytest.raises(InvalidInputError) as err:
            parse_table(data, "t", kind)  # type: ignore[arg-type]
        assert "is 5,242,880 bytes, over the 131,072 bytes one environment variable can hold" in str(
            err.value
        )


def test_the_key_column_is_the_first_by_default_and_must_exist():
    table = parse_table(b"sample,depth\na,1\n", "t.csv", "csv")
    assert table.key_column(None) == "sample" and table.key_column("depth") == "depth"
    with pytest.raises(
        InvalidInputError, match=re.escape("--key reads: t.csv has no such column; use one of sample, depth")
    ):
        table.key_column("reads")


@pytest.mark.parametrize(
    ("data", "kind", "message"),
    [
        (b"", "csv", "--tasks t is empty; give a header line and one row per task"),
        (b"  \n", "csv", "--tasks t is empty"),
        (b"a,b\n", "csv", "--tasks t has a header but no rows; add one row per task"),
        (b"a,1b\nx,y\n", "csv", "--tasks t: column '1b' is not an environment variable name"),
        (b"a,a\nx,y\n", "csv", "--tasks t: column 'a' appears twice"),
        (
            b"a,AWS_REGION\nx,y\n",
            "csv",
            "--tasks t: column 'AWS_REGION' is reserved (AWS_*, ECS_* and RUNNER_*",
        ),
        (b"a,runner_row\nx,y\n", "csv", "--tasks t: column 'runner_row' is reserved"),
        (b"a,b\nx,y\nz\n", "csv", "--tasks t: line 3 has 1 field(s); the header has 2"),
        (b'a,b\n"x\ny",1\nz,2,3\n', "csv", "--tasks t: line 4 has 3 field(s)"),
        (b"a\xff,b\n1,2\n", "csv", "--tasks t: line 1 is not UTF-8 text (byte 1); save the table as UTF-8"),
        (b'{"a": 1}\n[1, 2]\n', "jsonl", "--tasks t: line 2 is not a JSON object"),
        (b'{"a": 1}\n{oops\n', "jsonl", "--tasks t: line 2 is not JSON"),
        (b'{"a b": 1}\n', "jsonl", "--tasks t: line 1: key 'a b' is not an environment variable name"),
        (b'{"RUNNER_X": 1}\n', "jsonl", "--tasks t: line 1: key 'RUNNER_X' is reserved"),
    ],
)
def test_a_bad_table_is_one_line(data: bytes, kind: str, message: str):
    with pytest.raises(InvalidInputError) as caught:
        parse_table(data, "t", kind)  # type: ignore[arg-type]
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


def test_more_than_a_million_rows_is_refused():
    data = b"a\n" + b"1\n" * (MAX_ROWS + 1)
    with pytest.raises(InvalidInputError, match="more than 1,000,000 rows; split the table"):
        parse_table(data, "t.csv", "csv")


def test_sources_and_formats(tmp_path):
    path = tmp_path / "rows.csv"
    path.write_text("a\n1\n")

    def no_s3() -> None:
        pytest.fail("no S3 call for a local file")

    assert len(read_table(str(path), None, stdin=io.BytesIO(), s3=no_s3)) == 1
    assert read_table("-", "tsv", stdin=io.BytesIO(b"a\n2\n"), s3=no_s3).rows == [{"a": "2"}]
    for source, given, message in [
        ("-", None, "--tasks - reads standard input; say its format with --format"),
        (
            str(tmp_path / "rows.txt"),
            None,
            "cannot tell the format from the name; name it .csv, .tsv or .jsonl",
        ),
        (str(tmp_path / "gone.csv"), None, "no such file"),
    ]:
        with pytest.raises(InvalidInputError, match=message):
            read_table(source, given, stdin=io.BytesIO(), s3=no_s3)
