"""Reading the unsubscribe mailbox: `suppression mailbox poll [--loop]`."""

from __future__ import annotations

from suppression.domain.policy import EventAction
from suppression.observability import metrics
from suppression.services.inbound.mail_unsubscribes import MailAnswer, MailOutcome
from suppression.services.links.unsubscribes import SOURCE_MAILTO
from suppression.worker.one_click_folding import count


def count_answer(answer: MailAnswer) -> None:
    """The metrics of one committed mail: what it folded and what it recorded."""
    if answer.folded is not None:
        count(answer.folded)
    if answer.alarm is not None:
        metrics.UNSUBSCRIBE_ALARMS.inc()
    if answer.outcome == MailOutcome.OPTED_OUT:
        metrics.CONSENT_CHANGES.labels(EventAction.OPTED_OUT, SOURCE_MAILTO).inc()
