"""Live configuration: a new config validated, versioned, written and applied without a restart.

:class:`ConfigManager` is what the config API (:mod:`edge.api.config_routes`) talks to. A change
goes through the same steps whatever its origin (PUT, PATCH, rollback, automatic rollback):

1. validated as a whole (pydantic; every problem as ``{path, reason}``, nothing changed);
2. compared with the running config leaf by leaf: each changed key's ``x-apply`` class
   (:func:`edge.config.apply_class`) says whether it is applied in place (``hot``) or restarts
   one component (``restart:camera`` …); ``restart:process`` keys are refused;
3. saved as a new version in the store and written to the config file atomically;
4. applied: leaf values are copied into the *running* model (everything that holds a section
   sees them), :meth:`Edge.apply_hot` pushes the values that were copied at construction, and
   only the components concerned restart;
5. judged: once the stream is online the version is marked good. After a change that restarted
   the camera, a stream still not online after ``camera.rollback_grace_s`` sends the edge back to
   the last good version by itself (an ``auto_rolled_back`` config event and an alert).

The pure parts (merge patch, masking, diff, validation errors, TOML text) are functions below,
tested without I/O.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import logging
import tomllib
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Final, Literal, Protocol, get_args

import tomli_w
from pydantic import BaseModel, SecretStr, ValidationError

from edge.config import APPLY_KEY, SECRET_URL_KEY, URL_MASK, EdgeConfig, redact_url, unredact_url
from edge.errors import ConfigError, EdgeError, SourceURLError
from fleet_common.files import atomic_write_text
from fleet_common.problems import problem_list
from fleet_common.timefmt import rfc3339
from fleet_common.wire.edge import ConfigApplied, ConfigDoc, ConfigVersionInfo, StreamStatus
from fleet_common.wire.events import (
    TOPIC_EVENTS,
    ConfigPayload,
    EventPayload,
    alert,
    dump_payload,
    kind_of,
)

if TYPE_CHECKING:
    from edge.camera import FrameSource
    from edge.metrics import EdgeMetrics
    from edge.snapshots.cache import SnapshotCache
    from edge.store import Store
    from edge.store.schema import ConfigVersion

log = logging.getLogger("edge.config")

MASK: Final = URL_MASK
# What pydantic writes for a SecretStr it dumps as JSON: earlier versions stored this in place of
# the Plate Recognizer token. Read back, it means "the secret is not known here" like MASK.
_PYDANTIC_MASK: Final = "**********"
HOT: Final = "hot"
# Deepest JSON accepted from a client (the config is 3 levels deep): deeper is refused before
# anything recurses over it.
MAX_JSON_DEPTH: Final = 32
# A problem's reason is cut to this length: an error never echoes a big input back.
# Versions whose secrets are remembered in memory (stored versions hold them masked).
_SECRETS_KEPT: Final = 64
PROCESS: Final = "restart:process"

FlagValue = tuple[Any, Any]  # (the value a command-line flag gave, the file's value or None)
Emit = Callable[..., Awaitable[int]]  # EventLog.emit(kind, payload, outbox_topic=None)
OnApplied = Callable[[int, EdgeConfig], Awaitable[None]]


# ---------------------------------------------------------------------- errors
class ConfigInvalid(ConfigError):
    """A proposed config is invalid; ``errors`` lists ``{path, reason}`` for each problem."""

    def __init__(self, errors: list[FieldProblem]) -> None:
        message = "invalid configuration: " + "; ".join(f"{e.path}: {e.reason}" for e in errors)
        super().__init__(message, errors=[{"path": e.path, "reason": e.reason} for e in errors])
        self.errors = errors


class ConfigConflict(ConfigError):
    """``If-Match`` named a version that is no longer the running one."""

    code: ClassVar[str] = "version_conflict"
    http_status: ClassVar[int] = 412


class ConfigNotFound(ConfigError):
    """No such version (or no good version to roll back to)."""

    code: ClassVar[str] = "not_found"
    http_status: ClassVar[int] = 404


class ConfigNotSaved(ConfigError):
    """The config file could not be written; nothing was applied."""

    code: ClassVar[str] = "config_not_saved"
    http_status: ClassVar[int] = 500


@dataclass(frozen=True, slots=True)
class FieldProblem:
    path: str
    reason: str


# ---------------------------------------------------------------------- pure helpers
def _leaf_classes(model: type[BaseModel], prefix: str = "") -> dict[str, str]:
    classes: dict[str, str] = {}
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        ann = info.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            classes.update(_leaf_classes(ann, f"{path}."))
            continue
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        # Unclassified keys are treated as needing a process restart: never applied by halves.
        classes[path] = str(extra.get(APPLY_KEY, PROCESS))
    return classes


APPLY: Final[Mapping[str, str]] = _leaf_classes(EdgeConfig)
"""Every leaf key of the config (dotted path) → its ``x-apply`` class."""

SecretKind = Literal["secret", "url"]


def _is_secret_type(annotation: Any) -> bool:
    if annotation is SecretStr:
        return True
    return any(_is_secret_type(arg) for arg in get_args(annotation))


def _secret_leaves(model: type[BaseModel], prefix: str = "") -> dict[str, SecretKind]:
    found: dict[str, SecretKind] = {}
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        ann = info.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            found.update(_secret_leaves(ann, f"{path}."))
            continue
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        if _is_secret_type(ann):
            found[path] = "secret"
        elif extra.get(SECRET_URL_KEY):
            found[path] = "url"
    return found


SECRETS: Final[Mapping[str, SecretKind]] = _secret_leaves(EdgeConfig)
"""Every secret leaf of the config → ``secret`` (a SecretStr: masked whole) or ``url`` (a URL
whose credentials are masked, marked ``x-secret-url``). Found from the model, so a new secret
field is masked, kept and round-tripped without touching this module."""


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON merge patch: objects merge, ``null`` removes, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def plain(config: EdgeConfig) -> dict[str, Any]:
    """The config as JSON data with its secrets in clear (the config file needs them)."""
    data = config.model_dump(mode="json")
    for path, kind in SECRETS.items():
        if kind == "secret":
            value = _value(config, path)
            _put(data, path, value.get_secret_value() if value is not None else None)
    return data


def _put(data: dict[str, Any], path: str, value: Any) -> None:
    """Set a leaf where its section exists (a partial document may lack it)."""
    *parents, leaf = path.split(".")
    node: Any = data
    for key in parents:
        node = node.get(key) if isinstance(node, dict) else None
    if isinstance(node, dict) and leaf in node:
        node[leaf] = value


def mask(data: Mapping[str, Any]) -> dict[str, Any]:
    """A copy fit for the API and the store: every secret as ``***``, every URL's credentials
    (user info password, credential query parameters) as ``***``."""
    out = copy.deepcopy(dict(data))
    for path, kind in SECRETS.items():
        value = _get(out, path)
        if kind == "secret" and value is not None:
            _put(out, path, MASK)
        elif kind == "url" and isinstance(value, str):
            _put(out, path, redact_url(value, MASK))
    return out


def unmask(data: Mapping[str, Any], current: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` with each ``***`` sent back replaced by the running secret it stands for."""
    out = copy.deepcopy(dict(data))
    for path, kind in SECRETS.items():
        value, running = _get(out, path), _get(current, path)
        if kind == "secret" and value in (MASK, _PYDANTIC_MASK):
            _put(out, path, running)
        elif kind == "url" and isinstance(value, str) and isinstance(running, str):
            _put(out, path, unredact_url(value, running, MASK))
    return out


