#!/usr/bin/python3
"""Back up the master with restic, check the repository, and restore a snapshot.

    backup-<project> run                       back up, apply the retention policy, write status
    backup-<project> check                     verify the repository (structure and a data sample)
    backup-<project> status                    print the status file
    backup-<project> init                      create the repository unless it exists
    backup-<project> restore-plan [--snapshot ID]   the snapshot and any data newer than it (JSON)
    backup-<project> restore-files --snapshot ID    restore the files (services must be stopped)
    backup-<project> restic ARGS...            restic on the repository: `restic snapshots`

Every setting comes from the JSON file written by the backup role (--config). Each run
leaves its result in the status file (JSON, readable by everyone); a failure also exits
non-zero, so that the systemd unit shows up in `systemctl --failed`, with the cause as
the last line of its journal.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import fnmatch
import grp
import hashlib
import json
import os
import pwd
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

# restic's exit codes (restic 0.17 and later).
RESTIC_NO_REPOSITORY = 10
RESTIC_LOCKED = 11
RESTIC_WRONG_PASSWORD = 12
RESTIC_INCOMPLETE = 3
NEWER_LIST_LIMIT = 20


class BackupError(Exception):
    """A failure with a cause a person can act on; `kind` is for programs."""

    def __init__(self, message: str, kind: str = "error") -> None:
        super().__init__(message)
        self.kind = kind


def log(message: str) -> None:
    print(message, flush=True)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def human_bytes(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(count) < 1024 or unit == "TiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count} B"


class Config:
    def __init__(self, path: Path) -> None:
        try:
            data = json.loads(path.read_text())
        except OSError as err:
            raise BackupError(f"cannot read the backup configuration {path}: {err}") from err
        self.project: str = data["project"]
        self.repository: str = data["repository"]
        self.password_file: str = data["password_file"]
        self.environment: dict[str, str] = data.get("environment", {})
        self.ssh_config: str = data.get("ssh_config", "")
        self.cache_dir: str = data["cache_dir"]
        self.paths: list[str] = data["paths"]
        self.excludes: list[str] = data.get("excludes", [])
        self.exclude_file: str = data["exclude_file"]
        self.capture_dir = Path(data["capture_dir"])
        self.status_file = Path(data["status_file"])
        self.lock_file = Path(data["lock_file"])
        self.tag: str = data["tag"]
        self.retention: dict[str, int] = data["retention"]
        self.check_read_data_subset: str = data.get("check_read_data_subset", "")
        self.luigid: dict = data["luigid"]
        self.luigid["stop_timeout"] = int(self.luigid.get("stop_timeout", 60))
        self.hub: dict = data["hub"]
        self.daily_unit: str = data.get("daily_unit", "")
        self.wait_for_daily_seconds = int(data.get("wait_for_daily_seconds", 0))
        self.newer_check_paths: list[str] = data.get("newer_check_paths", [])
        self.homes_dir: str = data.get("homes_dir", "/home")
        self.data_root: str = data.get("data_root", "")
        self.data_group: str = data.get("data_group", "")
        self.host_key_glob: str = data.get("host_key_glob", "/etc/ssh/ssh_host_*")


# --- restic ----------------------------------------------------------------------------


def restic_command(config: Config, *args: str) -> tuple[list[str], dict[str, str]]:
    command = ["restic", "--cache-dir", config.cache_dir]
    if config.repository.startswith("sftp:") and config.ssh_config:
        command += ["-o", f"sftp.args=-F {config.ssh_config}"]
    env = os.environ | config.environment
    env |= {"RESTIC_REPOSITORY": config.repository, "RESTIC_PASSWORD_FILE": config.password_file}
    env.pop("RESTIC_PASSWORD", None)
    env.pop("RESTIC_PASSWORD_COMMAND", None)
    return [*command, *args], env


def restic(config: Config, *args: str, stream: bool = False) -> subprocess.CompletedProcess:
    """Run restic; with `stream`, its stdout goes to the journal as it comes."""
    command, env = restic_command(config, *args)
    if stream:
        return subprocess.run(
            command, env=env, stdout=None, stderr=subprocess.PIPE, text=True, check=False
        )
    return subprocess.run(command, env=env, capture_output=True, text=True, check=False)


UNREACHABLE = re.compile(
    r"(connection refused|connection timed out|timed out|no route to host|could not resolve"
    r"|name or service not known|network is unreachable|temporary failure in name resolution"
    r"|connection closed by|connection reset"
    # ssh gave up before the sftp session began (restic does not always pass its reason on)
    r"|server unexpectedly closed connection)",
    re.IGNORECASE,
)


def explain(  # noqa: PLR0911 - one return per cause
    config: Config, result: subprocess.CompletedProcess, doing: str
) -> BackupError:
    """Turn a failed restic run into a message that names the cause."""
    text = (result.stderr or "") + (result.stdout or "")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    fatal = next((line for line in reversed(lines) if line.startswith("Fatal")), "")
    detail = fatal or (lines[-1] if lines else f"restic exited with {result.returncode}")
    repo = config.repository
    lowered = text.lower()
    if result.returncode == RESTIC_WRONG_PASSWORD or "wrong password" in lowered:
        return BackupError(
            f"{doing} failed: the repository password is wrong: no key of {repo} opens with the "
            f"password in {config.password_file} (backup_password in the vault). The repository "
            f"was not changed. restic: {detail}",
            "wrong-password",
        )
    if "host key verification failed" in lowered:
        return BackupError(
            f"{doing} failed: the repository host's SSH key is not in backup_sftp_known_hosts; "
            f"nothing was sent to {repo}. restic: {detail}",
            "host-key",
        )
    if "permission denied (publickey" in lowered:
        return BackupError(
            f"{doing} failed: the repository host refused the backup key; authorize its public key "
            f"for {repo}. restic: {detail}",
            "refused",
        )
    if UNREACHABLE.search(text):
        reason = next((line for line in lines if UNREACHABLE.search(line)), detail)
        return BackupError(
            f"{doing} failed: the repository {repo} cannot be reached ({reason}); nothing was "
            "written to it.",
            "unreachable",
        )
    if result.returncode == RESTIC_NO_REPOSITORY:
        return BackupError(
            f"{doing} failed: there is no repository at {repo} (playbooks/backup.yml creates it). "
            f"restic: {detail}",
            "no-repository",
        )
    if result.returncode == RESTIC_LOCKED:
        return BackupError(
            f"{doing} failed: the repository {repo} is locked by another restic process. "
            f"restic: {detail}",
            "locked",
        )
    if result.returncode == RESTIC_INCOMPLETE:
        return BackupError(
            f"{doing} incomplete: some files could not be read. restic: {detail}", "incomplete"
        )
    return BackupError(f"{doing} failed: restic: {detail}", "error")


# --- status ----------------------------------------------------------------------------


def read_status(config: Config) -> dict:
    try:
        return json.loads(config.status_file.read_text())
    except (OSError, ValueError):
        return {}


def write_status(config: Config, **changes) -> None:
    status = read_status(config) | {"project": config.project, "repository": config.repository}
    status |= changes
    config.status_file.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(
        "w", dir=config.status_file.parent, delete=False, prefix=".status-"
    ) as handle:
        json.dump(status, handle, indent=2, sort_keys=True)
        handle.write("\n")
    Path(handle.name).chmod(0o644)
    Path(handle.name).replace(config.status_file)


@contextlib.contextmanager
def locked(config: Config, within_seconds: int = 6 * 3600):
    """One backup, check or restore at a time on this host."""
    config.lock_file.parent.mkdir(parents=True, exist_ok=True)
    with config.lock_file.open("w") as handle:
        deadline = time.monotonic() + within_seconds
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise BackupError(
                        f"another backup, check or restore held {config.lock_file} for "
                        f"{within_seconds} s",
                        "busy",
                    ) from None
                time.sleep(5)
        yield


# --- consistent copies of live state ---------------------------------------------------


def docker(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=False)


def luigid_container(config: Config) -> str:
    if shutil.which("docker") is None:
        return ""
    found = docker(
        "ps",
        "--all",
        "--quiet",
        "--filter",
        f"label=com.docker.compose.project={config.luigid['compose_project']}",
        "--filter",
        f"label=com.docker.compose.service={config.luigid['service']}",
    )
    ids = found.stdout.split()
    return ids[0] if found.returncode == 0 and ids else ""


def luigid_state_dir(config: Config) -> Path | None:
    if shutil.which("docker") is None:
        return None
    found = docker("volume", "inspect", "--format", "{{ .Mountpoint }}", config.luigid["volume"])
    return Path(found.stdout.strip()) if found.returncode == 0 and found.stdout.strip() else None


def wait_for_daily_run(config: Config) -> None:
    """Never stop luigid under a running daily pipeline: wait for it, bounded."""
    if not config.daily_unit:
        return
    deadline = time.monotonic() + config.wait_for_daily_seconds
    announced = False
    while True:
        state = subprocess.run(
            ["systemctl", "is-active", config.daily_unit],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        if state not in ("active", "activating", "reloading", "deactivating"):
            return
        if time.monotonic() > deadline:
            raise BackupError(
                f"{config.daily_unit} was still running after {config.wait_for_daily_seconds} s; "
                "the backup did not stop luigid under it and took no snapshot",
                "busy",
            )
        if not announced:
            log(f"waiting for {config.daily_unit} to finish before luigid is stopped")
            announced = True
        time.sleep(10)


def capture_luigid(config: Config, target: Path) -> None:
    """luigid writes its state file only when it stops: stop it for the copy, start it again."""
    source = luigid_state_dir(config)
    if source is None:
        log(f"no Docker volume {config.luigid['volume']}: luigid's state is not captured")
        return
    target.mkdir(parents=True, exist_ok=True)
    container = luigid_container(config)
    running = (
        bool(container)
        and docker("inspect", "--format", "{{ .State.Running }}", container).stdout.strip()
        == "true"
    )
    started = time.monotonic()
    if running:
        stopped = docker("stop", "--time", str(config.luigid["stop_timeout"]), container)
        if stopped.returncode != 0:
            raise BackupError(f"could not stop luigid for its state: {stopped.stderr.strip()}")
    try:
        for name in config.luigid["files"]:
            # The volume is the container's to write: a symlink there is never followed.
            if (source / name).is_file() and not (source / name).is_symlink():
                shutil.copy2(source / name, target / name, follow_symlinks=False)
    finally:
        if running:
            start_again(container)
    if running:
        wait_until_healthy(container, config.luigid["stop_timeout"] + 60)
        log(f"luigid was down for {time.monotonic() - started:.1f} s to save its state")


# Attempts to start luigid again after the copy, and the pause before each retry: the
# container runtime can refuse one start under load ("runc create failed ... connection
# reset by peer") and take the next, and luigid must not stay down after a backup.
START_ATTEMPTS = 3
START_RETRY_SECONDS = 3


def start_again(container: str) -> None:
    for attempt in range(1, START_ATTEMPTS + 1):
        again = docker("start", container)
        if again.returncode == 0:
            return
        error = again.stderr.strip()
        if attempt < START_ATTEMPTS:
            log(f"luigid did not start (attempt {attempt} of {START_ATTEMPTS}): {error}")
            time.sleep(START_RETRY_SECONDS * attempt)
    raise BackupError(f"luigid did not start again after {START_ATTEMPTS} attempts: {error}")


def wait_until_healthy(container: str, within_seconds: int) -> None:
    deadline = time.monotonic() + within_seconds
    while True:
        health = docker(
            "inspect",
            "--format",
            "{{ if .State.Health }}{{ .State.Health.Status }}{{ end }}",
            container,
        ).stdout.strip()
        if health in ("healthy", ""):
            return
        if time.monotonic() > deadline:
            raise BackupError(
                f"luigid was not healthy again {within_seconds} s after the copy ({health})"
            )
        time.sleep(1)


def capture_sqlite(source: Path, target: Path) -> None:
    """sqlite's online backup: a consistent copy while the owner keeps writing."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    live = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    with contextlib.closing(live), contextlib.closing(sqlite3.connect(partial)) as copy:
        live.backup(copy)
    partial.replace(target)


