"""landscape: curvature of neural-network loss landscapes (core library; imports no Lightning)."""

__version__ = "0.1.0"
