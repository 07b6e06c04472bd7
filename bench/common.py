# SPDX-License-Identifier: Apache-2.0
"""What every benchmark shares: runs interleaved across the VMMs compared (kiln, QEMU, kiln,
QEMU, ... so that drift on a shared machine hits all alike), a failed repetition reported and
run again instead of ending the benchmark, and one table of medians with their min-max and the
ratio of kiln's median to each peer's, flagged when the spreads are too wide to conclude."""
import statistics
import sys

WIDE = 0.25  # (max - min) / median above this: too noisy to conclude


class RepetitionFailed(Exception):
    """One repetition of one measurement failed (a VMM crashed, a guest's output did not parse):
    the benchmark says so and runs it again."""


def interleaved(names, measure, runs, retries=2):
    """Call measure(name) for every name, @runs rounds; returns {name: [result, ...]}. A
    repetition that raises RepetitionFailed is reported and tried again, at most @retries more
    times; then @name is left out of the later rounds (its results so far are kept, and the
    table says how many runs each figure has)."""
    results = {name: [] for name in names}
    dropped = set()
    for r in range(runs):
        for name in names:
            if name in dropped:
                continue
            for attempt in range(retries + 1):
                try:
                    results[name].append(measure(name))
                    break
                except RepetitionFailed as e:
                    print(f"run {r + 1}, {name}: failed ({e}); "
                          f"{'again' if attempt < retries else 'giving up'}", file=sys.stderr,
                          flush=True)
            else:
                print(f"benchmark: {name} failed {retries + 1} times in a row; left out of the "
                      f"remaining runs", file=sys.stderr, flush=True)
                dropped.add(name)
    return results


def spread(values):
    """(median, min, max, relative spread)."""
    m = statistics.median(values)
    lo, hi = min(values), max(values)
    return m, lo, hi, (hi - lo) / m if m else 0.0


def table(title, samples, base="kiln", fmt="{:.1f}", higher_is_better=False):
    """Print @samples ({metric: {vmm: [values]}}) as median [min-max] per VMM and @base's ratio
    to each other VMM's median. A ratio whose two sides spread more than WIDE is marked '~'
    (inconclusive)."""
    print(title)
    for metric, per_vmm in samples.items():
        stats = {vmm: spread(v) for vmm, v in per_vmm.items() if v}
        most = max(len(v) for v in per_vmm.values())
        cells = [f"{vmm} {fmt.format(s[0])} [{fmt.format(s[1])}-{fmt.format(s[2])}]"
                 + (f" ({len(per_vmm[vmm])} runs)" if len(per_vmm[vmm]) < most else "")
                 for vmm, s in stats.items()]
        ratios = []
        if base in stats:
            for vmm, s in stats.items():
                if vmm == base or not s[0]:
                    continue
                wide = stats[base][3] > WIDE or s[3] > WIDE
                ratios.append(f"{base}/{vmm} {stats[base][0] / s[0]:.2f}{'~' if wide else ''}")
        better = " (higher is better)" if higher_is_better else ""
        print(f"  {metric}{better}: " + "; ".join(cells))
        if ratios:
            print("    " + ", ".join(ratios))
    if any(s[3] > WIDE for per_vmm in samples.values() for s in map(spread, filter(None, per_vmm.values()))):
        print(f"  ~ : a side spread more than {WIDE:.0%} of its median: too wide to conclude")