def capture_state(config: Config) -> None:
    if config.capture_dir.exists():
        shutil.rmtree(config.capture_dir)
    config.capture_dir.mkdir(mode=0o700, parents=True)
    wait_for_daily_run(config)
    capture_luigid(config, config.capture_dir / "luigid")
    database = Path(config.hub["database"])
    if database.is_file():
        capture_sqlite(database, config.capture_dir / "jupyterhub" / database.name)
    else:
        log(f"no JupyterHub database at {database}: not captured")


# --- backup ----------------------------------------------------------------------------


def backup_paths(config: Config) -> list[str]:
    """The configured paths that exist here; a `*` pattern stands for every match."""
    paths: list[str] = []
    for pattern in config.paths:
        if "*" in pattern:
            paths += sorted(str(p) for p in Path("/").glob(pattern.lstrip("/")))
        elif Path(pattern).exists():
            paths.append(pattern)
        else:
            log(f"{pattern} does not exist on this host: not in the snapshot")
    return paths


def run_backup(config: Config) -> dict:
    # A repository that cannot be opened (password, network) fails the run here, before
    # luigid is stopped for its state or anything is written.
    reachable = restic(config, "cat", "config")
    if reachable.returncode != 0:
        raise explain(config, reachable, "the backup")
    Path(config.exclude_file).write_text("".join(f"{p}\n" for p in config.excludes))
    capture_state(config)
    result = restic(
        config,
        "backup",
        "--json",
        "--quiet",
        "--tag",
        config.tag,
        "--exclude-caches",
        "--exclude-file",
        config.exclude_file,
        *backup_paths(config),
    )
    summary: dict = {}
    unreadable: list[str] = []
    for line in result.stdout.splitlines():
        try:
            message = json.loads(line)
        except ValueError:
            continue
        if message.get("message_type") == "summary":
            summary = message
        elif message.get("message_type") == "error":
            unreadable.append(str(message.get("item") or message.get("error")))
    if result.returncode != 0 or not summary.get("snapshot_id"):
        error = explain(config, result, "the backup")
        if unreadable:
            error = BackupError(f"{error} Unreadable: {', '.join(unreadable[:5])}", error.kind)
        raise error
    return summary


