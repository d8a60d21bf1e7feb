"""``fogmesh twin``: the on-device digital twin — consent, import, learn, predict, ask, forget,
rotate-key.

Thin: every command opens a ``DigitalTwinConcierge`` in the data directory and formats what it
returns. Errors are ``FogmeshError`` and become one line on stderr in ``fogmesh.cli.app.main``.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from fogmesh.config import load_settings
from fogmesh.errors import ConfigError
from fogmesh.mobile import MobileResourceManager
from fogmesh.twin import DigitalTwinConcierge, UserPreferences, embeddings_available, parse_source
from fogmesh.twin.embeddings import EXTRA_HINT
from fogmesh.twin.sources import naive_times_in, parse_time

__all__ = ["app"]

app = typer.Typer(
    help="Your private on-device digital twin: consented, encrypted, self-deleting data.",
    no_args_is_help=True,
)
consent_app = typer.Typer(help="Grant or revoke consent for a data source.", no_args_is_help=True)
app.add_typer(consent_app, name="consent")
console = Console()

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", help="twin directory (default: <FOGMESH_HOME>/twin)"),
]
AsJson = Annotated[bool, typer.Option("--json", help="print JSON for scripts")]


def _dir(data_dir: Path | None) -> Path:
    return data_dir if data_dir is not None else load_settings().home / "twin"


def _open(data_dir: Path | None) -> DigitalTwinConcierge:
    return DigitalTwinConcierge(_dir(data_dir))


def _emit(info: Any, as_json: bool, text: str) -> None:
    if as_json:
        typer.echo(json.dumps(info, default=str))
    else:
        console.print(text, highlight=False, soft_wrap=True)


@app.command("init")
def init(
    data_dir: DataDir = None,
    retention_hours: Annotated[
        int | None, typer.Option("--retention-hours", help="hours raw data is kept (1–24)")
    ] = None,
    privacy_mode: Annotated[
        str | None,
        typer.Option("--privacy-mode", help="strict, balanced or open (see docs/twin.md)"),
    ] = None,
    only_when_charging: Annotated[
        bool | None,
        typer.Option("--only-when-charging/--on-any-power", help="learn only while on mains power"),
    ] = None,
    allow_elevation: Annotated[
        bool | None,
        typer.Option(
            "--allow-elevation/--no-elevation", help="consent to offer noised knowledge globally"
        ),
    ] = None,
    delete_after_learning: Annotated[
        bool | None,
        typer.Option(
            "--delete-after-learning/--keep-after-learning",
            help="delete raw records once a cycle learnt them",
        ),
    ] = None,
    timezone: Annotated[
        str | None,
        typer.Option(
            "--timezone",
            help="IANA zone your routine runs in; 'device' follows the device's zone",
        ),
    ] = None,
    embeddings: Annotated[
        bool | None,
        typer.Option(
            "--embeddings/--no-embeddings",
            help="hybrid BM25 + embedding search (needs the embeddings extra)",
        ),
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Create the twin (its key, its vault and your preferences), or change the settings given.

    On an existing twin only the options given change; the rest stay as they are. A new twin
    starts from the defaults: 24 h retention, balanced privacy, the device's time zone.

    Example: fogmesh twin init --retention-hours 12 --privacy-mode strict --timezone Europe/Berlin
    """
    if embeddings and not embeddings_available():
        raise ConfigError(EXTRA_HINT, field="embeddings")
    directory = _dir(data_dir)
    existing = DigitalTwinConcierge(directory)
    stored = existing.preferences
    sources = existing.vault.consented()
    existing.close()
    changes: dict[str, object] = {
        "max_data_retention_hours": retention_hours,
        "privacy_mode": privacy_mode,
        "learn_only_when_charging": only_when_charging,
        "allow_elevation": allow_elevation,
        "delete_after_learning": delete_after_learning,
        "embeddings": embeddings,
    }
    values = stored.to_dict() | {k: v for k, v in changes.items() if v is not None}
    if timezone is not None:
        values["timezone"] = None if timezone.strip().lower() == "device" else timezone
    values["enabled_sources"] = sources
    prefs = UserPreferences(**values)
    with DigitalTwinConcierge(directory, prefs) as twin:
        info = twin.status()
    _emit(
        info,
        as_json,
        f"twin ready in {directory} ({prefs.privacy_mode}, {prefs.max_data_retention_hours} h, "
        f"{info['timezone']}, search: {info['search']})",
    )


@consent_app.command("grant")
def grant(source: str, data_dir: DataDir = None, as_json: AsJson = False) -> None:
    """Allow the twin to store one data source.

    Example: fogmesh twin consent grant app_usage
    """
    src = parse_source(source)
    with _open(data_dir) as twin:
        twin.grant_consent(src)
        info = {"granted": src.value, "consented_sources": twin.status()["consented_sources"]}
    _emit(info, as_json, f"consent granted for {src.value}")


@consent_app.command("revoke")
def revoke(source: str, data_dir: DataDir = None, as_json: AsJson = False) -> None:
    """Withdraw consent: the source's stored data is deleted at once.

    Example: fogmesh twin consent revoke location
    """
    src = parse_source(source)
    with _open(data_dir) as twin:
        deleted = twin.revoke_consent(src)
    _emit(
        {"revoked": src.value, "deleted": deleted},
        as_json,
        f"revoked {src.value}: {deleted} records deleted",
    )


