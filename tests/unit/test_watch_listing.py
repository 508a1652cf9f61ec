"""MLSD and LIST parsing of the FTP watcher (lines as servers write them)."""

from __future__ import annotations

from mlpipe.watch.listing import RemoteFile, parse_list_line, parse_listing, parse_mlsd_line


def test_mlsd_files_with_facts_in_any_case_and_order():
    line = "Type=file;Size=12181;Modify=20261201120000.123;UNIX.mode=0644; seattle 2012.csv\r\n"
    assert parse_mlsd_line(line) == RemoteFile("seattle 2012.csv", 12181, "20261201120000.123")
    assert parse_mlsd_line("modify=20261201120000;size=5;type=file; a;b.csv") == RemoteFile(
        "a;b.csv", 5, "20261201120000"
    )


def test_mlsd_skips_directories_and_odd_lines():
    assert parse_mlsd_line("type=dir;modify=20261201120000; incoming") is None
    assert parse_mlsd_line("type=cdir;modify=20261201120000; .") is None
    assert parse_mlsd_line("type=file;modify=20261201120000; nosize.csv") is None
    assert parse_mlsd_line("type=file;size=12;") is None  # no name
    assert parse_mlsd_line("type=OS.unix=slink:/x;size=3; link") is None


def test_list_unix_forms():
    assert parse_list_line("-rw-r--r--    1 ftp      ftp         11916 Dec 01 12:00 a.csv") == (
        RemoteFile("a.csv", 11916, "Dec 01 12:00")
    )
    # a year instead of a time, no group column, a name with spaces
    assert parse_list_line("-rw-------   1 1000   4096 Jan  5  2025 my data.csv") == RemoteFile(
        "my data.csv", 4096, "Jan 5 2025"
    )
    assert parse_list_line("-rw-r--r--+  1 owner group 7 Mar 10 09:05 acl.csv") == RemoteFile(
        "acl.csv", 7, "Mar 10 09:05"
    )


def test_list_dos_form():
    assert parse_list_line("12-01-26  09:05AM                12181 obs.csv") == RemoteFile(
        "obs.csv", 12181, "12-01-26 09:05AM"
    )
    assert parse_list_line("12-01-26  09:05AM       <DIR>          sub") is None


def test_list_skips_what_is_not_a_regular_file():
    assert parse_list_line("total 24") is None
    assert parse_list_line("drwxr-xr-x    2 ftp ftp 4096 Dec 01 12:00 incoming") is None
    assert parse_list_line("lrwxrwxrwx    1 ftp ftp   10 Dec 01 12:00 latest -> a.csv") is None
    assert parse_list_line("something else entirely") is None


def test_listing_sorted_regular_files_only():
    lines = [
        "type=file;size=2;modify=20261201120001; b.csv",
        "type=dir;modify=20261201120000; sub",
        "type=file;size=1;modify=20261201120000; a.csv",
    ]
    assert [f.name for f in parse_listing(lines, mlsd=True)] == ["a.csv", "b.csv"]
    assert parse_listing(["total 0"], mlsd=False) == []
