#!/usr/bin/env python3
"""Odds that an adversary controls a stake-weighted random committee (issue 22 groundwork).

Model: each of the C seats of a round's committee goes to a registered verifier with
probability proportional to its stake, independently (sortition with replacement: a
verifier may hold several seats, and its vote weighs by seats). An adversary holding a
fraction f of all stake then holds X ~ Binomial(C, f) seats.

  * blocks a round: X > C/3. A candidate needs at least 2/3 of the judging weight to be
    positive, so more than a third withheld or negative stops every honest candidate;
  * decides a round alone: X >= 2C/3, enough to make a cheating candidate eligible.

Exact binomial tails from integer binomial coefficients (no normal approximation).
Usage: scripts/committee/odds.py [C ...]   (default 16 32 64 128 256), prints a Markdown table.
"""
import sys
from fractions import Fraction
from math import comb


def tail(c: int, f: Fraction, at_least: int) -> float:
    """P(X >= at_least) for X ~ Binomial(c, f), computed exactly, then rounded."""
    total = sum(comb(c, k) * f**k * (1 - f) ** (c - k) for k in range(max(at_least, 0), c + 1))
    return float(total)


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or [16, 32, 64, 128, 256]
    shares = [Fraction(1, 10), Fraction(1, 5), Fraction(33, 100)]
    print("| C | adversary stake | P(more than C/3 seats: blocks) | P(at least 2C/3 seats: decides alone) |")
    print("|---|---|---|---|")
    for c in sizes:
        block = c // 3 + 1  # the least integer above C/3
        decide = -(-2 * c // 3)  # ceil(2C/3)
        for f in shares:
            print(f"| {c} | {float(f):.0%} | {tail(c, f, block):.3e} | {tail(c, f, decide):.3e} |")


if __name__ == "__main__":
    main()
