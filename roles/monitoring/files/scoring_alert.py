#!/usr/bin/python3
"""Alerts of the scoring master: one message per incident, and one when it is over.

    scoring-alert check               run every check; alert new incidents, report recoveries
    scoring-alert unit-failed UNIT    a unit failed (started by scoring-alert@UNIT.service)
    scoring-alert test                send a test alert to every configured target

Reads /etc/scoring-alerts/config.json (written by the monitoring role). Incidents live in
the state file, so an incident that persists is reported once, and a message that could
not be delivered is sent again by the next check.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import email.message
import fcntl
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

CONFIG_FILE = Path(os.environ.get("SCORING_ALERT_CONFIG", "/etc/scoring-alerts/config.json"))
ERROR_WORDS = ("error", "traceback", "exception", "failed", "killed", "timed out", "timeout")


@dataclass
class Finding:
    """Something wrong now: `key` names the incident across checks."""

    key: str
    summary: str
    unit: str
    look_further: str
    details: list[str] = field(default_factory=list)
    grace_seconds: float = 0.0


def as_int(value, default: int = 0) -> int:
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return default


def as_bool(value) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def run(argv: list[str], timeout: float = 30) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        return subprocess.CompletedProcess(argv, 127, "", str(error))


def now() -> float:
    return time.time()


def stamp(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


# --- Where alerts go ---------------------------------------------------------------------


class Notifier:
    def __init__(self, config: dict) -> None:
        self.config = config

    def targets(self) -> list[str]:
        names = []
        if self.config.get("webhook_url"):
            names.append("webhook")
        if self.config.get("email_to"):
            names.append("email")
        return names

    def send(self, subject: str, text: str) -> bool:
        """Deliver to every target; True if at least one took it."""
        delivered = False
        if self.config.get("webhook_url"):
            delivered |= self._webhook(text)
        if self.config.get("email_to"):
            delivered |= self._email(subject, text)
        return delivered

    def _webhook(self, text: str) -> bool:
        # Slack, Mattermost and Teams incoming webhooks all take {"text": ...}.
        body = json.dumps({"text": text}).encode()
        request = urllib.request.Request(
            self.config["webhook_url"],
            data=body,
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            timeout = as_int(self.config.get("webhook_timeout"), 10)
            with urllib.request.urlopen(request, timeout=timeout) as reply:
                if 200 <= reply.status < 300:
                    return True
                print(f"webhook answered {reply.status}", file=sys.stderr)
        except (urllib.error.URLError, OSError, ValueError) as error:
            print(f"webhook not reached: {error}", file=sys.stderr)
        return False

    def _email(self, subject: str, text: str) -> bool:
        message = email.message.EmailMessage()
        message["From"] = self.config.get("email_from") or f"scoring-alerts@{self.config['host']}"
        message["To"] = ", ".join(self.config["email_to"])
        message["Subject"] = subject
        message.set_content(text)
        try:
            sent = subprocess.run(
                [self.config.get("sendmail", "/usr/bin/msmtp"), "-t"],
                input=message.as_bytes(),
                capture_output=True,
                timeout=60,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            print(f"email not sent: {error}", file=sys.stderr)
            return False
        if sent.returncode != 0:
            print(f"email not sent: {sent.stderr.decode(errors='replace')}", file=sys.stderr)
        return sent.returncode == 0


def compose(config: dict, kind: str, finding: Finding, since: float) -> tuple[str, str]:
    host = config["host"]
    title = f"{kind} on {host}: {finding.summary}"
    lines = [title, f"host: {host}", f"unit: {finding.unit}", f"since: {stamp(since)}"]
    if kind == "RECOVERED":
        lines.append(f"until: {stamp(now())}")
    if finding.details:
        lines.append("last lines:")
        lines += [f"    {line}" for line in finding.details]
    lines.append(f"look further: {finding.look_further}")
    return title, "\n".join(lines)


# --- State -------------------------------------------------------------------------------


@contextlib.contextmanager
def locked_state(config: dict):
    path = Path(config["state_file"])
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with path.with_suffix(".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            state = json.loads(path.read_text())
        except (OSError, ValueError):
            state = {}
        state.setdefault("incidents", {})
        yield state
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(state, indent=1, sort_keys=True))
        temporary.replace(path)


# --- systemd units -------------------------------------------------------------------------


def unit_properties(unit: str, *names: str) -> dict[str, str]:
    shown = run(
        ["systemctl", "show", "--timestamp=unix", "--property", ",".join(names), "--", unit]
    )
    values = {}
    for line in shown.stdout.splitlines():
        name, _, value = line.partition("=")
        values[name] = value
    return values


def unix_time(value: str) -> float:
    """A `systemctl show --timestamp=unix` value (@1733090000) as seconds, 0 when unset."""
    try:
        return float(value.lstrip("@"))
    except ValueError:
        return 0.0


def journal(unit: str, lines: int, invocation: str = "", started: float = 0.0) -> list[str]:
    """The unit's last journal lines: those of one run when its invocation is known.

    journald ties a line to the run by the writing process's cgroup; a process that has
    ended before its last lines are read (output flushed at exit) can leave them without
    the run's ID. Then the unit's own lines since the run started stand in, without
    systemd's lines about the unit (they would otherwise read as the run's error).
    """
    argv = ["journalctl", "--no-pager", "--quiet", "-o", "short-iso", "-n", str(lines)]
    if not invocation:
        return run([*argv, "-u", unit]).stdout.splitlines()[-lines:]
    found = run([*argv, f"_SYSTEMD_INVOCATION_ID={invocation}"]).stdout.splitlines()
    if not found and started:
        since = run([*argv, "-u", unit, "--since", f"@{started:.6f}"]).stdout.splitlines()
        found = [line for line in since if " systemd[1]: " not in line]
    return found[-lines:]


def error_line(lines: list[str]) -> str:
    """The last line that reads like the error; lines starting with `error` first."""
    messages = [line.split(": ", 1)[-1] if ": " in line else line for line in lines]
    for message in reversed(messages):
        if message.lower().startswith("error"):
            return message
    for message in reversed(messages):
        if any(word in message.lower() for word in ERROR_WORDS):
            return message
    return ""


def unit_failure(config: dict, unit: str) -> tuple[Finding, float]:
    # The run's last lines may still be on their way to the journal.
    run(["journalctl", "--sync"])
    props = unit_properties(
        unit,
        "Result",
        "InvocationID",
        "ExecMainStatus",
        "ExecMainStartTimestamp",
        "ExecMainExitTimestamp",
        "ActiveState",
    )
    lines = journal(
        unit,
        as_int(config.get("journal_lines"), 20),
        props.get("InvocationID", ""),
        unix_time(props.get("ExecMainStartTimestamp", "")),
    )
    result = props.get("Result") or "failed"
    what = "timed out and was ended" if result == "timeout" else f"failed ({result})"
    summary = f"{unit} {what}"
    error = error_line(lines)
    if error:
        summary += f": {error}"
    finding = Finding(
        key=f"unit:{unit}",
        summary=summary,
        unit=unit,
        look_further=f"journalctl -u {unit} -n 200 --no-pager; systemctl status {unit}",
        details=lines,
    )
    return finding, unix_time(props.get("ExecMainExitTimestamp", "")) or now()


def command_unit_failed(config: dict, unit: str) -> int:
    finding, exited = unit_failure(config, unit)
    notifier = Notifier(config)
    with locked_state(config) as state:
        title, text = compose(config, "PROBLEM", finding, exited)
        sent = notifier.send(title, text)
        # Every failed run is its own incident; its recovery is the next successful run.
        state["incidents"][finding.key] = {
            "since": exited,
            "exited": exited,
            "alerted": sent,
            "summary": finding.summary,
            "unit": finding.unit,
            "look_further": finding.look_further,
            "details": finding.details,
        }
    print(text)
    return 0 if sent else 1


def unit_recovered(unit: str, incident: dict) -> bool:
    props = unit_properties(unit, "Result", "ExecMainExitTimestamp", "ExecMainStatus")
    exited = unix_time(props.get("ExecMainExitTimestamp", ""))
    return (
        exited > float(incident.get("exited", 0)) + 0.5
        and props.get("Result") == "success"
        and props.get("ExecMainStatus") == "0"
    )


# --- Checks -----------------------------------------------------------------------------------


def mount_point(path: str) -> str:
    current = Path(path).resolve()
    while not current.is_mount():
        current = current.parent
    return str(current)


def check_disks(config: dict) -> list[Finding]:
    disk = config.get("disk", {})
    threshold = float(disk.get("threshold_percent", 90))
    findings, seen = [], set()
    for path in disk.get("paths", []):
        if not Path(path).exists():
            continue
        mount = mount_point(path)
        if mount in seen:
            continue
        seen.add(mount)
        usage = os.statvfs(mount)
        used = (usage.f_blocks - usage.f_bfree) * usage.f_frsize
        available = usage.f_bavail * usage.f_frsize
        if used + available == 0:
            continue
        percent = 100.0 * used / (used + available)
        if percent >= threshold:
            findings.append(
                Finding(
                    key=f"disk:{mount}",
                    summary=f"{mount} is {percent:.0f}% full (alert at {threshold:.0f}%), "
                    f"{available / 2**30:.1f} GiB left",
                    unit=f"filesystem {mount}",
                    look_further=f"df -h {mount}; sudo du -xh -d 2 {mount} | sort -h | tail",
                )
            )
    return findings


def parse_time(value) -> float:
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and value:
        with contextlib.suppress(ValueError):
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=dt.UTC)
            return parsed.timestamp()
    return 0.0


def check_backup(config: dict) -> list[Finding]:
    backup = config.get("backup", {})
    path = backup.get("status_file", "")
    if not path:
        return []
    unit = backup.get("unit") or "backup"
    look = f"sudo cat {path}" + (
        f"; journalctl -u {backup['unit']} -n 200" if backup.get("unit") else ""
    )
    details = (
        journal(backup["unit"], as_int(config.get("journal_lines"), 20))
        if backup.get("unit")
        else []
    )
    if not Path(path).exists():
        if as_bool(backup.get("required")):
            # A new host has had no backup yet: missing for longer than the maximum age.
            grace = float(backup.get("max_age_hours", 36)) * 3600
            summary = f"no backup status at {path}: no backup has run"
            return [Finding("backup:missing", summary, unit, look, details, grace)]
        return []
    try:
        status = json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        return [
            Finding("backup:unreadable", f"backup status {path} unreadable: {error}", unit, look)
        ]
    findings = []
    last_success = parse_time(status.get("last_success"))
    # The backup role's fields: last_error (null after a success) and its time, and the
    # result of the last repository check. `result` or `status` serve other writers.
    error, error_time = status.get("last_error"), parse_time(status.get("last_error_time"))
    result = str(status.get("result", status.get("status", ""))).lower()
    if error and error_time >= last_success:
        kind = f" ({status['last_error_kind']})" if status.get("last_error_kind") else ""
        findings.append(
            Finding("backup:failed", f"the last backup failed{kind}: {error}", unit, look, details)
        )
    elif result and result not in ("success", "succeeded", "ok"):
        message = status.get("message") or ""
        summary = f"the last backup failed ({result})" + (f": {message}" if message else "")
        findings.append(Finding("backup:failed", summary, unit, look, details))
    if status.get("last_check_ok") is False:
        summary = f"the backup repository check failed: {status.get('last_check_error') or '?'}"
        findings.append(Finding("backup:check", summary, unit, look, details))
    max_age = float(backup.get("max_age_hours", 36)) * 3600
    if now() - last_success > max_age:
        when = stamp(last_success) if last_success else "never"
        summary = f"the last successful backup is too old ({when}; limit {max_age / 3600:.0f} h)"
        findings.append(Finding("backup:stale", summary, unit, look, details))
    return findings


def check_certificates(config: dict) -> list[Finding]:
    certificates = config.get("certificates", {})
    warn_seconds = as_int(certificates.get("warn_days"), 21) * 86400
    findings = []
    for pattern in certificates.get("files", []):
        for path in sorted(str(match) for match in Path("/").glob(pattern.lstrip("/"))):
            ends = run(["openssl", "x509", "-noout", "-enddate", "-in", path])
            if ends.returncode != 0:
                continue
            expiry = ends.stdout.strip().partition("=")[2]
            soon = run(["openssl", "x509", "-noout", "-checkend", str(warn_seconds), "-in", path])
            if soon.returncode == 1:
                findings.append(
                    Finding(
                        key=f"certificate:{path}",
                        summary=f"certificate {path} expires {expiry} "
                        f"(within {warn_seconds // 86400} days)",
                        unit="dask_tls certificates",
                        look_further=f"openssl x509 -noout -subject -enddate -in {path}; "
                        "re-run site.yml to renew",
                    )
                )
    return findings


def check_containers(config: dict) -> list[Finding]:
    containers = config.get("containers", {})
    grace = as_int(containers.get("unhealthy_minutes"), 10) * 60
    lines = as_int(config.get("journal_lines"), 20)
    findings = []
    for project in containers.get("projects", []):
        listed = run(
            [
                "docker",
                "ps",
                "--all",
                "--quiet",
                "--filter",
                f"label=com.docker.compose.project={project}",
            ]
        )
        ids = listed.stdout.split()
        if listed.returncode != 0 or not ids:
            continue
        inspected = run(["docker", "inspect", *ids])
        try:
            described = json.loads(inspected.stdout)
        except ValueError:
            continue
        for container in described:
            name = container.get("Name", "").lstrip("/")
            state = container.get("State", {})
            health = (state.get("Health") or {}).get("Status", "")
            if state.get("Status") == "running" and health != "unhealthy":
                continue
            condition = (
                "unhealthy" if state.get("Status") == "running" else state.get("Status", "?")
            )
            logs = run(["docker", "logs", "--tail", str(lines), name])
            details = (logs.stdout + logs.stderr).splitlines()[-lines:]
            findings.append(
                Finding(
                    key=f"container:{name}",
                    summary=f"container {name} is {condition}",
                    unit=f"container {name} (Compose project {project})",
                    look_further=f"sudo docker compose -p {project} ps; "
                    f"sudo docker logs --tail 200 {name}; sudo docker inspect {name}",
                    details=details,
                    grace_seconds=grace,
                )
            )
    return findings


def check_jupyterhub(config: dict) -> list[Finding]:
    hub = config.get("jupyterhub", {})
    unit = hub.get("unit")
    if not unit:
        return []
    props = unit_properties(unit, "LoadState", "ActiveState", "SubState")
    if props.get("LoadState") != "loaded":
        return []
    problem = ""
    if props.get("ActiveState") != "active":
        problem = f"{unit} is {props.get('ActiveState')} ({props.get('SubState')})"
    else:
        try:
            with urllib.request.urlopen(hub["url"], timeout=10) as reply:
                if reply.status != 200:
                    problem = f"JupyterHub answers {reply.status} at {hub['url']}"
        except (urllib.error.URLError, OSError, ValueError) as error:
            problem = f"JupyterHub does not answer at {hub['url']}: {error}"
    if not problem:
        return []
    return [
        Finding(
            key="jupyterhub",
            summary=problem,
            unit=unit,
            look_further=f"systemctl status {unit}; journalctl -u {unit} -n 200 --no-pager",
            details=journal(unit, as_int(config.get("journal_lines"), 20)),
            grace_seconds=as_int(hub.get("down_minutes"), 4) * 60,
        )
    ]


CHECKS = (check_disks, check_backup, check_certificates, check_containers, check_jupyterhub)


def command_check(config: dict) -> int:
    notifier = Notifier(config)
    findings = {}
    for check in CHECKS:
        try:
            for finding in check(config):
                findings[finding.key] = finding
        except Exception as error:  # one broken check must not stop the others
            key = f"checker:{check.__name__}"
            findings[key] = Finding(
                key,
                f"{check.__name__} could not run: {error}",
                "scoring-alert-check.service",
                "journalctl -u scoring-alert-check.service -n 200",
            )
    undelivered = 0
    with locked_state(config) as state:
        incidents = state["incidents"]
        for key, finding in findings.items():
            incident = incidents.setdefault(key, {"since": now(), "alerted": False})
            incident.update(
                summary=finding.summary, unit=finding.unit, look_further=finding.look_further
            )
            if incident["alerted"] or now() - incident["since"] < finding.grace_seconds:
                continue
            title, text = compose(config, "PROBLEM", finding, incident["since"])
            incident["alerted"] = notifier.send(title, text)
            undelivered += not incident["alerted"]
            print(text)
        for key, incident in list(incidents.items()):
            if key in findings:
                continue
            if key.startswith("unit:"):
                unit = key.removeprefix("unit:")
                if not incident.get("alerted"):
                    # The failure alert itself was not delivered: try again.
                    finding = Finding(
                        key,
                        incident["summary"],
                        unit,
                        incident["look_further"],
                        incident.get("details", []),
                    )
                    title, text = compose(config, "PROBLEM", finding, incident["since"])
                    incident["alerted"] = notifier.send(title, text)
                    undelivered += not incident["alerted"]
                    continue
                if not unit_recovered(unit, incident):
                    continue
            if incident.get("alerted"):
                finding = Finding(
                    key,
                    incident.get("summary", key),
                    incident.get("unit", ""),
                    incident.get("look_further", ""),
                )
                title, text = compose(config, "RECOVERED", finding, incident["since"])
                if not notifier.send(title, text):
                    undelivered += 1
                    continue
                print(text)
            del incidents[key]
    return 1 if undelivered else 0


def command_test(config: dict) -> int:
    notifier = Notifier(config)
    targets = notifier.targets()
    if not targets:
        print(
            "No alert target is configured: set monitoring_webhook_url or monitoring_email_to.",
            file=sys.stderr,
        )
        return 2
    finding = Finding(
        key="test",
        summary="test alert: the alert path works",
        unit="scoring-alert-test",
        look_further="journalctl -u 'scoring-alert*' -n 50",
    )
    title, text = compose(config, "TEST", finding, now())
    if notifier.send(title, text):
        print(f"test alert sent ({', '.join(targets)}):\n{text}")
        return 0
    print(
        f"the test alert reached no target ({', '.join(targets)}); see the errors above",
        file=sys.stderr,
    )
    return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("check", help="run every check")
    failed = commands.add_parser("unit-failed", help="alert that a unit failed")
    failed.add_argument("unit")
    commands.add_parser("test", help="send a test alert")
    arguments = parser.parse_args(argv)
    config = json.loads(CONFIG_FILE.read_text())
    if arguments.command == "check":
        return command_check(config)
    if arguments.command == "unit-failed":
        return command_unit_failed(config, arguments.unit)
    return command_test(config)


if __name__ == "__main__":
    sys.exit(main())
