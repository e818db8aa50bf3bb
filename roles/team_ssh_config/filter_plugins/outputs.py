"""Whether a file the role writes on the controller is out of date, looked at in-process.

The ssh configs and known_hosts are written on the controller. Rendering them with the
template lookup and comparing with what is on disk costs a few milliseconds in the
controller's own process; a `template` task delegated to localhost starts a module
process per file. The tasks run only for the files this filter reports.
"""

from __future__ import annotations

import stat
from pathlib import Path

from ansible.errors import AnsibleFilterError


def team_ssh_config_outdated(path: str, content: str | None = None, mode: str = "0644") -> bool:
    """True unless `path` is a regular file holding exactly `content` with `mode`.

    Without `content`, True unless `path` is a directory with `mode`. Links count as
    out of date: the task that writes the file decides what to do with them.
    """
    try:
        wanted = int(str(mode), 8)
    except ValueError as error:
        raise AnsibleFilterError(f"team_ssh_config_outdated: mode {mode!r} is not octal") from error
    entry = Path(path)
    try:
        status = entry.lstat()
    except FileNotFoundError:
        return True
    if stat.S_IMODE(status.st_mode) != wanted:
        return True
    if content is None:
        return not stat.S_ISDIR(status.st_mode)
    if not stat.S_ISREG(status.st_mode):
        return True
    return entry.read_bytes() != content.encode()


class FilterModule:
    def filters(self):
        return {"team_ssh_config_outdated": team_ssh_config_outdated}
