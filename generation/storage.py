"""Local media that is never half written: a file appears under its name whole or not at all.

A write that fails (a full disk, a killed process) used to leave a partial or 0-byte file at the
final name, which kept the disk full and looked like an image. Here every write goes to a
temporary file in `<location>/.partial/` (the same filesystem, so the move is atomic) and is
linked into place only when whole; a failed write removes its temporary file. One a killed
process left behind is removed by `sweep_partial`, which the reaper calls.

Azure Blob uploads are atomic already: this is the local-disk backend only.
"""

from __future__ import annotations

import contextlib
import errno
import os
import time
import uuid
from typing import Any

from django.core.files.move import file_move_safe
from django.core.files.storage import FileSystemStorage, Storage, default_storage
from django.utils._os import safe_makedirs

PARTIAL_DIR = ".partial"
# Older than this, a temporary file's writer is gone: no write of one file takes an hour.
PARTIAL_MAX_AGE = 3600
# A filesystem that has no hard links answers link() with one of these (an SMB or some FUSE mounts).
NO_HARD_LINKS = {errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS}


class AtomicFileSystemStorage(FileSystemStorage):
    """FileSystemStorage whose writes land whole or not at all. As Django's, it never overwrites
    a name that exists (another one is chosen) and applies FILE_UPLOAD_PERMISSIONS and
    FILE_UPLOAD_DIRECTORY_PERMISSIONS."""

    def partial_dir(self) -> str:
        return os.path.join(self.location, PARTIAL_DIR)

    def _save(self, name: str, content: Any) -> str:
        full_path = self.path(name)
        self._make_directory(os.path.dirname(full_path))
        self._make_directory(self.partial_dir())
        partial = os.path.join(self.partial_dir(), f"{uuid.uuid4().hex}.part")
        try:
            self._write(partial, content)
            if self.file_permissions_mode is not None:
                os.chmod(partial, self.file_permissions_mode)
            self._take_location_group(partial)
            while True:
                try:
                    self._move_into_place(partial, full_path)
                except FileExistsError:  # taken since get_available_name: choose again, as Django does
                    name = self.get_available_name(name)
                    full_path = self.path(name)
                else:
                    break
        finally:
            # Gone when renamed into place; one that cannot be removed is left to sweep_partial.
            with contextlib.suppress(OSError):
                os.unlink(partial)
        return os.path.relpath(full_path, self.location).replace("\\", "/")

    def _make_directory(self, directory: str) -> None:
        try:
            if self.directory_permissions_mode is not None:
                safe_makedirs(directory, self.directory_permissions_mode, exist_ok=True)
            else:
                os.makedirs(directory, exist_ok=True)
        except FileExistsError:
            raise FileExistsError(f"{directory} exists and is not a directory.") from None

    def _take_location_group(self, path: str) -> None:
        """The media root's group, as Django gives a file it saves (a shared group's folder)."""
        if os.name != "posix":
            return
        group = os.stat(self.location).st_gid
        if os.stat(path).st_gid != group:
            with contextlib.suppress(PermissionError):
                os.chown(path, uid=-1, gid=group)

    def _write(self, partial: str, content: Any) -> None:
        """The content, whole and on disk, at `partial`: a disk that fills up says so here
        (write, fsync or close), before anything has a final name."""
        if hasattr(content, "temporary_file_path"):  # a large upload Django spooled to disk
            file_move_safe(content.temporary_file_path(), partial)
            return
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        out = None
        try:
            for chunk in content.chunks():
                if out is None:
                    out = os.fdopen(fd, "wb" if isinstance(chunk, bytes) else "wt")
                out.write(chunk)
            if out is not None:
                out.flush()
            os.fsync(fd)
        finally:
            if out is not None:
                out.close()
            else:
                os.close(fd)

    def _move_into_place(self, partial: str, full_path: str) -> None:
        """A whole file at `full_path`; FileExistsError when the name is taken (unless this
        storage was made with allow_overwrite)."""
        if getattr(self, "_allow_overwrite", False):  # the allow_overwrite option (Django 5.1+)
            os.replace(partial, full_path)
            return
        try:
            os.link(partial, full_path)  # atomic, and fails rather than overwrite
        except FileExistsError:
            raise
        except OSError as exc:
            if exc.errno not in NO_HARD_LINKS:
                raise
            self._reserve_and_replace(partial, full_path)

    @staticmethod
    def _reserve_and_replace(partial: str, full_path: str) -> None:
        """Without hard links: take the name with an empty file (O_EXCL), then rename the whole
        file over it. The name is empty for a moment, never half written."""
        os.close(os.open(full_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666))
        try:
            os.replace(partial, full_path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(full_path)
            raise


def sweep_partial(*, storage: Storage | None = None, older_than: float = PARTIAL_MAX_AGE) -> int:
    """Remove the temporary files a killed process left in `.partial/` (older than `older_than`
    seconds); the number removed. Reads that one folder only; any other storage has none."""
    storage = storage if storage is not None else default_storage
    if not isinstance(storage, AtomicFileSystemStorage):
        return 0
    cutoff = time.time() - older_than
    removed = 0
    try:
        entries = list(os.scandir(storage.partial_dir()))
    except FileNotFoundError:
        return 0
    for entry in entries:
        with contextlib.suppress(FileNotFoundError):
            if entry.is_file(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_mtime < cutoff:
                os.unlink(entry.path)
                removed += 1
    return removed
