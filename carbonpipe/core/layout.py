"""The home folder (``CARBONPIPE_HOME``, default ``<repo>/.carbonpipe``): what lives where.

Settings derive their path defaults from it, the services and apps put pid files and logs
where it says, and ``carbonpipe clean`` removes the folders it lists as data.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Layout:
    home: Path

    @property
    def run(self) -> Path:
        """Pid files of the services and apps."""
        return self.home / "run"

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    @property
    def jars(self) -> Path:
        return self.home / "jars"

    @property
    def bin(self) -> Path:
        return self.home / "bin"

    @property
    def kafka(self) -> Path:
        """Kafka's config and log directories (the log of record, when run locally)."""
        return self.home / "kafka"

    @property
    def ferretdb(self) -> Path:
        return self.home / "ferretdb"

    @property
    def postgres(self) -> Path:
        """PostgreSQL's data directory, when FerretDB stores into PostgreSQL."""
        return self.home / "postgres"

    @property
    def cold(self) -> Path:
        return self.home / "cold"

    @property
    def checkpoints(self) -> Path:
        return self.home / "checkpoints"

    @property
    def spool(self) -> Path:
        return self.home / "spool"

    @property
    def schedules(self) -> Path:
        """Decision logs of ``carbonpipe schedule``."""
        return self.home / "schedules"

    @property
    def data_dirs(self) -> tuple[Path, ...]:
        """Everything ``carbonpipe clean`` drops: results and logs, not the built jars/binaries."""
        return (self.kafka, self.ferretdb, self.postgres, self.checkpoints, self.cold,
                self.spool, self.logs, self.run, self.schedules)  # fmt: skip

    def pid_file(self, name: str) -> Path:
        return self.run / f"{name}.pid"

    def log_file(self, name: str) -> Path:
        return self.logs / f"{name}.log"