def apply_retention(config: Config) -> None:
    keep = config.retention
    result = restic(
        config,
        "forget",
        "--tag",
        config.tag,
        "--group-by",
        "host,tags",
        "--keep-daily",
        str(keep["daily"]),
        "--keep-weekly",
        str(keep["weekly"]),
        "--keep-monthly",
        str(keep["monthly"]),
        "--prune",
    )
    if result.returncode != 0:
        raise explain(config, result, "forgetting old snapshots")
    kept = re.findall(r"keep (\d+) snapshots", result.stdout)
    removed = re.findall(r"remove (\d+) snapshots", result.stdout)
    log(
        f"retention {keep['daily']} daily, {keep['weekly']} weekly, {keep['monthly']} monthly: "
        f"kept {sum(map(int, kept))}, removed {sum(map(int, removed))} snapshots"
    )


def command_run(config: Config) -> int:
    started = time.monotonic()
    write_status(config, last_attempt=now_iso())
    try:
        with locked(config):
            summary = run_backup(config)
            snapshot = summary["snapshot_id"]
            write_status(
                config,
                last_success=now_iso(),
                snapshot_id=snapshot,
                bytes_added=summary.get("data_added", 0),
                bytes_added_packed=summary.get("data_added_packed", summary.get("data_added", 0)),
                bytes_processed=summary.get("total_bytes_processed", 0),
                files_new=summary.get("files_new", 0),
                files_changed=summary.get("files_changed", 0),
                files_unmodified=summary.get("files_unmodified", 0),
                duration_seconds=round(time.monotonic() - started, 1),
                last_error=None,
                last_error_kind=None,
            )
            log(
                f"snapshot {snapshot[:8]} saved: {human_bytes(summary.get('data_added', 0))} added "
                f"({summary.get('files_new', 0)} new, {summary.get('files_changed', 0)} changed, "
                f"{summary.get('files_unmodified', 0)} unchanged files; "
                f"{human_bytes(summary.get('total_bytes_processed', 0))} backed up) "
                f"in {time.monotonic() - started:.0f} s"
            )
            apply_retention(config)
    except BackupError as err:
        write_status(
            config, last_error=str(err), last_error_kind=err.kind, last_error_time=now_iso()
        )
        print(f"backup of {config.project} failed: {err}", file=sys.stderr, flush=True)
        return 1
    return 0


