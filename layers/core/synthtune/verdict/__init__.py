"""The benchmark's verdict: an interval for each accuracy, and whether one contestant beats another on the
same held-out problems (`statistics`: the formulas; `comparison`: two contestants compared, in numbers and
words)."""