def secrets_of(data: Mapping[str, Any]) -> dict[str, Any]:
    """The secret leaves of a plain config (what a masked stored version lacks)."""
    return {path: _get(data, path) for path in SECRETS}


def json_depth(data: Any) -> int:
    """Nesting depth of JSON data, without recursion (a hostile document cannot blow the stack)."""
    deepest, stack = 0, [(data, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            deepest = max(deepest, depth)
            if depth > MAX_JSON_DEPTH:
                return depth
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, depth + 1) for child in children)
    return deepest


def _get(data: Mapping[str, Any], path: str) -> Any:
    node: Any = data
    for key in path.split("."):
        node = node.get(key) if isinstance(node, Mapping) else None
    return node


def diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """The dotted leaf paths whose values differ, in the model's order."""
    return [path for path in APPLY if _get(old, path) != _get(new, path)]


def classify(paths: list[str]) -> tuple[list[str], list[str], list[str]]:
    """``(hot paths, components to restart, process-only paths)`` of a set of changes."""
    hot, components, process = [], set(), []
    for path in paths:
        kind = APPLY.get(path, PROCESS)
        if kind == HOT:
            hot.append(path)
        elif kind == PROCESS:
            process.append(path)
        else:
            components.add(kind.removeprefix("restart:"))
    return hot, sorted(components), process


