"""Where uploaded files live: a local folder by default, any pyarrow filesystem URI on a cluster
(s3://bucket/prefix, gs://..., hdfs://...). Files are written as streams and read by byte range, so
neither the upload nor a parse task ever holds a whole file in memory."""

from __future__ import annotations

import hashlib
import os
import re
from typing import BinaryIO

import pyarrow.fs as pafs


def resolve(uri: str) -> tuple[pafs.FileSystem, str]:
    """(filesystem, path) for a URI or a local path."""
    if "://" not in uri:
        return pafs.LocalFileSystem(), os.path.abspath(uri)
    return pafs.FileSystem.from_uri(uri)


def _safe_name(name: str) -> str:
    return (
        re.sub(r"[^A-Za-z0-9._-]+", "_", os.path.basename(name or "upload.csv"))[:120]
        or "upload.csv"
    )


def upload_uri(base: str, user_id: str, job_id: str, file_name: str) -> str:
    """Where an upload is stored under `base` (Settings.uploads_uri)."""
    base = base.rstrip("/")
    user = hashlib.sha256(user_id.encode()).hexdigest()[:16]  # user ids need not be path-safe
    return f"{base}/{user}/{job_id}-{_safe_name(file_name)}"


def open_output(uri: str) -> BinaryIO:
    fs, path = resolve(uri)
    fs.create_dir(os.path.dirname(path), recursive=True)
    return fs.open_output_stream(path)


def open_input(uri: str) -> BinaryIO:
    """A random-access reader (seek/read) for chunked parsing."""
    fs, path = resolve(uri)
    return fs.open_input_file(path)


def size_of(uri: str) -> int:
    fs, path = resolve(uri)
    return fs.get_file_info(path).size


def delete(uri: str) -> None:
    fs, path = resolve(uri)
    fs.delete_file(path)
