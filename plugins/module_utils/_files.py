# -*- coding: utf-8 -*-
# Copyright: vipadm developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Place a small file (manifest, config) atomically with a fixed mode and owner.

``place_file()`` compares what is on disk with what should be there (content, mode, owner),
writes only when they differ, never in check mode, and always through a temporary file in the
same directory followed by a rename, so a reader (the kubelet watching its static Pod directory)
never sees a half-written file. Standard library only: it runs on managed nodes.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import os
import stat
import tempfile


def read_text(path):
    """The file's text, or None when it does not exist."""
    try:
        with open(path, "rb") as handle:
            return handle.read().decode("utf-8", errors="replace")
    except (IOError, OSError) as error:
        if error.errno == errno.ENOENT:
            return None
        raise


def _wanted_owner(uid, gid):
    # Only root can give a file away; an unprivileged run keeps its own ownership.
    if os.geteuid() != 0:
        return None, None
    return uid, gid


def file_attributes_differ(path, mode, uid, gid):
    info = os.stat(path)
    want_uid, want_gid = _wanted_owner(uid, gid)
    if stat.S_IMODE(info.st_mode) != mode:
        return True
    if want_uid is not None and (info.st_uid != want_uid or info.st_gid != want_gid):
        return True
    return False


def _make_directory(directory, dir_mode):
    """Create ``directory`` (and missing parents) with ``dir_mode``; returns the ones created."""
    created = []
    current = os.path.abspath(directory)
    while current and not os.path.isdir(current):
        created.append(current)
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    for path in reversed(created):
        os.mkdir(path, dir_mode)
        os.chmod(path, dir_mode)  # mkdir's mode is filtered by the umask
    return list(reversed(created))


def write_atomic(path, data, mode=0o600, uid=0, gid=0, dir_mode=0o700):
    """Write ``data`` (bytes) to ``path`` via a temporary file in the same directory and rename."""
    directory = os.path.dirname(os.path.abspath(path))
    created = _make_directory(directory, dir_mode)
    want_uid, want_gid = _wanted_owner(uid, gid)
    handle, temporary = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp",
                                         dir=directory)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fchmod(stream.fileno(), mode)
            if want_uid is not None:
                os.fchown(stream.fileno(), want_uid, want_gid)
            os.fsync(stream.fileno())
        os.rename(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
    directory_handle = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(directory_handle)
    finally:
        os.close(directory_handle)
    return created


def place_file(path, text, check_mode=False, mode=0o600, uid=0, gid=0, dir_mode=0o700):
    """Make ``path`` hold ``text`` with ``mode`` and owner ``uid:gid``.

    Returns a dict: ``changed``, ``before`` (the old text or None) and ``created_directories``.
    In check mode it only reports what it would do.
    """
    before = read_text(path)
    if before == text and not file_attributes_differ(path, mode, uid, gid):
        return {"changed": False, "before": before, "created_directories": []}
    created = []
    if not check_mode:
        if before == text:
            os.chmod(path, mode)
            want_uid, want_gid = _wanted_owner(uid, gid)
            if want_uid is not None:
                os.chown(path, want_uid, want_gid)
        else:
            created = write_atomic(path, text.encode("utf-8"), mode, uid, gid, dir_mode)
    return {"changed": True, "before": before, "created_directories": created}
