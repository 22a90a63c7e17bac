"""sagaquake: bring an order saga up, load it, break it, and prove from history that nothing was lost."""

__version__ = "0.1.0"
