"""Space-group operations of a cell as permutations of its sites (spglib)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import spglib
from ase import Atoms


def site_types(labels: Sequence[str]) -> np.ndarray:
    """Integer type per site, one per distinct label (spglib needs integers)."""
    _, types = np.unique(np.asarray(labels, dtype=str), return_inverse=True)
    return types.astype(np.int32) + 1


def site_permutations(atoms: Atoms, types: Sequence[int], symprec: float = 1e-3) -> np.ndarray:
    """All symmetry operations of the cell as site permutations, shape (n_ops, n_sites).

    Row ``p`` of the result maps site ``i`` onto site ``p[i]``. Only operations that map every
    site onto a site of the same type are kept, so ``types`` can distinguish orbits (e.g. Wyckoff
    labels) or species. Includes the pure translations of a supercell.
    """
    types = np.asarray(types, dtype=np.int32)
    frac = atoms.get_scaled_positions(wrap=True)
    cell = (np.asarray(atoms.cell), frac, types)
    ops = spglib.get_symmetry(cell, symprec=symprec)
    if ops is None:
        raise ValueError(f"spglib found no symmetry for {atoms.get_chemical_formula()}")
    tol = max(symprec * 10, 1e-4)
    perms = []
    for rot, trans in zip(ops["rotations"], ops["translations"]):
        image = frac @ rot.T + trans
        diff = image[:, None, :] - frac[None, :, :]
        diff -= np.round(diff)
        dist = np.linalg.norm(diff @ np.asarray(atoms.cell), axis=2)
        dist[types[:, None] != types[None, :]] = np.inf
        target = np.argmin(dist, axis=1)
        if np.all(dist[np.arange(len(frac)), target] < tol * 10) and len(set(target)) == len(frac):
            perms.append(target)
    if not perms:
        raise ValueError("no symmetry operation maps the cell onto itself (check symprec)")
    return np.unique(np.array(perms, dtype=np.int32), axis=0)


def spacegroup_number(atoms: Atoms, symprec: float = 1e-3) -> int:
    """International space-group number of a structure (ghost atoms 'X' ignored)."""
    real = atoms[[n != 0 for n in atoms.numbers]]
    cell = (np.asarray(real.cell), real.get_scaled_positions(), real.numbers)
    dataset = spglib.get_symmetry_dataset(cell, symprec=symprec)
    if dataset is None:
        raise ValueError(f"spglib could not analyse {atoms.get_chemical_formula()}")
    return int(dataset.number)


def primitive_cell(atoms: Atoms, labels: Sequence[str], symprec: float = 1e-3) -> tuple[Atoms, np.ndarray]:
    """The primitive cell of a labelled structure (labels and ghost sites kept), via spglib."""
    labels = np.asarray(labels, dtype=str)
    keys = [f"{label}:{z}" for label, z in zip(labels, atoms.numbers)]
    names, types = np.unique(keys, return_inverse=True)
    cell = (np.asarray(atoms.cell), atoms.get_scaled_positions(wrap=True), types.astype(np.int32) + 1)
    lattice, frac, prim_types = spglib.standardize_cell(cell, to_primitive=True, no_idealize=True,
                                                        symprec=symprec)
    pairs = [names[t - 1].rsplit(":", 1) for t in prim_types]
    prim = Atoms(numbers=[int(z) for _, z in pairs], scaled_positions=frac, cell=lattice, pbc=True)
    return prim, np.array([label for label, _ in pairs])