@app.command("ingest")
def ingest(
    file: Annotated[Path, typer.Argument(help="export file (.csv, .tsv, .ics, .gpx, .json, ...)")],
    source: Annotated[str, typer.Option("--source", help="data source of the file")],
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """Import an export file; bad rows are listed with line numbers and skipped.

    Example: fogmesh twin ingest --source calendar ~/Downloads/calendar.ics
    """
    with _open(data_dir) as twin:
        report = twin.ingest_file(source, file)
    info = report.to_dict()
    lines = [f"stored {report.stored} {report.source.value} records from {file}"]
    lines += [f"  line {e.line}: {e.reason}" for e in report.errors[:20]]
    if len(report.errors) > 20:
        lines.append(f"  … and {len(report.errors) - 20} more skipped rows")
    _emit(info, as_json, "\n".join(lines))


@app.command("learn")
def learn(
    data_dir: DataDir = None,
    profile: Annotated[
        str | None, typer.Option("--profile", help="emulated device preset or profile file")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Run one learning cycle now (deferred if the device must save power).

    Example: fogmesh twin learn --json
    """

    async def run() -> Any:
        device = await MobileResourceManager().create_device_profile_from_env(profile)
        with _open(data_dir) as twin:
            return await twin.run_learning_cycle(device)

    cycle = asyncio.run(run())
    if cycle.learned:
        text = f"cycle {cycle.cycle}: improvement {cycle.improvement_score:+.3f} — {cycle.reason}"
    else:
        text = f"no cycle run ({cycle.cycle} so far) — {cycle.reason}"
    _emit(cycle.to_dict(), as_json, text)


@app.command("predict")
def predict(
    data_dir: DataDir = None,
    at: Annotated[
        str | None, typer.Option("--at", help="ISO time, local if no zone (default: now)")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """What the twin expects next: app, place, purchase category, busy or free.

    Example: fogmesh twin predict --at 2026-11-30T08:15:00
    """
    try:
        moment = parse_time(at) if at else None  # checked before the twin is opened
    except ValueError as exc:
        raise ConfigError(f"cannot read {at!r} as a time", field="--at") from exc
    with _open(data_dir) as twin:
        if at:
            with naive_times_in(twin.tz):  # --at without a zone is the owner's wall clock
                moment = parse_time(at)
        out = twin.predict(moment)
    if as_json:
        typer.echo(json.dumps(out))
        return
    table = Table("what", "likeliest", "p")
    for key, options in out.items():
        for label, p in options[:3] or [("(no data yet)", 0.0)]:
            table.add_row(key, label, f"{p:.2f}")
    console.print(table)


@app.command("ask")
def ask(
    question: Annotated[str, typer.Argument(help="words to look for in your own data")],
    k: Annotated[int, typer.Option("-k", help="how many results")] = 5,
    data_dir: DataDir = None,
    as_json: AsJson = False,
) -> None:
    """Search your personal knowledge base (BM25, or hybrid with embeddings; in memory only).

    Example: fogmesh twin ask "dinner friday"
    """
    with _open(data_dir) as twin:
        hits = twin.ask(question, k)
        zone = twin.tz
    if as_json:
        typer.echo(json.dumps([h.to_dict() for h in hits]))
        return
    if not hits:
        console.print("nothing found")
    for hit in hits:
        when = datetime.fromtimestamp(hit.chunk.timestamp, zone).strftime("%Y-%m-%d %H:%M")
        console.print(
            f"{hit.score:6.2f}  {when}  [{hit.chunk.source}] {hit.chunk.text}",
            highlight=False,
            markup=False,
        )


@app.command("status")
def status(data_dir: DataDir = None, as_json: AsJson = False) -> None:
    """Preferences, consented sources, stored records and learning progress.

    Example: fogmesh twin status --json
    """
    with _open(data_dir) as twin:
        info = twin.status()
    records = ", ".join(f"{k} {v}" for k, v in sorted(info["records"].items())) or "none"
    consented = ", ".join(info["consented_sources"]) or "none"
    _emit(
        info,
        as_json,
        f"twin in {info['data_dir']}\nconsented: {consented}\nrecords: {records}\n"
        f"learning cycles: {info['learning_cycles']}",
    )


@app.command("forget")
def forget(
    data_dir: DataDir = None,
    source: Annotated[
        str | None, typer.Option("--source", help="only this source (default: everything)")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Delete stored data now (all of it and the learnt model, or one source's records).

    Example: fogmesh twin forget --source conversations
    """
    src = parse_source(source) if source is not None else None
    with _open(data_dir) as twin:
        deleted = twin.forget(src)
    what = src.value if src is not None else "all sources and the model"
    _emit(
        {"deleted": deleted, "source": src.value if src else None},
        as_json,
        f"deleted {deleted} records ({what})",
    )


@app.command("privacy-report")
def privacy_report(data_dir: DataDir = None, as_json: AsJson = False) -> None:
    """Today's differential-privacy budget, retention and consent.

    Example: fogmesh twin privacy-report --json
    """
    with _open(data_dir) as twin:
        info = twin.privacy_report()
    _emit(info, as_json, "\n".join(f"{k}: {v}" for k, v in info.items()))


@app.command("rotate-key")
def rotate_key(data_dir: DataDir = None, as_json: AsJson = False) -> None:
    """Re-seal everything under a new master key, in one transaction; the old key is kept
    until that commits, then replaced (a crash leaves either key, never half of each).

    Example: fogmesh twin rotate-key
    """
    with _open(data_dir) as twin:
        count = twin.rotate_key()
        info = {"resealed": count, "key_file": str(twin.data_dir / "twin.key")}
    _emit(info, as_json, f"re-sealed {count} items under a new key ({info['key_file']})")
