"""Move a config through the pipeline, or run the evaluation.

    manage.py graduate --config 12 --to paper --reason "OOS Sharpe 1.1 over 60 trades" --as alice
    manage.py graduate --config 12 --to live --reason "30 days on testnet, tracking 1 %" --as alice
    manage.py graduate --approve-live 3 --reason "checked the testnet fills" --as olivia
    manage.py graduate --evaluate-all --json

`--to` a higher stage promotes one step (live: files a live request for a second person), a lower
one demotes, `retired` retires. The person answering for it is `--as USERNAME`, by default the
config's owner (as `deploy` acts for the owner); approving live always names the second person.
"""
from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.management.base import CommandError

from apps.strategies.models import StrategyConfig
from tradepulse.core import context
from tradepulse.core.commands import TradePulseCommand

from ... import services
from ...models import GraduationDecision, LiveRequest
from ...serializers import DecisionSerializer, LiveRequestSerializer


class Command(TradePulseCommand):
    help = "Promote, demote or retire a strategy config with a reason, approve a live request, or evaluate all."

    def add_options(self, parser):
        parser.add_argument("--config", type=int, help="Strategy config id.")
        parser.add_argument("--to", dest="to_stage", help="Target stage: discovery, validation, paper, testnet, "
                                                          "live, retired.")
        parser.add_argument("--reason", default="", help="Why (required for every manual decision).")
        parser.add_argument("--as", dest="username", help="The person answering for the decision (default: the "
                                                          "config's owner; required to approve or reject live).")
        parser.add_argument("--override", action="store_true",
                            help="Promote although a criterion fails or is not measured (recorded).")
        parser.add_argument("--approve-live", type=int, metavar="REQUEST", help="Approve this live request.")
        parser.add_argument("--reject-live", type=int, metavar="REQUEST", help="Reject this live request.")
        parser.add_argument("--evaluate-all", action="store_true",
                            help="Hold every config in an automatic stage against its policy.")

    def run(self, **opts) -> dict:
        try:
            if opts["evaluate_all"]:
                return self._evaluate_all()
            if opts["approve_live"] or opts["reject_live"]:
                if not opts["username"]:
                    raise CommandError("Say who decides (the second person): --as USERNAME.")
                actor = self._actor(opts["username"])
                with context.acting(user_id=actor.pk):
                    return self._live(actor, opts)
            if opts["config"] is None or not opts["to_stage"]:
                raise CommandError("Give --config ID --to STAGE --reason TEXT, --approve-live ID, or --evaluate-all.")
            config = StrategyConfig.objects.select_related("owner").filter(pk=opts["config"]).first()
            if config is None:
                raise CommandError(f"No strategy config {opts['config']}.")
            actor = self._actor(opts["username"]) if opts["username"] else config.owner
            with context.acting(user_id=actor.pk):
                result = services.config_move(config=config, actor=actor, to_stage=opts["to_stage"],
                                              reason=opts["reason"], override=opts["override"])
        except PermissionDenied as exc:
            raise CommandError(str(exc)) from None
        if isinstance(result, LiveRequest):
            self.say(f"Live request #{result.pk} filed for config {result.config_id}: another person with "
                     "graduation.approve_live must approve it.")
            return {"live_request": LiveRequestSerializer(result).data}
        self._print(result)
        return {"decision": DecisionSerializer(result).data}

    def _actor(self, username):
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        if user is None:
            raise CommandError(f"No active user {username!r}.")
        return user

    def _live(self, actor, opts) -> dict:
        pk = opts["approve_live"] or opts["reject_live"]
        request = LiveRequest.objects.filter(pk=pk).first()
        if request is None:
            raise CommandError(f"No live request {pk}.")
        if opts["approve_live"]:
            decision = services.live_request_approve(request=request, actor=actor, reason=opts["reason"])
            self._print(decision)
            return {"decision": DecisionSerializer(decision).data}
        request = services.live_request_reject(request=request, actor=actor, reason=opts["reason"])
        self.say(f"Live request #{request.pk} rejected.")
        return {"live_request": LiveRequestSerializer(request).data}

    def _evaluate_all(self) -> dict:
        with context.acting(actor_label="command:graduate"):
            decisions = services.configs_evaluate_all()
        for d in decisions:
            self._print(d)
        if not decisions:
            self.say("No decision: nothing changed.")
        return {"decisions": DecisionSerializer(decisions, many=True).data, "count": len(decisions)}

    def _print(self, d: GraduationDecision) -> None:
        self.say(f"#{d.pk} config {d.config_id} {d.outcome}: {d.from_stage} → {d.to_stage} "
                 f"({d.decided_by}{' ' + d.actor.username if d.actor else ''}). {d.reason}")
        for c in d.criteria:
            verdict = {True: "pass", False: "FAIL", None: "not measured"}[c["passed"]]
            self.say(f"    [{c.get('kind', '')}] {c['label']}: {c['value']} {c['op']} {c['threshold']} → {verdict}")
