"""What every command opens: the settings, and a Runtime whose sessions it commits."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import click
from sqlalchemy.orm import Session

from suppression.config.settings import ConfigError, Settings
from suppression.domain.errors import SuppressionError
from suppression.runtime import Runtime


def load_settings() -> Settings:
    try:
        return Settings.from_env()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


@contextmanager
def opened(settings: Settings) -> Iterator[Runtime]:
    """The command's Runtime, closed (threads stopped, pools disposed) at its end."""
    runtime = Runtime.build(settings)
    try:
        yield runtime
    finally:
        runtime.close()


@contextmanager
def session_scope(settings: Settings) -> Iterator[Session]:
    """One transaction per command: committed at the end, rolled back on error."""
    with opened(settings) as runtime, runtime.sessions() as session:
        try:
            yield session
            session.commit()
        except SuppressionError as exc:
            session.rollback()
            raise click.ClickException(exc.message) from exc