def command_check(config: Config) -> int:
    args = ["check"]
    if config.check_read_data_subset:
        args += ["--read-data-subset", config.check_read_data_subset]
    try:
        with locked(config):
            result = restic(config, *args, stream=True)
            if result.returncode != 0:
                raise explain(config, result, "the repository check")
    except BackupError as err:
        write_status(config, last_check=now_iso(), last_check_ok=False, last_check_error=str(err))
        print(f"check of {config.project}'s repository failed: {err}", file=sys.stderr, flush=True)
        return 1
    write_status(config, last_check=now_iso(), last_check_ok=True, last_check_error=None)
    log(f"repository {config.repository} checked: no errors")
    return 0


def command_init(config: Config) -> int:
    exists = restic(config, "cat", "config")
    if exists.returncode == 0:
        log("repository exists")
        return 0
    if exists.returncode != RESTIC_NO_REPOSITORY:
        print(explain(config, exists, "opening the repository"), file=sys.stderr)
        return 1
    created = restic(config, "init")
    if created.returncode != 0:
        print(explain(config, created, "creating the repository"), file=sys.stderr)
        return 1
    log(f"repository created at {config.repository}")
    return 0


# --- restore ---------------------------------------------------------------------------


def parse_time(text: str) -> float:
    # restic writes nanoseconds; Python's parser takes at most microseconds.
    text = re.sub(r"(\.\d{6})\d+", r"\1", text).replace("Z", "+00:00")
    return datetime.fromisoformat(text).timestamp()