def problems(err: ValidationError) -> list[FieldProblem]:
    """pydantic's errors as ``{path, reason}``; a whole-section check names the section."""
    found = problem_list(err.errors(include_input=False, include_url=False))
    return [FieldProblem(p["path"], p["reason"]) for p in found]


def validate(data: Any) -> EdgeConfig:
    """The config ``data`` describes, or :class:`ConfigInvalid` with every problem."""
    if not isinstance(data, dict):
        raise ConfigInvalid([FieldProblem("(root)", "the config must be a JSON object")])
    if json_depth(data) > MAX_JSON_DEPTH:
        raise ConfigInvalid([FieldProblem("(root)", f"nested deeper than {MAX_JSON_DEPTH} levels")])
    try:
        return EdgeConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigInvalid(problems(err)) from err


def _drop_none(data: Any) -> Any:
    """``data`` without null values, in tables and in arrays of tables alike (TOML has none)."""
    if isinstance(data, Mapping):
        return {k: _drop_none(v) for k, v in data.items() if v is not None}
    if isinstance(data, list):
        return [_drop_none(v) for v in data if v is not None]
    return data


def toml_text(
    config: EdgeConfig, version: int, flags: Mapping[str, FlagValue] | None = None
) -> str:
    """The config file's text. TOML has no null: unset optional keys are left out (= default).

    ``flags``: keys set on the command line → ``(value given, what the file said or None)``.
    Such a key still at the flag's value is written as the file had it: a flag lasts one run,
    the file is what the next start without it reads.
    """
    data = plain(config)
    for path, (given, in_file) in (flags or {}).items():
        if _get(data, path) == given:
            *parents, leaf = path.split(".")
            node = data
            for key in parents:
                node = node.setdefault(key, {})
            node[leaf] = in_file
    header = (
        f"# carwash-edge configuration, version {version}, written by the config API.\n"
        "# Comments are not kept when the edge rewrites this file; command-line flags still\n"
        "# override it at every start.\n\n"
    )
    return header + tomli_w.dumps(_drop_none(data))


def _assign(model: BaseModel, path: str, value: Any) -> None:
    """Set one leaf of a running model in place, without validating it again.

    The new config was validated as a whole; assigning leaf by leaf with validation would trip
    cross-field checks half-way (``cool_c`` below ``hot_c``). Sections keep their identity, so
    whoever holds ``config.snapshots`` or ``source.config`` sees the new value.
    """
    *parents, leaf = path.split(".")
    node = model
    for key in parents:
        node = getattr(node, key)
    node.__dict__[leaf] = value
    node.__pydantic_fields_set__.add(leaf)


def _value(model: BaseModel, path: str) -> Any:
    node: Any = model
    for key in path.split("."):
        node = getattr(node, key)
    return node


def _canonical(data: Mapping[str, Any]) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


# ---------------------------------------------------------------------- the manager
class ConfigTarget(Protocol):
    """What a config change acts on: the running config (edited in place), the parts that
    copied values when built (:meth:`apply_hot`), the components a change restarts, and the
    stream whose health judges a camera change. :class:`edge.service.Edge` is one."""

    config: EdgeConfig
    metrics: EdgeMetrics
    source: FrameSource
    cache: SnapshotCache

    def apply_hot(self) -> None: ...

    async def restart_component(self, component: str) -> bool: ...

    def stream_status(self, now_mono: float | None = None) -> StreamStatus: ...


