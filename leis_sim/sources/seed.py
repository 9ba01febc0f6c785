"""Build the three source data files (``eid.db``, ``tecs.db``, ``photos.db``) from the generator.

One pass over the synthetic world writes all three files, each into a temporary file
next to its destination that is renamed into place only once complete (an interrupted
build leaves the previous files untouched). Booking photos are rendered in a worker
process when there are many of them, so rendering and record writing use both cores.
Progress is a tqdm bar over world persons.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from leis_sim.sources.photos.render import MEDIA_TYPE, render
from leis_sim.sources.store import PhotoWriter, SourceWriter, read_meta
from leis_sim.synth.model import PhotoSpec
from leis_sim.synth.showcase import SHOWCASE
from leis_sim.synth.world import DEFAULT_SEED, generate, world_size

SOURCE_FILES = {"eid": "eid.db", "tecs": "tecs.db", "photos": "photos.db"}
PHOTO_BATCH = 2000
PHOTO_WORKER_THRESHOLD = 20_000


@dataclass(frozen=True)
class SeedReport:
    """What a build produced."""

    paths: dict[str, Path]
    sizes: dict[str, int]
    eid_records: int
    tecs_records: int
    photos: int
    seconds: float


def source_paths(data_dir: Path) -> dict[str, Path]:
    """Where each source's file lives under ``data_dir``."""
    return {name: data_dir / file for name, file in SOURCE_FILES.items()}


def _render_rows(specs: list[PhotoSpec]) -> list[tuple[PhotoSpec, str, bytes]]:
    return [(spec, MEDIA_TYPE, render(spec)) for spec in specs]


def _photo_worker(path: str, queue: Any, meta: dict[str, str]) -> None:
    """Worker process: render and write every batch received until ``None``."""
    writer = PhotoWriter(Path(path))
    try:
        while (batch := queue.get()) is not None:
            writer.add(_render_rows(batch))
        writer.finish(meta)
    except BaseException:
        writer.abort()
        raise


class _PhotoSink:
    """Renders and writes photos inline, or hands them to a worker process."""

    def __init__(self, path: Path, meta: dict[str, str], *, worker: bool) -> None:
        self.pending: list[PhotoSpec] = []
        self.meta = meta
        self.path = path
        self._writer: PhotoWriter | None = None
        self._process: Any = None
        self._queue: Any = None
        if worker:
            context = multiprocessing.get_context("spawn")
            self._queue = context.Queue(maxsize=8)
            self._process = context.Process(
                target=_photo_worker, args=(str(path), self._queue, meta), daemon=True
            )
            self._process.start()
        else:
            self._writer = PhotoWriter(path)

    def add(self, specs: list[PhotoSpec]) -> None:
        self.pending.extend(specs)
        if len(self.pending) >= PHOTO_BATCH:
            self._flush()

    def _flush(self) -> None:
        if not self.pending:
            return
        if self._writer is not None:
            self._writer.add(_render_rows(self.pending))
        else:
            self._queue.put(self.pending)
        self.pending = []

    def finish(self) -> None:
        self._flush()
        if self._writer is not None:
            self._writer.finish(self.meta)
            return
        self._queue.put(None)
        self._process.join()
        if self._process.exitcode != 0:
            raise RuntimeError(f"the photo worker failed (exit code {self._process.exitcode})")

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.abort()
        elif self._process is not None and self._process.is_alive():
            self._process.terminate()
            self._process.join()
        self.path.unlink(missing_ok=True)


def seed_sources(
    data_dir: Path,
    persons: int,
    seed: int = DEFAULT_SEED,
    *,
    force: bool = False,
    progress: bool = True,
    photo_worker: bool | None = None,
) -> SeedReport:
    """Build ``eid.db``, ``tecs.db`` and ``photos.db`` in ``data_dir`` for about ``persons`` per source.

    Refuses (``FileExistsError``) to replace existing files unless ``force``.
    ``photo_worker`` defaults to a worker process for large data sets.
    """
    if persons < 0:
        raise ValueError("persons must not be negative")
    paths = source_paths(data_dir)
    existing = [str(p) for p in paths.values() if p.exists()]
    if existing and not force:
        raise FileExistsError(f"source data already exists ({', '.join(existing)}); use --force to rebuild")
    data_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    tag = f".building-{os.getpid()}"
    temps = {name: path.with_name(path.name + tag) for name, path in paths.items()}
    meta = {"persons": str(persons), "seed": str(seed), "generator": "leis-synth-1"}
    eid = SourceWriter(temps["eid"])
    tecs = SourceWriter(temps["tecs"])
    use_worker = photo_worker if photo_worker is not None else persons >= PHOTO_WORKER_THRESHOLD
    photos = _PhotoSink(temps["photos"], {**meta, "source": "photos"}, worker=use_worker)
    total = world_size(persons) + len(SHOWCASE)
    try:
        with tqdm(
            total=total, unit="persons", disable=not progress, desc="seeding sources", unit_scale=True
        ) as bar:
            for count, entry in enumerate(generate(persons, seed), 1):
                if entry.eid:
                    eid.add(entry.eid)
                if entry.tecs:
                    tecs.add(entry.tecs)
                if entry.photos:
                    photos.add(entry.photos)
                if count % 1000 == 0:
                    bar.update(1000)
            bar.update(total - bar.n)
            bar.set_description("indexing")
            eid.finish({**meta, "source": "eid"})
            tecs.finish({**meta, "source": "tecs"})
            photos.finish()
    except BaseException:
        for writer in (eid, tecs, photos):
            writer.abort()
        raise
    for name, temp in temps.items():
        os.replace(temp, paths[name])
    return SeedReport(
        paths=paths,
        sizes={name: path.stat().st_size for name, path in paths.items()},
        eid_records=eid.record_count,
        tecs_records=tecs.record_count,
        photos=_photo_count(paths["photos"]),
        seconds=time.monotonic() - started,
    )


def _photo_count(path: Path) -> int:
    return int(read_meta(path).get("photos", "0"))
