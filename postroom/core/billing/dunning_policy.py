"""The dunning policy: levels, fees, channels, debtor rules and collection preconditions.

The policy is configuration (``dunning_policy.toml`` next to this module, or the file named
by ``POSTROOM_DUNNING_POLICY_FILE``) and carries a ``version`` that every dunning run
records. A customer's :class:`Override` adjusts it for that customer only.
"""

from __future__ import annotations

import tomllib
from datetime import date, timedelta
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from postroom.documents.interest import DebtorKind
from postroom.settings import Settings

SHIPPED_POLICY = Path(__file__).resolve().parent / "dunning_policy.toml"
LevelChannel = Literal["preferred", "print", "email", "eletter"]


class PolicyError(ValueError):
    """The policy file is missing, not TOML, or breaks a rule of the policy's shape."""


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Level(_Frozen):
    """One dunning level: when it is due, what it costs, how it is sent."""

    level: int = Field(ge=0, le=3)
    name: str = Field(min_length=1, max_length=60)
    days_after_due: int = Field(ge=0, le=3650)
    pay_days: int = Field(ge=1, le=90)
    """The payment deadline printed: the letter's date plus this many days."""
    fee: Decimal = Field(ge=0, decimal_places=2)
    """Actual costs charged with the letter; only once the debtor is in default."""
    channel: LevelChannel = "preferred"
    template: str | None = Field(default=None, pattern=r"^[a-z0-9_]+(@[0-9]+)?$")
    """The ``dunning_letter`` template (wording); the type's default when unset."""


class DebtorRules(_Frozen):
    """What a consumer or a business owes in default."""

    interest: Literal["statutory", "none"] = "statutory"
    flat_rate: bool = False


class CollectionRules(_Frozen):
    """When an item may go to a collection agency, and what may be done with a case."""

    min_reminders: int = Field(default=2, ge=2)
    min_days_since_first: int = Field(default=28, ge=28)
    actions: list[str] = Field(min_length=1)


class FollowupRules(_Frozen):
    """Which letters open a follow-up for the dunning group, and the options it offers."""

    from_level: int = Field(default=2, ge=0, le=3)
    options: list[str] = Field(min_length=1)


class AccountRules(_Frozen):
    """When a customer's account is flagged for a personal visit or an order block."""

    visit_from_balance: Decimal = Field(gt=0, decimal_places=2)
    visit_from_reminders: int = Field(ge=1)
    order_block_from_level: int = Field(ge=0, le=3)
    order_block_from_days_late: int = Field(ge=1)


class PlanRules(_Frozen):
    """How payment plans are followed: when an instalment is missed and when a plan fails."""

    grace_days: int = Field(default=5, ge=0, le=60)
    """An instalment not covered this many days after its due date is missed."""
    fail_after_missed: int = Field(default=2, ge=1, le=12)
    """This many missed instalments end the plan: the rest of its items is due at once."""


class Override(_Frozen):
    """A customer's deviations from the policy (stored on the customer's dunning account)."""

    extra_days: int = Field(default=0, ge=0, le=365)
    """Each level falls due this many days later."""
    fees: bool = True
    """Charge the levels' fees (and the flat sum, where owed)."""
    interest: bool = True
    channel: LevelChannel | None = None
    """Send every level this way instead of the level's channel."""


class DunningPolicy(_Frozen):
    """The policy in force; see ``dunning_policy.toml`` for the meaning of each rule."""

    version: str = Field(min_length=1, max_length=40)
    default_after_days: int = Field(default=30, ge=0, le=30)
    min_days_between: int = Field(default=14, ge=1, le=365)
    levels: list[Level] = Field(min_length=1, max_length=4)
    debtors: dict[DebtorKind, DebtorRules]
    collection: CollectionRules
    followups: FollowupRules
    accounts: AccountRules
    payment_plans: PlanRules = Field(default_factory=PlanRules)

    @model_validator(mode="after")
    def _ordered(self) -> DunningPolicy:
        if [level.level for level in self.levels] != list(range(len(self.levels))):
            raise ValueError("levels must be numbered 0, 1, … in order")
        days = [level.days_after_due for level in self.levels]
        if days != sorted(set(days)):
            raise ValueError("levels must fall due in strictly ascending days_after_due")
        if set(self.debtors) != {"consumer", "business"}:
            raise ValueError("debtors needs rules for consumer and business")
        return self

    @property
    def final_level(self) -> int:
        """The last level: after it, collection."""
        return self.levels[-1].level

    def level(self, number: int) -> Level:
        """The level ``number``."""
        return self.levels[number]

    def next_level(
        self,
        current: int | None,
        *,
        due_date: date,
        last_letter: date | None,
        key_date: date,
        grace_days: int,
        override: Override,
    ) -> Level | None:
        """The level an item reaches in a run on ``key_date``: one step above ``current`` when
        that level is due (its days after the due date, plus grace days and the customer's
        extra days, have passed) and the previous letter is old enough; else ``None``."""
        target = 0 if current is None else current + 1
        if target > self.final_level:
            return None
        level = self.levels[target]
        waited = (key_date - due_date).days
        if waited < level.days_after_due + grace_days + override.extra_days:
            return None
        if last_letter is not None and (key_date - last_letter).days < self.min_days_between:
            return None
        return level

    def default_since(self, due_date: date) -> date:
        """The first day of default under §286(3) BGB: after ``default_after_days`` days past due."""
        return due_date + timedelta(days=self.default_after_days + 1)


def parse_policy(text: str, source: str = "dunning policy") -> DunningPolicy:
    """The policy in TOML ``text``; ``source`` names the file in errors."""
    try:
        document: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise PolicyError(f"{source} is not valid TOML: {error}") from None
    try:
        return DunningPolicy.model_validate(document)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in e['loc'])}: {e['msg']}" for e in error.errors()[:5]
        )
        raise PolicyError(f"{source}: {problems}") from None


@cache
def load_policy(path: Path) -> DunningPolicy:
    """The policy in the file ``path``, read once per process."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise PolicyError(f"cannot read the dunning policy {path}: {error.strerror}") from None
    return parse_policy(text, path.name)


def dunning_policy(settings: Settings) -> DunningPolicy:
    """The configured policy: ``POSTROOM_DUNNING_POLICY_FILE``, else the shipped one."""
    return load_policy((settings.dunning_policy_file or SHIPPED_POLICY).resolve())