class ConfigManager:
    """The running config's versions, and the one way to change it. Lives on the loop."""

    def __init__(
        self,
        edge: ConfigTarget,
        store: Store,
        *,
        path: Path,
        emit: Emit,
        on_applied: OnApplied | None = None,
        flag_keys: Collection[str] = (),
    ) -> None:
        self.edge = edge
        self.store = store
        self.path = path
        self._emit = emit
        self._on_applied = on_applied
        self.version = 0
        self._lock = asyncio.Lock()
        self._judge: asyncio.Task[None] | None = None
        self._flag_keys = tuple(flag_keys)
        self._flags: dict[str, FlagValue] = {}
        # Stored versions hold their secrets masked; the secrets of the versions made or loaded
        # in this run are kept here, so a rollback (automatic ones above all) restores them.
        self._secrets: dict[int, dict[str, Any]] = {}
        self._judge_deadline = False  # the running judge rolls back if the stream stays down

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Make the running config a version (unless it is the newest one already)."""
        running = plain(self.edge.config)
        in_file = await asyncio.to_thread(_read_toml, self.path)
        self._flags = {k: (_get(running, k), _get(in_file or {}, k)) for k in self._flag_keys}
        current = _canonical(mask(running))
        newest = await asyncio.to_thread(self.store.config_versions, 1)
        if newest and _canonical(mask(json.loads(newest[0].config_json))) == current:
            self.version = newest[0].version
        else:
            where = str(self.path) if in_file is not None else "defaults and flags"
            self.version = await asyncio.to_thread(
                self.store.save_config_version, current, "startup", f"loaded from {where}"
            )
        self._remember(self.version, running)
        log.info("config version %d", self.version)
        self._start_judge(self.version, rollback_to=None)

    async def stop(self) -> None:
        await self._cancel_judge()

    # ------------------------------------------------------------------ reading
    def document(self) -> ConfigDoc:
        return ConfigDoc(version=self.version, config=mask(plain(self.edge.config)))

    async def history(self, limit: int = 50) -> list[ConfigVersionInfo]:
        rows = await asyncio.to_thread(self.store.config_versions, limit)
        return [
            ConfigVersionInfo(
                version=r.version, created_at=rfc3339(r.created_at), source=r.source,
                reason=r.reason, good=r.good,
            )
            for r in rows
        ]  # fmt: skip

    async def version_doc(self, version: int) -> ConfigDoc:
        if not 0 <= version <= MAX_VERSION:
            raise ConfigNotFound(f"no config version {version}")
        row = await asyncio.to_thread(self.store.config_version, version)
        if row is None:
            raise ConfigNotFound(f"no config version {version} (pruned or never made)")
        return ConfigDoc(version=version, config=mask(json.loads(row.config_json)))

    # ------------------------------------------------------------------ changing
    async def put(
        self, body: Any, *, if_match: int | None = None, source: str = "api", reason: str = ""
    ) -> ConfigApplied:
        """Replace the whole config (``***`` keeps a secret)."""
        async with self._lock:
            self._check_match(if_match)
            if not isinstance(body, dict):
                raise ConfigInvalid([FieldProblem("(root)", "the config must be a JSON object")])
            _check_depth(body)
            new = validate(unmask(body, plain(self.edge.config)))
            return await self._apply(new, source=source, reason=reason, action="applied")

    async def patch(
        self, patch: Any, *, if_match: int | None = None, source: str = "api", reason: str = ""
    ) -> ConfigApplied:
        """Change some keys: an RFC 7396 merge patch over the running config."""
        async with self._lock:
            self._check_match(if_match)
            if not isinstance(patch, dict):
                raise ConfigInvalid([FieldProblem("(root)", "a merge patch must be a JSON object")])
            _check_depth(patch)
            current = plain(self.edge.config)
            new = validate(merge_patch(current, unmask(patch, current)))
            return await self._apply(new, source=source, reason=reason, action="applied")

    async def rollback(
        self, version: int | None = None, *, source: str = "api", reason: str = ""
    ) -> ConfigApplied:
        """Go back to ``version``, or to the newest good version older than the running one."""
        async with self._lock:
            return await self._rollback(version, source=source, reason=reason, action="rolled_back")

    async def _rollback(
        self, version: int | None, *, source: str, reason: str, action: str
    ) -> ConfigApplied:
        target = await asyncio.to_thread(self._rollback_target, version)
        data = json.loads(target.config_json)
        # Keys only a restart can change stay as they run: an old version may have been made
        # with other flags (--listen, --data-dir).
        current = plain(self.edge.config)
        # Secrets: the version's own where this run made it, else the running ones (a stored
        # version holds them masked).
        known = self._secrets.get(target.version)
        data = unmask(data, current) if known is None else _with_values(data, known)
        for path, kind in APPLY.items():
            if kind == PROCESS:
                parent = _get(data, path.rpartition(".")[0]) if "." in path else data
                if isinstance(parent, dict):
                    parent[path.rpartition(".")[2]] = _get(current, path)
        new = validate(data)
        why = reason or f"back to version {target.version}"
        return await self._apply(new, source=source, reason=why, action=action)

    def _rollback_target(self, version: int | None) -> ConfigVersion:
        if version is not None:
            row = self.store.config_version(version) if 0 <= version <= MAX_VERSION else None
            if row is None:
                raise ConfigNotFound(f"no config version {version} (pruned or never made)")
            return row
        row = self._good_before(self.version)
        if row is None:
            raise ConfigNotFound("no earlier version is known to be good")
        return row

    def _good_before(self, version: int) -> ConfigVersion | None:
        """The newest version older than ``version`` that had the stream online. Blocking."""
        for row in self.store.config_versions(self.store.caps.max_config_versions):
            if row.version < version and row.good:
                return row
        return None

    def _remember(self, version: int, data: Mapping[str, Any]) -> None:
        self._secrets[version] = secrets_of(data)
        while len(self._secrets) > _SECRETS_KEPT:
            del self._secrets[min(self._secrets)]

    def _check_match(self, if_match: int | None) -> None:
        if if_match is not None and if_match != self.version:
            raise ConfigConflict(
                f"the config is at version {self.version}, not {if_match}: reload and retry"
            )

    async def _apply(
        self, new: EdgeConfig, *, source: str, reason: str, action: str
    ) -> ConfigApplied:
        """Save, write and apply ``new``; the caller holds the lock."""
        edge = self.edge
        old_plain, new_plain = plain(edge.config), plain(new)
        changed = diff(old_plain, new_plain)
        hot, components, process = classify(changed)
        if process:
            raise ConfigInvalid([
                FieldProblem(p, "read at start-up only: change it in the config file and restart"
                             " carwash-edge")
                for p in process
            ])  # fmt: skip
        if not changed:
            return ConfigApplied(version=self.version, config=mask(new_plain), hot=[], restarted=[])
        if "camera" in components:
            await asyncio.to_thread(_check_source, new, edge)
        # A change on top of one still on probation (the stream not back yet) stays on it.
        on_probation = self._judge_deadline
        await self._cancel_judge()
        previous = self.version
        if edge.stream_status() == "online":  # the running version works: it is a good one
            await asyncio.to_thread(self.store.mark_config_good, previous, True)
        version = await asyncio.to_thread(
            self.store.save_config_version, _canonical(mask(new_plain)), source, reason
        )
        self._remember(version, new_plain)
        try:
            await asyncio.to_thread(
                atomic_write_text, self.path, toml_text(new, version, self._flags)
            )
        except OSError as err:
            await asyncio.to_thread(self.store.mark_config_good, version, False)
            raise ConfigNotSaved(f"cannot write {self.path}: {err}; nothing changed") from err
        for path in changed:
            _assign(edge.config, path, _value(new, path))
        edge.apply_hot()
        restarted = [c for c in components if await edge.restart_component(c)]
        self.version = version
        log.info(
            "config version %d %s (%s): hot %s, restarted %s",
            version, action, source, ", ".join(hot) or "-", ", ".join(restarted) or "-",
        )  # fmt: skip
        await self._event(ConfigPayload(
            version=version, action=action, source=source, restarted=restarted, reason=reason,
        ))  # fmt: skip
        if self._on_applied is not None:
            await self._on_applied(version, edge.config)
        rollback_to = None
        if action == "applied" and ("camera" in restarted or on_probation):
            # Back to the last version known good, not merely the previous one: that may be
            # a bad change itself (two bad camera URLs in a row).
            good = await asyncio.to_thread(self._good_before, version)
            rollback_to = good.version if good is not None else None
        self._start_judge(version, rollback_to=rollback_to)
        return ConfigApplied(version=version, config=mask(new_plain), hot=hot, restarted=restarted)

    async def _event(self, payload: EventPayload) -> None:
        kind = kind_of(payload)
        try:
            await self._emit(kind, dump_payload(payload), outbox_topic=TOPIC_EVENTS)
        except EdgeError as err:  # the change stands; only its record failed
            log.warning("cannot record the %s event: %s", kind, err)

    # ------------------------------------------------------------------ judging a version
    def _start_judge(self, version: int, *, rollback_to: int | None) -> None:
        self._judge_deadline = rollback_to is not None
        self._judge = asyncio.get_running_loop().create_task(
            self._run_judge(version, rollback_to), name=f"config-judge-{version}"
        )

    async def _cancel_judge(self) -> None:
        task, self._judge = self._judge, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run_judge(self, version: int, rollback_to: int | None) -> None:
        """Mark ``version`` good once the stream is online; roll back if it never comes."""
        grace = self.edge.config.camera.rollback_grace_s if rollback_to is not None else None
        if await self._online_within(grace):
            self._judge_deadline = False
            await asyncio.to_thread(self.store.mark_config_good, version, True)
            log.debug("config version %d is good: the stream is online", version)
            return
        assert rollback_to is not None  # noqa: S101 - without a deadline we only return online
        status = self.edge.stream_status()
        error = self.edge.source.stats.last_error or "no error reported"
        reason = (
            f"stream {status} {grace:g} s after version {version} restarted the camera"
            f" ({error}); back to version {rollback_to}"
        )
        log.warning("config: %s", reason)
        await asyncio.to_thread(self.store.mark_config_good, version, False)
        async with self._lock:
            if self.version != version:  # a person changed it meanwhile: theirs wins
                return
            try:
                await self._rollback(
                    rollback_to, source="auto-rollback", reason=reason, action="auto_rolled_back"
                )
            except ConfigError as err:
                log.warning("config: automatic rollback to version %d failed: %s", rollback_to, err)
                return
        await self._event(alert("config_rollback", "warning", True, reason))

    async def _online_within(self, grace_s: float | None) -> bool:
        """Wait for the stream to be online (frames, not timers): True, or False after grace."""
        loop = asyncio.get_running_loop()
        deadline = None if grace_s is None else loop.time() + grace_s
        cache = self.edge.cache
        while self.edge.stream_status() != "online":
            latest = cache.latest
            seq = latest.seq if latest is not None else 0
            if deadline is None:
                await cache.wait_newer(seq, 3600.0)
                continue
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            await cache.wait_newer(seq, remaining)
        return True


MAX_VERSION: Final = 2**63 - 1  # SQLite's INTEGER: a larger version cannot exist


def _check_depth(data: Any) -> None:
    if json_depth(data) > MAX_JSON_DEPTH:
        raise ConfigInvalid([FieldProblem("(root)", f"nested deeper than {MAX_JSON_DEPTH} levels")])


def _with_values(data: dict[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(data)
    for path, value in values.items():
        _put(out, path, value)
    return out


def _read_toml(path: Path) -> dict[str, Any] | None:
    """The file's own data (None if there is none): what flags must not overwrite in it."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        log.warning("cannot read %s back: %s", path, err)
        return None


def _check_source(config: EdgeConfig, edge: ConfigTarget) -> None:
    """Build (not start) a source for ``config``: a URL that cannot work is a 422, not a loop."""
    from edge.camera import open_source

    try:
        open_source(config.camera, lambda frame: None, edge.metrics)
    except SourceURLError as err:
        raise ConfigInvalid([FieldProblem("camera.source", str(err))]) from err
