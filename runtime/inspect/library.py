"""Several recipes per cell; the PLC selects one by number, ZeroMQ by name or number.

Numbers are 1-based in the order the recipes are listed in the config (``[inspect] recipes = [...]``);
0 means "no inspection". Selecting is thread-safe (a PLC or command thread selects, the pipeline reads).
"""

from __future__ import annotations

import numbers
import threading
from pathlib import Path

from holevision.runtime.inspect.recipe import Recipe, load_recipe


class RecipeSelectionError(ValueError):
    """A recipe number or name that the library does not hold."""


class RecipeLibrary:
    """An ordered set of recipes with one active selection (or none)."""

    def __init__(self, recipes: list[Recipe], active: int = 0):
        names = [r.name for r in recipes]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise RecipeSelectionError(f"recipe names must be unique in a cell, repeated: {repeated}")
        self._recipes = list(recipes)
        self._lock = threading.Lock()
        self._active = 0
        self.select(active)

    @classmethod
    def from_files(cls, paths: list[str | Path], active: int = 0) -> "RecipeLibrary":
        """Load every recipe (errors name the file and field) and select ``active`` (0 = none)."""
        return cls([load_recipe(p) for p in paths], active)

    @classmethod
    def from_config(cls, inspect_config) -> "RecipeLibrary":
        """From the service config's ``[inspect]`` section (``recipes``, ``active``)."""
        return cls.from_files(list(inspect_config.recipes), int(inspect_config.active))

    def __len__(self) -> int:
        return len(self._recipes)

    @property
    def names(self) -> list[str]:
        return [r.name for r in self._recipes]

    def number_of(self, name: str) -> int:
        try:
            return self.names.index(name) + 1
        except ValueError:
            raise RecipeSelectionError(f"no recipe named {name!r}; this cell has {self.names}") from None

    def get(self, number: int) -> Recipe | None:
        """Recipe by 1-based number; 0 gives None (no inspection)."""
        if isinstance(number, bool) or not isinstance(number, numbers.Integral):
            raise RecipeSelectionError(f"recipe number must be an integer, got {number!r}")
        number = int(number)
        if number == 0:
            return None
        if not 1 <= number <= len(self._recipes):
            raise RecipeSelectionError(f"recipe number {number} is out of range: this cell has "
                                       f"{len(self._recipes)} recipe(s), 1..{len(self._recipes)} (0 = none)")
        return self._recipes[number - 1]

    def select(self, key: int | str) -> int:
        """Make a recipe active by number (PLC register) or name (ZeroMQ); return its number.

        A string of digits that is not a recipe name is read as a number. An unknown key raises
        RecipeSelectionError and leaves the selection unchanged.
        """
        if isinstance(key, str):
            if key in self.names:
                number = self.number_of(key)
            elif key.strip().isdigit():
                number = int(key.strip())
            else:
                raise RecipeSelectionError(f"no recipe named {key!r}; this cell has {self.names}")
        else:
            number = key
        self.get(number)  # validates (numpy and register integers included)
        with self._lock:
            self._active = int(number)
        return self._active

    @property
    def active_number(self) -> int:
        with self._lock:
            return self._active

    @property
    def active(self) -> Recipe | None:
        """The selected recipe, or None when inspection is off (number 0)."""
        with self._lock:
            number = self._active
        return self.get(number)

    def describe(self) -> list[dict]:
        """For a ZeroMQ ``recipes`` command: number, name, units, hole count, active flag."""
        active = self.active_number
        return [{"number": i, "name": r.name, "units": r.units, "holes": len(r.holes), "active": i == active}
                for i, r in enumerate(self._recipes, start=1)]
