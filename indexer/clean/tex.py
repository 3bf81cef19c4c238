"""``<math>``: the TeX that reads as plain text, linearised."""

from __future__ import annotations

import re
from typing import Final

from indexer.clean.config import pairs

# --------------------------------------------------------------------------- math

_TEX_SYMBOLS: Final = pairs(
    """
    cdot · times × pm ± mp ∓ le ≤ leq ≤ ge ≥ geq ≥ neq ≠ ne ≠ approx ≈ sim ~ equiv ≡ to →
    rightarrow → leftarrow ← infty ∞ partial ∂ circ ° degree ° ldots … dots … cdots ⋯ prime ′
    alpha α beta β gamma γ delta δ epsilon ε varepsilon ε zeta ζ eta η theta θ iota ι kappa κ
    lambda λ mu μ nu ν xi ξ pi π rho ρ sigma σ tau τ phi φ varphi φ chi χ psi ψ omega ω
    Gamma Γ Delta Δ Theta Θ Lambda Λ Pi Π Sigma Σ Phi Φ Psi Ψ Omega Ω hbar ħ
    """
) | {"displaystyle": "", "textstyle": "", "quad": " ", "qquad": " "}
_TEX_WRAPPER_RE: Final = re.compile(
    r"\\(?:mathrm|text|textrm|mathit|mathbf|operatorname|mbox|rm|boldsymbol)\s*\{([^{}]*)\}"
)
_TEX_COMMAND_RE: Final = re.compile(r"\\([A-Za-z]+)")
_TEX_SPACING_RE: Final = re.compile(r"\\[,;:! ]")
_TEX_SIMPLE_GROUP_RE: Final = re.compile(r"([_^])\{([^{}\\]{1,12})\}")


def _tex_command(match: re.Match[str]) -> str:
    symbol = _TEX_SYMBOLS.get(match.group(1))
    return match.group() if symbol is None else symbol


def linearise_tex(tex: str) -> str:
    """TeX that reads as plain text (``E = mc^2``, ``\\alpha \\leq 1``); "" otherwise."""
    tex = _TEX_SPACING_RE.sub(" ", tex)
    tex = _TEX_WRAPPER_RE.sub(r"\1", tex)
    tex = _TEX_COMMAND_RE.sub(_tex_command, tex)
    tex = _TEX_SIMPLE_GROUP_RE.sub(r"\1\2", tex)
    if any(char in tex for char in "\\{}&"):
        return ""
    return " ".join(tex.split())
