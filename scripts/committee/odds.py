#!/usr/bin/env python3
"""Odds that an adversary controls a round's committee, as PogoRounds draws it (issue 22).

The draw (`PogoRounds.wonSeat`): each of the C seats of a round is an independent draw for
every verifier, won when keccak(contract, task, round, seed1, verifier, seat) mod S < s,
with s its stake and S the stake of every verifier that weighs in the round. A verifier
holding s wins Binomial(C, s/S) seats, independently of the others; a committee has C
seats in expectation but not exactly C. Attestations weigh their seats.

Model of the network: N verifiers of equal stake (the issue's thousand by default), of
which the adversary holds a fraction f (f*N addresses). Then the adversary's seats are
A ~ Binomial(C*f*N, 1/N), the honest seats H ~ Binomial(C*(1-f)*N, 1/N), independent.
Splitting a stake over more addresses keeps the mean seats and only widens the spread (to
Poisson in the limit), so N = 1000 is close to the worst case for the same f.

With every honest seat holder attesting:
  * blocks a round: 2A > H, more than a third of the judging weight, so no candidate gets
    the 2/3 positive it needs;
  * decides a round alone: A >= 2H and A >= quorum (here C/2, the node's default), enough
    to make its own candidate eligible or to slash an honest one;
  * starves a round (no fault of anyone, every bond returned): A + H < quorum.

Sums of exact probability mass functions in log space (no normal approximation).
Usage: scripts/committee/odds.py [--verifiers N] [C ...]   (default N = 1000, C = 16 32 64)
prints a Markdown table.
"""
import argparse
from math import exp, lgamma, log


def pmf(n: int, p: float, k: int) -> float:
    """P(X = k) for X ~ Binomial(n, p)."""
    if k < 0 or k > n:
        return 0.0
    return exp(lgamma(n + 1) - lgamma(k + 1) - lgamma(n - k + 1) + k * log(p) + (n - k) * log(1 - p))


def support(n: int, p: float) -> range:
    """Every k with non-negligible mass (mean plus 40 standard deviations, and at least 60)."""
    mean = n * p
    return range(0, min(n, int(mean + 40 * (mean + 1) ** 0.5) + 60) + 1)


def odds(c: int, f: float, verifiers: int) -> tuple[float, float, float]:
    bad = round(f * verifiers)
    a_n, h_n, p = c * bad, c * (verifiers - bad), 1.0 / verifiers
    quorum = -(-c // 2)
    a_mass = [pmf(a_n, p, a) for a in support(a_n, p)]
    h_mass = [pmf(h_n, p, h) for h in support(h_n, p)]
    h_cdf = []
    acc = 0.0
    for m in h_mass:
        acc += m
        h_cdf.append(acc)

    def h_below(x: int) -> float:
        """P(H < x)."""
        if x <= 0:
            return 0.0
        return h_cdf[min(x - 1, len(h_cdf) - 1)]

    block = sum(m * h_below(2 * a) for a, m in enumerate(a_mass))
    # A >= 2H  <=>  H <= floor(A / 2)  <=>  H < floor(A / 2) + 1
    decide = sum(m * h_below(a // 2 + 1) for a, m in enumerate(a_mass) if a >= quorum)
    starve = sum(m * h_below(quorum - a) for a, m in enumerate(a_mass))
    return block, decide, starve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--verifiers", type=int, default=1000)
    parser.add_argument("sizes", type=int, nargs="*", default=[16, 32, 64])
    args = parser.parse_args()
    print(
        f"| C | adversary stake | P(blocks: 2A > H) | P(decides alone: A >= 2H, A >= C/2) "
        f"| P(below a quorum of C/2 seats) |"
    )
    print("|---|---|---|---|---|")
    for c in args.sizes:
        for f in (0.10, 0.20, 0.33):
            block, decide, starve = odds(c, f, args.verifiers)
            print(f"| {c} | {f:.0%} | {block:.3e} | {decide:.3e} | {starve:.3e} |")


if __name__ == "__main__":
    main()
