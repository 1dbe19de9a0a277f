"""Trading by need, loan repayment, and bankruptcy with rebirth.

An agent is *needy* when its tokens are below `need_multiple` x its action price; a *rich* agent
holds more than twice that. Needy agents (poorest first) borrow from the richest agent
`min(gap to need, lend_fraction x lender's surplus)`, and owe it back with `interest`. A borrower
repays `repay_share` of every positive payment until its debt is cleared. An agent whose tokens
fall to zero or below is bankrupt: its debts are written off and it is reborn with
`rebirth_tokens` (and fresh pheromones and risk, see controller.py).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from evolora.economy.config import MarketConfig


@dataclass
class Loan:
    """`borrower` owes `owed` tokens to `lender`."""

    lender: str
    borrower: str
    owed: float

    def state(self) -> dict:
        """JSON-ready loan."""
        return asdict(self)


def lend(
    tokens: dict[str, float], prices: dict[str, float], config: MarketConfig
) -> tuple[list[dict], list[Loan]]:
    """Move tokens from rich to needy agents (in place); return the trades and the new loans."""
    trades, loans = [], []
    need = {name: config.need_multiple * prices[name] for name in tokens}
    needy = sorted((n for n in tokens if tokens[n] < need[n]), key=lambda n: (tokens[n], n))
    for borrower in needy:
        rich = [n for n in tokens if n != borrower and tokens[n] > 2 * need[n]]
        if not rich:
            break
        lender = max(rich, key=lambda n: (tokens[n] - 2 * need[n], n))
        amount = min(
            need[borrower] - tokens[borrower],
            config.lend_fraction * (tokens[lender] - 2 * need[lender]),
        )
        tokens[lender] -= amount
        tokens[borrower] += amount
        loans.append(Loan(lender, borrower, amount * (1 + config.interest)))
        trades.append({"lender": lender, "borrower": borrower, "amount": amount})
    return trades, loans


def repay(
    loans: list[Loan], tokens: dict[str, float], borrower: str, earned: float, share: float
) -> list[dict]:
    """Pay `share` of a positive `earned` toward `borrower`'s loans, oldest first (in place)."""
    budget = share * max(0.0, earned)
    paid = []
    for loan in loans:
        if budget <= 0:
            break
        if loan.borrower != borrower or loan.owed <= 0:
            continue
        amount = min(budget, loan.owed)
        loan.owed -= amount
        budget -= amount
        tokens[borrower] -= amount
        tokens[loan.lender] += amount
        paid.append({"lender": loan.lender, "borrower": borrower, "amount": amount})
    loans[:] = [loan for loan in loans if loan.owed > 1e-12]
    return paid


def bankrupt(tokens: dict[str, float]) -> list[str]:
    """Agents whose tokens are zero or below."""
    return sorted(name for name, value in tokens.items() if value <= 0)


def write_off(loans: list[Loan], borrower: str) -> None:
    """Cancel every debt of a bankrupt agent (its lenders lose them)."""
    loans[:] = [loan for loan in loans if loan.borrower != borrower]
