"""Plan as text for a terminal or a log: verdict first, one line per change with its reason, routine
renewals apart from what a reviewer must read, and the summary line last."""

from __future__ import annotations

from rich.text import Text

from reconciler.plan.model import Action, Change, Plan

SYMBOLS: dict[Action, tuple[str, str]] = {
    Action.CREATE_KEY: ("+", "green"),
    Action.ISSUE: ("+", "green"),
    Action.REISSUE: ("~", "yellow"),
    Action.RENEW: ("↻", "cyan"),
    Action.REVOKE: ("-", "red"),
    Action.WITHDRAW: ("-", "red"),
}


def _line(change: Change) -> Text:
    symbol, style = SYMBOLS[change.action]
    text = Text("  ")
    text.append(f"{symbol} {change.action.value:<10}", style=style)
    text.append(f" {change.address}")
    text.append(f"  ({change.reason})", style="dim")
    return text


def _vrp(vrp: tuple[int, str, int]) -> str:
    return f"AS{vrp[0]} {vrp[1]} max {vrp[2]}"


def render(plan: Plan) -> list[Text]:
    """The plan as lines of styled text (styles show only on a terminal)."""
    if plan.empty:
        return [Text(plan.summary(), style="bold green")]
    lines = [Text(f"Changes planned at {plan.now:%Y-%m-%dT%H:%M:%SZ}:", style="bold")]
    main = [c for c in plan.changes if not c.routine]
    routine = [c for c in plan.changes if c.routine]
    lines += [_line(c) for c in main]
    if routine:
        lines.append(Text(f"Manifests and CRLs ({len(routine)} objects, routine):", style="bold"))
        lines += [_line(c) for c in routine]
    if plan.vrps_added or plan.vrps_removed:
        lines.append(Text("Validated ROA payloads:", style="bold"))
        lines += [Text(f"  + {_vrp(v)}", style="green") for v in sorted(plan.vrps_added)]
        lines += [Text(f"  - {_vrp(v)}", style="red") for v in sorted(plan.vrps_removed)]
    revocations = [c for c in plan.changes if c.revoke_serial is not None]
    if revocations:
        lines.append(Text(f"Revocations ({len(revocations)}):", style="bold red"))
        lines += [Text(f"  - {c.address} serial {c.revoke_serial:x} on {c.ca}'s CRL") for c in revocations]
    lines.append(Text(plan.summary(), style="bold"))
    return lines
