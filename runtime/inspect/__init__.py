"""QA inspection: check a part's holes against its recipe (what the drawing says should be there).

Modules, one job each:

- ``recipe``:   the Recipe model (expected holes, tolerances), TOML/JSON read and write, recipes from a
                golden part's detections or a CAD hole table.
- ``register``: pure robust 2D rigid/similarity fit of recipe holes to detected holes (RANSAC over
                correspondences; missing and extra holes are expected).
- ``inspect``:  pure per-hole checks (ok / missing / out_of_tolerance), extra holes, verdict OK/NG/NONE,
                counts and the failing-holes bit field.
- ``measure``:  turns a ``Holes`` result into 2D measurements in the recipe's units (px, or mm on the
                work plane) and runs the inspection; statuses for the overlay.
- ``library``:  several recipes per cell, selected by number (PLC) or name (ZeroMQ).
"""
