"""Cross-checks of the analytical strategy models against the simulator: goodput both ways,
confirmation of a plan's winners, and the validation page (docs/validation.md)."""
