"""Collinear magnetic order (FM / FiM / AFM / NM) of a structure with signed site moments.

The classification is pymatgen's :class:`~pymatgen.analysis.magnetism.analyzer.CollinearMagneticStructureAnalyzer`
``ordering`` heuristic: all non-zero moments of one sign and a net moment -> FM; both signs and a net
moment -> FiM; both signs and no net moment -> AFM; no moment -> NM.  Tolerances (ours, DFT noise):

* site moments below ``SITE_TOLERANCE`` = 0.1 μB count as zero (induced moments on p elements, numerical
  noise of a non-magnetic solution);
* a net moment of the cell below ``NET_TOLERANCE`` = 0.05 μB counts as zero (a converged collinear
  antiferromagnet in a finite basis keeps ~1e-3 μB).

Only meaningful for *signed* moments (collinear DFT).  Unsigned magnitudes (CHGNet) cannot tell FM from
FiM or AFM, so callers must not classify them (:mod:`tansaku.workflows.ranking` leaves them "").
"""

from __future__ import annotations

import numpy as np

SITE_TOLERANCE = 0.1  # μB
NET_TOLERANCE = 0.05  # μB per cell
ORDERS = ("FM", "FiM", "AFM", "NM")


def magnetic_order(atoms, magmoms) -> str:
    """The order of ``atoms`` (ase.Atoms) with signed site moments ``magmoms`` (μB): "FM", "FiM", "AFM",
    "NM", or "" if a moment is missing (NaN) or pymatgen cannot tell."""
    from pymatgen.analysis.magnetism.analyzer import CollinearMagneticStructureAnalyzer
    from pymatgen.io.ase import AseAtomsAdaptor

    magmoms = np.asarray(magmoms, dtype=float).reshape(-1)
    if len(magmoms) != len(atoms) or not np.isfinite(magmoms).all():
        return ""
    bare = atoms.copy()
    bare.calc = None
    bare.set_initial_magnetic_moments(None)
    structure = AseAtomsAdaptor.get_structure(bare)
    structure.add_site_property("magmom", [float(m) for m in magmoms])
    analyzer = CollinearMagneticStructureAnalyzer(structure, make_primitive=False, threshold=SITE_TOLERANCE,
                                                  threshold_nonmag=SITE_TOLERANCE,
                                                  threshold_ordering=NET_TOLERANCE)
    order = analyzer.ordering.value
    return order if order in ORDERS else ""
