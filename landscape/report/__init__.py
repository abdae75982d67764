"""Results out: the figures of one analysis and of a comparison (``figures``, on ``plots``), of paths between
checkpoints (``path_figures``), curvature over training (``history``), the interactive surface (``interactive``)
and the one write path (``writing``)."""
