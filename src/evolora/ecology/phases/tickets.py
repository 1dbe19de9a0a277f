"""Tickets: every organelle pays the generation's entry fee; those that cannot sit it out."""

from __future__ import annotations

from evolora.ecology.energy import pay_ticket
from evolora.ecology.organelle import Organelle


def pay_tickets(eco) -> list[Organelle]:
    """Charge each organelle the ticket `energy.m`; the ones that paid are this generation's
    active organelles, the others count one more starving generation."""
    active = []
    for o in eco.colony.organelles:
        o.energy, paid = pay_ticket(o.energy, eco.config.energy.m)
        o.starving = 0 if paid else o.starving + 1
        if paid:
            active.append(o)
    return active
