"""The composition root's product: one object holding what the service runs on.

`create_app`, the CLI and the worker each build one `Runtime` from the settings
and hand its parts to the code they call: services get sessions, the vault and the
clock as arguments, never from a global. Nothing else in the package holds state
of its own across requests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from suppression.config.settings import Settings
from suppression.connectors.sns_certificates import SnsCertificates
from suppression.domain.tokens import LinkTokens
from suppression.domain.vault import AddressVault
from suppression.store.engines import (
    make_engine,
    make_session_factory,
    one_click_engine,
    vault_for,
)
from suppression.store.schema import utcnow
from suppression.worker.check_helpers import HelperPool
from suppression.worker.confirmation_mail import ConfirmationMailer
from suppression.worker.one_click_folding import BackgroundFolder
from suppression.worker.one_click_intake import IntakeWriter


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    vault: AddressVault
    clock: Callable[[], datetime]
    # Spawned processes that decide slices of large check lists (None: all in-process).
    folder: BackgroundFolder
    # One-click intake rows of concurrent requests, one commit per group.
    intake: IntakeWriter
    helpers: HelperPool | None = None
    # PostgreSQL: the one-click intake's own small autocommit pool (see one_click_engine).
    intake_engine: Engine | None = None
    mailer: ConfirmationMailer | None = None
    # Amazon SNS signing certificates, cached between requests (None: SES webhook off).
    sns_certificates: SnsCertificates | None = None
    # False when the engine was handed in (the tests' shared one): its owner closes it.
    owns_engine: bool = True
    _link_tokens: LinkTokens | None = field(default=None, repr=False)

    @classmethod
    def build(
        cls,
        settings: Settings,
        clock: Callable[[], datetime] = utcnow,
        *,
        engine: Engine | None = None,
        sessions: sessionmaker[Session] | None = None,
    ) -> Runtime:
        """Everything from `settings`; or on `engine` and `sessions` when given (the
        tests' engine, and sessions held in one connection's transaction)."""
        owns_engine = engine is None
        engine = engine or make_engine(settings.database_url)
        sessions = sessions or make_session_factory(engine)
        vault = vault_for(settings)
        intake_engine = one_click_engine(engine)
        return cls(
            settings=settings,
            engine=engine,
            sessions=sessions,
            vault=vault,
            clock=clock,
            helpers=HelperPool(settings.check_processes) if settings.check_processes > 0 else None,
            intake_engine=intake_engine,
            intake=IntakeWriter(
                partial(sessions, bind=intake_engine) if intake_engine else sessions
            ),
            folder=BackgroundFolder(sessions, vault, settings),
            mailer=(
                ConfirmationMailer(sessions, vault, settings, clock=clock)
                if settings.mail.enabled
                else None
            ),
            sns_certificates=(
                SnsCertificates(settings.feedback.sns_ca_file)
                if settings.feedback.ses_enabled
                else None
            ),
            owns_engine=owns_engine,
        )

    @property
    def link_tokens(self) -> LinkTokens | None:
        """The token codec (None while TOKEN_KEYS holds no key)."""
        if self._link_tokens is None and self.settings.keys.token_keys:
            self._link_tokens = LinkTokens(self.settings.keys.token_keys)
        return self._link_tokens

    def close(self) -> None:
        """Stop the folding thread after its batch, the helpers, and every pool."""
        self.folder.stop()
        if self.helpers is not None:
            self.helpers.reset()
        if self.intake_engine is not None:
            self.intake_engine.dispose()
        if self.owns_engine:
            self.engine.dispose()
