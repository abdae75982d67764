"""The project's warning category (scikit-learn's model: ``sklearn.exceptions``).

:func:`landscape.analysis.analyze_model` issues every caveat of an analysis (an estimate not resolved at its
radius, a Hessian quantity short of its tolerance, a clipped automatic radius) as a :class:`LandscapeWarning`
through :func:`warnings.warn`, besides listing them in ``AnalysisResult.warnings``; the callbacks use it for an
analysis that failed while training goes on. Filter them as any warning::

    import warnings
    from landscape.exceptions import LandscapeWarning
    warnings.simplefilter("ignore", LandscapeWarning)

The command-line tools print the same caveats as their own lines and silence the category.
"""

from __future__ import annotations


class LandscapeWarning(UserWarning):
    """A caveat about a measurement: the value is reported, but read it with this in mind."""