def find_snapshot(config: Config, snapshot: str) -> dict:
    result = restic(config, "snapshots", "--json", "--tag", config.tag)
    if result.returncode != 0:
        raise explain(config, result, "listing the snapshots")
    snapshots = sorted(json.loads(result.stdout or "[]"), key=lambda s: parse_time(s["time"]))
    if not snapshots:
        raise BackupError(f"the repository {config.repository} holds no snapshot of {config.tag}")
    if snapshot == "latest":
        return snapshots[-1]
    chosen = [s for s in snapshots if s["id"].startswith(snapshot)]
    if len(chosen) != 1:
        known = ", ".join(s["short_id"] for s in snapshots[-10:])
        raise BackupError(f"no single snapshot matches {snapshot!r}; the latest ones: {known}")
    return chosen[0]


def excluded(path: str, patterns: list[str]) -> bool:
    return any(
        fnmatch.fnmatch(path, pattern) or fnmatch.fnmatch(path, pattern.rstrip("/") + "/*")
        for pattern in patterns
    )


def newer_files(config: Config, since: float) -> list[str]:
    """Regular files and symlinks under the data paths modified after `since`, unfollowed."""
    found: list[str] = []
    for root in config.newer_check_paths:
        for directory, dirs, files in os.walk(root, followlinks=False):
            dirs[:] = [d for d in dirs if not excluded(f"{directory}/{d}", config.excludes)]
            for name in files + [d for d in dirs if Path(directory, d).is_symlink()]:
                path = f"{directory}/{name}"
                try:
                    info = os.lstat(path)
                except OSError:
                    continue
                # Regular files and symlinks: a symlink planted after the snapshot would
                # otherwise steer the restore.
                if (
                    (info.st_mode & 0o170000) in (0o100000, 0o120000)
                    and info.st_mtime > since + 1
                    and not excluded(path, config.excludes)
                ):
                    found.append(path)
                    if len(found) >= NEWER_LIST_LIMIT:
                        return found
    return found


def command_restore_plan(config: Config, snapshot: str) -> int:
    try:
        chosen = find_snapshot(config, snapshot)
    except BackupError as err:
        print(err, file=sys.stderr)
        return 1
    taken = parse_time(chosen["time"])
    plan = {
        "id": chosen["id"],
        "short_id": chosen["short_id"],
        "time": chosen["time"],
        "hostname": chosen.get("hostname", ""),
        "paths": chosen.get("paths", []),
        "newer": newer_files(config, taken),
    }
    print(json.dumps(plan))
    return 0


def host_key_digests(config: Config) -> dict[str, str]:
    return {
        str(path): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(Path("/").glob(config.host_key_glob.lstrip("/")))
        if path.is_file()
    }


def walk(root: Path):
    """`root` and everything below it, symlinks listed but never followed."""
    yield root
    for directory, dirs, files in os.walk(root, followlinks=False):
        for name in [*dirs, *files]:
            yield Path(directory, name)


def fix_ownership(config: Config) -> None:
    """Every file in a member's home is the member's, and everything under the data root is
    the team's group, whatever ids they had on the host the snapshot was taken on."""
    homes = Path(config.homes_dir)
    for home in sorted(homes.iterdir()) if homes.is_dir() else []:
        try:
            owner = pwd.getpwnam(home.name).pw_uid
        except KeyError:
            continue
        if home.is_dir() and not home.is_symlink():
            for path in walk(home):
                if path.lstat().st_uid != owner:
                    os.lchown(path, owner, -1)
    root = Path(config.data_root) if config.data_root else None
    if root and config.data_group and root.is_dir() and not root.is_symlink():
        group = grp.getgrnam(config.data_group).gr_gid
        for path in walk(root):
            if path.lstat().st_gid != group:
                os.lchown(path, -1, group)


def put_state_back(config: Config) -> None:
    """The captured copies go back where their services read them."""
    captured = config.capture_dir / "luigid"
    state_dir = luigid_state_dir(config)
    if captured.is_dir() and state_dir is not None:
        owner = state_dir.stat()
        for name in config.luigid["files"]:
            if (captured / name).is_file():
                # Whatever is at the destination (a symlink, say) goes first, unfollowed.
                (state_dir / name).unlink(missing_ok=True)
                shutil.copy2(captured / name, state_dir / name, follow_symlinks=False)
                os.lchown(state_dir / name, owner.st_uid, owner.st_gid)
        log(f"luigid's state restored into {state_dir}")
    database = Path(config.hub["database"])
    copy = config.capture_dir / "jupyterhub" / database.name
    if copy.is_file():
        database.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        for stale in (
            database.with_name(database.name + "-journal"),
            database.with_name(database.name + "-wal"),
            database.with_name(database.name + "-shm"),
        ):
            stale.unlink(missing_ok=True)
        shutil.copy2(copy, database)
        os.chown(database, 0, 0)
        database.chmod(0o600)
        log(f"JupyterHub's database restored to {database}")
    secret = Path(config.hub["cookie_secret"])
    if secret.is_file():
        os.chown(secret, 0, 0)
        secret.chmod(0o600)


def command_restore_files(config: Config, snapshot: str) -> int:
    try:
        with locked(config, within_seconds=600):
            chosen = find_snapshot(config, snapshot)
            keys_before = host_key_digests(config)
            log(f"restoring snapshot {chosen['short_id']} of {chosen['time']}")
            result = restic(config, "restore", chosen["id"], "--target", "/", stream=True)
            if result.returncode != 0:
                raise explain(config, result, "the restore")
            put_state_back(config)
            fix_ownership(config)
            changed_keys = host_key_digests(config) != keys_before
    except (BackupError, OSError, KeyError) as err:
        print(f"restore of {config.project} failed: {err}", file=sys.stderr, flush=True)
        return 1
    print(json.dumps({"restored": chosen["id"], "host_keys_changed": changed_keys}))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, type=Path)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="back up now, then apply the retention policy")
    commands.add_parser("check", help="check the repository")
    commands.add_parser("status", help="print the status file")
    commands.add_parser("init", help="create the repository unless it exists")
    plan = commands.add_parser("restore-plan", help="the snapshot to restore, and newer data")
    plan.add_argument("--snapshot", default="latest")
    files = commands.add_parser("restore-files", help="restore a snapshot's files in place")
    files.add_argument("--snapshot", required=True)
    passthrough = commands.add_parser("restic", help="run restic against the repository")
    passthrough.add_argument("arguments", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    try:
        config = Config(args.config)
    except BackupError as err:
        print(err, file=sys.stderr)
        return 2
    os.umask(0o077)
    if args.command == "restic":
        command, env = restic_command(config, *args.arguments)
        os.execvpe(command[0], command, env)
    if args.command == "status":
        print(json.dumps(read_status(config), indent=2, sort_keys=True))
        return 0
    handlers = {
        "run": lambda: command_run(config),
        "check": lambda: command_check(config),
        "init": lambda: command_init(config),
        "restore-plan": lambda: command_restore_plan(config, args.snapshot),
        "restore-files": lambda: command_restore_files(config, args.snapshot),
    }
    return handlers[args.command]()


if __name__ == "__main__":
    sys.exit(main())
